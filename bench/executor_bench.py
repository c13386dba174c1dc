"""Worker processes: scaling with parallel trials, memory over a long search, and what a worker costs to start.

Three sections, each contender in a fresh process of its own (``--contender``, JSON on stdout):

``scaling``
    The same 12-trial random search of a tiny single-threaded MLP (synthetic data, fixed epochs, a
    few seconds a trial) with ``executor="process"`` and 1 and 2 workers (``threads: 1`` each), and
    with the inline executor for reference (TensorFlow pinned to 1 thread like a worker, and with
    its default threads).  The contenders are interleaved in every repeat; medians over
    ``--repeats``.  Reported: wall time of ``tuner.search()``, trials per hour, efficiency =
    throughput(N) / (N x throughput(1 worker)), and where the time goes: per trial, the time inside
    the runner (in the worker: build, fit, checkpoints), the rest of submit -> result, the driver's
    gap between a result and the next submit, and the worker start-up.
``memory``
    50 tiny-MLP trials (2 epochs each, the data and space of ``bench/memory_bench.py``) with the
    process executor (1 worker, default ``max_trials_per_worker``) and inline.  Driver RSS at every
    trial's end; worker RSS (psutil, the driver's ``spawn`` children) at every trial's last epoch,
    while the worker is alive and waits for the driver's decision.  Reported after trial 5 and 50.
``recycle``
    2 workers recycled every 2 trials: while the driver waits for a recycled worker to exit (or starts a
    new one), how long the other worker's epoch reports wait for the driver's answer.
``startup``
    1 worker, short trials, ``max_trials_per_worker`` = 1 (every trial on a fresh worker) against a
    large value (one warm worker): submit -> first epoch for fresh and warm workers, the parts of a
    worker's start, and from them the share of a search spent starting workers for trials of 1, 5
    and 20 s with K = 1, 5, 10, 20.

Timings come from a listener (``listeners=[...]``: submit = ``on_trial_begin``, first epoch =
``on_epoch_end``) and from a thin wrapper around each worker's pipe that stamps when each message
reaches the driver; the store's ``started_at`` / ``finished_at`` / epoch ``recorded_at`` are read back
as a cross-check.

    python bench/executor_bench.py scaling --repeats 3
    python bench/executor_bench.py memory
    python bench/executor_bench.py startup --repeats 3
    python bench/executor_bench.py recycle --repeats 3
    python bench/executor_bench.py scaling --repeats 1 --trials 4     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This module is imported again (as __mp_main__) by every spawned worker before it starts: keep its
# top level free of anything heavy.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
INPUTS, MEMORY_INPUTS, CLASSES = 32, 20, 4

SCALING_SPACE = {
    "units": {"type": "int", "min": 16, "max": 64, "step": 16},
    "learning_rate": {"type": "choice", "values": [1e-2, 3e-3, 1e-3]},
}
MEMORY_SPACE = {  # as bench/memory_bench.py
    "num_layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 16, "max": 128, "step": 16},
    "learning_rate": {"type": "choice", "values": [1e-2, 3e-3, 1e-3]},
}


# --------------------------------------------------------------------------- what-if experiments


def _what_if_no_autotune() -> None:
    """Experiment only (``scaling --what-if no-autotune``): archsearch's epoch-ordered training pipeline
    (``archsearch.datasets.pipeline``) with tf.data autotuning off.  At module level, so it also applies
    in every worker (spawn imports this module in each one before it starts)."""
    from archsearch.datasets import pipeline

    original = pipeline._tf_epoch_batches

    def without_autotune(*args, **kwargs):
        import tensorflow as tf

        dataset, steps = original(*args, **kwargs)
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.with_options(options), steps

    pipeline._tf_epoch_batches = without_autotune


WHAT_IF = os.environ.get("EXECUTOR_BENCH_WHAT_IF", "")
if WHAT_IF == "no-autotune":
    _what_if_no_autotune()


# --------------------------------------------------------------------------- the model and data


def make_data(n: int, inputs: int = INPUTS, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((n, inputs)).astype("float32")
    y = (x[:, :CLASSES].argmax(axis=1)).astype("int32")
    split = int(n * 0.8)
    return (x[:split], y[:split]), (x[split:], y[split:])


def build(hp):
    """A tiny MLP: one hidden layer."""
    import keras

    model = keras.Sequential([keras.Input((INPUTS,)), keras.layers.Dense(hp.Int("units", 16, 64, step=16), activation="relu"),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 3e-3, 1e-3])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build_memory(hp):
    """bench/memory_bench.py's builder: 1-3 Dense layers on 20 features."""
    import keras

    model = keras.Sequential([keras.Input((MEMORY_INPUTS,))])
    for _ in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int("units", 16, 128, step=16), activation="relu"))
    model.add(keras.layers.Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 3e-3, 1e-3])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def pin_threads(threads: int) -> None:
    """What a worker with ``threads: 1`` does to itself, for the inline reference (before TensorFlow starts)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1" if threads == 1 else "2"
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1 if threads == 1 else 2)


# --------------------------------------------------------------------------- instrumentation


def rss_mb(process=None) -> float:
    import psutil

    return (process or psutil.Process()).memory_info().rss / 2**20


def cpu_seconds(worker: str | None) -> float | None:
    """CPU time (user + system) so far of the process training a trial: its worker (named with its pid), or this one."""
    import psutil

    try:
        process = psutil.Process(int(worker.rsplit("pid ", 1)[1].rstrip(")"))) if worker else psutil.Process()
        times = process.cpu_times()
    except (psutil.Error, ValueError, IndexError):
        return None
    return times.user + times.system


def worker_processes():
    """The driver's spawned worker processes (not multiprocessing's resource tracker)."""
    import psutil

    out = []
    for child in psutil.Process().children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                out.append(child)
        except psutil.Error:
            pass
    return out


class StampedConn:
    """A worker's pipe, unchanged, that notes when each message from the worker reached the driver."""

    def __init__(self, conn, index: int, log: list) -> None:
        self._conn, self._index, self._log = conn, index, log

    def recv(self):
        message = self._conn.recv()
        self._log.append((time.time(), "recv", self._index, message[0], message[1] if len(message) > 1 else None))
        return message

    def send(self, obj):
        self._conn.send(obj)
        self._log.append((time.time(), "send", self._index, obj[0], None))

    def poll(self, *args):
        return self._conn.poll(*args)

    def fileno(self):
        return self._conn.fileno()

    def close(self):
        return self._conn.close()


def instrument_process_executor(log: list) -> None:
    """Stamp the executor's slow steps: starting a worker (``process.start()``), stopping one, messages."""
    from archsearch.executors import process as P

    spawn, stop, retire = P.ProcessExecutor._spawn, P.ProcessExecutor._stop, P.ProcessExecutor._retire

    def timed_spawn(self, index, register=True):
        start = time.time()
        worker = spawn(self, index, register=register)
        log.append((start, "spawn", index, time.time() - start, worker.process.pid))
        worker.conn = StampedConn(worker.conn, index, log)
        return worker

    def timed_stop(self, worker, kill):
        start = time.time()
        stop(self, worker, kill)
        log.append((start, "stop", worker.index, time.time() - start, bool(kill)))

    def timed_retire(self, worker):  # a recycle: how long the driver is held (it no longer joins the worker)
        start = time.time()
        retire(self, worker)
        log.append((start, "stop", worker.index, time.time() - start, False))

    P.ProcessExecutor._spawn, P.ProcessExecutor._stop, P.ProcessExecutor._retire = timed_spawn, timed_stop, timed_retire


def make_listener(samples: dict, epochs: int, memory: bool):
    from archsearch.core.events import SearchEvents

    class Timeline(SearchEvents):
        """Driver-side times of each trial; with ``memory``, RSS of the driver and of the workers."""

        def on_trial_begin(self, trial, spec, worker):
            samples["trials"].setdefault(trial.id, {})["begin"] = time.time()
            samples["trials"][trial.id]["worker"] = worker

        def on_epoch_end(self, trial, epoch, metrics, value):
            record = samples["trials"][trial.id]
            record.setdefault("epochs", []).append(time.time())
            record.setdefault("cpu", []).append(cpu_seconds(record.get("worker")))
            if memory and epoch == epochs:  # the worker is alive, waiting for the driver's answer
                workers = worker_processes()
                record["worker_rss"] = sum(rss_mb(w) for w in workers) if workers else None

        def on_trial_end(self, trial, outcome):
            record = samples["trials"][trial.id]
            record["end"] = time.time()
            record["duration"] = outcome.duration
            record["fit_s"] = outcome.fit_seconds
            if memory:
                record["driver_rss"] = rss_mb()

    return Timeline()


def store_times(folder: Path) -> dict:
    """started_at / finished_at per trial and each epoch's recorded_at, straight from trials.db."""
    from archsearch.core.store import TrialStore

    with TrialStore.open_read_only(folder) as store:
        trials = {r["id"]: {"started_at": r["started_at"], "finished_at": r["finished_at"], "worker": r["worker"]}
                  for r in store.rows()}
        for record in store.epoch_records():
            trials[record["trial_id"]].setdefault("recorded_at", []).append(record["recorded_at"])
    return {str(k): v for k, v in trials.items()}


# --------------------------------------------------------------------------- one contender


def contender(args) -> dict:
    """One search in this process; every figure the tables need, as JSON."""
    executor = args.executor
    if executor == "inline" and args.threads:
        pin_threads(args.threads)
    if executor == "process":
        log: list = []
        instrument_process_executor(log)
    else:
        log = []
    import archsearch

    memory = args.section == "memory"
    space = dict(MEMORY_SPACE if memory else SCALING_SPACE)
    (x, y), (xv, yv) = make_data(args.samples, MEMORY_INPUTS if memory else INPUTS)
    samples: dict = {"trials": {}}
    folder = Path(tempfile.mkdtemp(prefix=f"executor-bench-{args.section}-"))
    options = {}
    if executor == "process":
        if args.threads:
            options["threads"] = args.threads
        if args.max_trials_per_worker:
            options["max_trials_per_worker"] = args.max_trials_per_worker
    tuner = archsearch.RandomSearch(
        build_memory if memory else build, objective="val_accuracy", max_trials=args.trials, seed=args.seed,
        hyperparameters=archsearch.HyperParameters.from_config(space), directory=str(folder), project_name="run",
        executor=executor, parallel_trials=args.workers, executor_options=options,
        listeners=[make_listener(samples, args.epochs, memory)],
    )
    import resource

    self0, children0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    tuner.search(x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=(xv, yv), verbose=0)
    end = time.time()
    self1, children1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"executor": executor, "workers": args.workers, "threads": args.threads,
            "max_trials_per_worker": args.max_trials_per_worker, "search_start": start, "search_end": end,
            "wall_s": end - start, "trials": samples["trials"], "log": log, "store": store_times(folder / "run"),
            "driver_rss_end": rss_mb(),
            # CPU seconds during search(): this process, and its workers (every one is joined before it returns)
            "driver_cpu_s": (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime),
            "workers_cpu_s": (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)}


def run_contender(section: str, executor: str, workers: int, extra: list[str], what_if: str = "") -> dict:
    command = [sys.executable, __file__, section, "--contender", "--executor", executor, "--workers", str(workers),
               *extra]
    env = {**os.environ, "EXECUTOR_BENCH_WHAT_IF": what_if}
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- analysis helpers


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def timeline(result: dict) -> dict:
    """Per-run breakdown: runner time, overhead per trial, driver gaps, worker start-up."""
    trials = [result["trials"][k] for k in sorted(result["trials"], key=int)]
    log = result["log"]
    spawns = [e for e in log if e[1] == "spawn"]
    stops = [e for e in log if e[1] == "stop"]
    ready = {e[2]: [] for e in spawns}
    for e in log:
        if e[1] == "recv" and e[3] == "ready":
            ready.setdefault(e[2], []).append(e[0])
    # spawn -> ready, pairing each worker index's spawns and readies in order
    starts = []
    by_index: dict[int, list[float]] = {}
    for e in spawns:
        by_index.setdefault(e[2], []).append(e[0])
    for index, times in by_index.items():
        for spawned, became_ready in zip(times, ready.get(index, [])):
            starts.append(became_ready - spawned)
    # a result reaches the driver -> the next trial is submitted, per worker slot (driver-side gap)
    finished = sorted(e[0] for e in log if e[1] == "recv" and e[3] == "finished")
    ends = sorted(t["end"] for t in trials)
    begins = sorted(t["begin"] for t in trials)
    gaps = [min((b for b in begins if b >= e), default=None) for e in ends]
    gaps = [b - e for b, e in zip(gaps, ends) if b is not None]
    span = max(ends) - min(begins)
    per_trial = [t["end"] - t["begin"] for t in trials]
    return {
        "wall": result["wall_s"],
        "span": span,
        "before_first": min(begins) - result["search_start"],
        "after_last": result["search_end"] - max(ends),
        "runner": sum(t["duration"] for t in trials),
        "fit": sum(t["fit_s"] for t in trials),
        "per_trial": median(per_trial),
        "runner_per_trial": median([t["duration"] for t in trials]),
        "overhead_per_trial": median([t["end"] - t["begin"] - t["duration"] for t in trials]),
        "first_epoch": [t["epochs"][0] - t["begin"] for t in sorted(trials, key=lambda t: t["begin"])],
        "gap": median(gaps),
        "spawn_block": [e[3] for e in spawns],
        "spawn_to_ready": starts,
        "stop": [e[3] for e in stops if not e[4]],
        "recycle_stops": [e[3] for e in stops if not e[4] and e[0] < max(ends)],  # not the final shutdown
        "finished_to_end": [t["end"] - f for t, f in zip(sorted(trials, key=lambda t: t["end"]), finished)]
        if len(finished) == len(trials) else [],
        "workers_started": len(spawns),
        "epoch_turnaround": _turnarounds(log),
        "tails": [t["end"] - t["epochs"][-1] for t in trials],  # last epoch -> result
        # cores the training process used from a trial's first to its last epoch (steady training)
        "training_cores": median([(t["cpu"][-1] - t["cpu"][0]) / (t["epochs"][-1] - t["epochs"][0]) for t in trials
                                  if len(t.get("cpu", [])) > 1 and None not in (t["cpu"][0], t["cpu"][-1])]),
        "driver_cores": result["driver_cpu_s"] / result["wall_s"],
        "workers_cpu": result["workers_cpu_s"],
        "driver_cpu": result["driver_cpu_s"],
    }


def _fit_stalls(r: dict) -> tuple[int, float]:
    """Trials whose result reached the driver more than 1 s after their last epoch, and those seconds."""
    tails = [t for t in r["tails"] if t > 1.0]
    return len(tails), sum(tails)


def _turnarounds(log: list) -> list[float]:
    """Per epoch: the worker's report reaches the driver -> the driver's answer is sent (the worker waits)."""
    pending: dict[int, float] = {}
    out = []
    for at, kind, index, what, _ in log:
        if kind == "recv" and what == "epoch":
            pending[index] = at
        elif kind == "send" and what == "decision" and index in pending:
            out.append(at - pending.pop(index))
    return out


# --------------------------------------------------------------------------- scaling


SCALING = [  # (label, executor, workers, threads)
    ("process, 1 worker", "process", 1, 1),
    ("process, 2 workers", "process", 2, 1),
    ("inline, 1 thread", "inline", 1, 1),
    ("inline, default threads", "inline", 1, 0),
    ("control: 2 inline searches side by side, 1 thread each", "pair", 2, 1),
]


def side_by_side(extra: list[str], trials: int) -> dict:
    """Two independent inline searches (1 thread each, different seeds) at the same time: the machine's own
    slowdown when two trainings share the 2 cores, with no executor involved."""
    command = [sys.executable, __file__, "scaling", "--contender", "--executor", "inline", "--workers", "1", *extra,
               "--threads", "1"]
    half = [str(trials // 2), str(trials - trials // 2)]
    procs = [subprocess.Popen([*command, "--trials", n, "--seed", str(seed)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for seed, n in enumerate(half)]
    outs = [p.communicate() for p in procs]
    results = []
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"side-by-side inline search failed:\n{err[-3000:]}")
        results.append(timeline(json.loads(out.strip().splitlines()[-1])))
    return {
        "wall": max(r["wall"] for r in results), "span": max(r["span"] for r in results),
        "before_first": max(r["before_first"] for r in results), "per_trial": median([r["per_trial"] for r in results]),
        "runner_per_trial": median([r["runner_per_trial"] for r in results]), "gap": median([r["gap"] for r in results]),
        "workers_started": 0, "training_cores": median([r["training_cores"] for r in results]),
        "driver_cores": sum(r["driver_cores"] for r in results),
    }


def scaling(args) -> None:
    extra = ["--trials", str(args.trials), "--epochs", str(args.epochs), "--samples", str(args.samples),
             "--batch-size", str(args.batch_size)]
    contenders = SCALING if not args.what_if else SCALING[:3]
    runs: dict[str, list[dict]] = {label: [] for label, *_ in contenders}
    for repeat in range(args.repeats):
        order = contenders if repeat % 2 == 0 else contenders[::-1]  # alternate the order between repeats
        for label, executor, workers, threads in order:
            if executor == "pair":
                runs[label].append(side_by_side(extra[2:], args.trials))
            else:
                result = run_contender("scaling", executor, workers, [*extra, "--threads", str(threads)],
                                       what_if=args.what_if)
                runs[label].append(timeline(result))
            print(f"  repeat {repeat + 1}: {label}: {runs[label][-1]['wall']:.1f} s", file=sys.stderr)
    walls = {label: median([r["wall"] for r in rs]) for label, rs in runs.items()}
    base = walls["process, 1 worker"]
    print(f"{args.trials} trials of a tiny MLP (Dense {SCALING_SPACE['units']['min']}-{SCALING_SPACE['units']['max']}"
          f", {args.samples} x {INPUTS} samples, {args.epochs} epochs, batch {args.batch_size}); median of "
          f"{args.repeats} interleaved repeats" + (f"; WHAT-IF: {args.what_if}" if args.what_if else ""))
    header = ["executor", "wall s (runs)", "trials / hour", "efficiency", "span first submit -> last result s",
              "before first submit s", "median trial s (submit -> result)", "of it in the runner s",
              "driver gap result -> next submit s", "workers started", "cores per training process",
              "driver cores (avg)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, executor, workers, _ in contenders:
        rs = runs[label]
        wall = walls[label]
        efficiency = base / (workers * wall) if executor == "process" else base / wall
        eff_text = f"**{efficiency:.2f}**" if (executor == "process" and workers > 1) else (
            "1 (base)" if label == "process, 1 worker" else f"({efficiency:.2f} vs 1 worker)")
        if executor == "pair":  # against one inline search of all the trials
            eff_text = f"({walls['inline, 1 thread'] / (2 * wall):.2f} vs inline, 1 thread)"
        each = ", ".join(f"{r['wall']:.1f}" for r in rs)
        print(f"| {label} | {wall:.1f} ({each}) | "
              f"{3600 * args.trials / wall:.0f} | {eff_text} | {median([r['span'] for r in rs]):.1f} | "
              f"{median([r['before_first'] for r in rs]):.2f} | {median([r['per_trial'] for r in rs]):.2f} | "
              f"{median([r['runner_per_trial'] for r in rs]):.2f} | {median([r['gap'] for r in rs]):.3f} | "
              f"{rs[0]['workers_started']} | {median([r['training_cores'] for r in rs]):.2f} | "
              f"{median([r['driver_cores'] for r in rs]):.2f} |")
    one, two = runs["process, 1 worker"], runs["process, 2 workers"]
    print()
    for label, rs, n in (("1 worker", one, 1), ("2 workers", two, 2)):
        later = median([median(r["first_epoch"][n:]) for r in rs])
        print(f"{label}: runner time summed over trials {median([r['runner'] for r in rs]):.1f} s "
              f"(fit {median([r['fit'] for r in rs]):.1f} s); worker start (spawn -> ready) "
              f"{median([median(r['spawn_to_ready']) for r in rs]):.2f} s; driver blocked in process.start() "
              f"{median([max(r['spawn_block']) for r in rs]):.3f} s; submit -> first epoch, first trial of a worker "
              f"{median([median(r['first_epoch'][:n]) for r in rs]):.2f} s / later "
              f"{later:.2f} s; "
              f"result after the last trial -> search() returns {median([r['after_last'] for r in rs]):.2f} s; "
              f"epoch report -> driver's answer {1000 * median([median(r['epoch_turnaround']) for r in rs]):.1f} ms "
              f"median, {1000 * median([max(r['epoch_turnaround']) for r in rs]):.0f} ms max")
    sequential_runner = median([r["runner_per_trial"] for r in one])
    parallel_runner = median([r["runner_per_trial"] for r in two])
    pair = median([r["runner_per_trial"] for r in runs.get(SCALING[-1][0], [])])
    alone = median([r["runner_per_trial"] for r in runs["inline, 1 thread"]])
    print(f"Runner time per trial with 2 workers / with 1: {parallel_runner / sequential_runner:.2f}; two inline "
          f"searches side by side / one alone: {pair / alone:.2f} (> 1: the trainings themselves run slower side by side)")
    stalls = [_fit_stalls(r) for r in two]
    print(f"2 workers: trials whose result came > 1 s after their last epoch (the end-of-fit stall): "
          f"{median([n for n, _ in stalls])} of {args.trials} (median over repeats), "
          f"{median([s for _, s in stalls]):.1f} s of worker time in all")
    for label, rs in (("1 worker", one), ("2 workers", two)):
        print(f"{label}: CPU seconds during search(): driver {median([r['driver_cpu'] for r in rs]):.1f}, "
              f"workers {median([r['workers_cpu'] for r in rs]):.1f} (wall {median([r['wall'] for r in rs]):.1f})")


# --------------------------------------------------------------------------- memory


def memory(args) -> None:
    extra = ["--trials", str(args.trials), "--epochs", str(args.epochs), "--samples", str(args.samples),
             "--batch-size", str(args.batch_size), "--threads", "0"]
    results = {}
    for label, executor in (("process executor, 1 worker", "process"), ("inline executor", "inline")):
        results[label] = run_contender("memory", executor, 1, extra)
        print(f"  {label}: {results[label]['wall_s']:.1f} s", file=sys.stderr)
    early, last = 5, args.trials
    print(f"{args.trials} trials (1-3 Dense layers of 16-128 units, {args.samples} x {MEMORY_INPUTS} samples, "
          f"{args.epochs} epochs); RSS in MB")
    header = ["executor", "process", f"after trial {early}", f"after trial {last // 2}", f"after trial {last}",
              f"growth {early} -> {last}", "max over the search"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, result in results.items():
        trials = [result["trials"][k] for k in sorted(result["trials"], key=int)]
        rows = [("driver", [t.get("driver_rss") for t in trials])]
        if result["executor"] == "process":
            rows.append(("worker (at the trial's last epoch)", [t.get("worker_rss") for t in trials]))
        for who, series in rows:
            a, m, b = series[early - 1], series[last // 2 - 1], series[last - 1]
            print(f"| {label} | {who} | {a:.0f} | {m:.0f} | {b:.0f} | {100 * (b - a) / a:+.1f}% | "
                  f"{max(s for s in series if s is not None):.0f} |")
    process = results["process executor, 1 worker"]
    trials = [process["trials"][k] for k in sorted(process["trials"], key=int)]
    worker = [t.get("worker_rss") for t in trials]
    k = args.trials_per_worker_default
    fresh = [worker[i] for i in range(0, len(worker), k)]
    tenth = [worker[i] for i in range(k - 1, len(worker), k)]
    print(f"\nworker RSS on its first trial: {', '.join(f'{v:.0f}' for v in fresh)} MB; on its {k}th: "
          f"{', '.join(f'{v:.0f}' for v in tenth)} MB; growth per trial inside a worker "
          f"{median([(b - a) / (k - 1) for a, b in zip(fresh, tenth)]):.1f} MB; workers started "
          f"{sum(1 for e in process['log'] if e[1] == 'spawn')}")
    inline = results["inline executor"]
    print(f"wall: process {process['wall_s']:.1f} s, inline {inline['wall_s']:.1f} s")


# --------------------------------------------------------------------------- start-up cost


def startup(args) -> None:
    extra = ["--trials", str(args.trials), "--epochs", str(args.epochs), "--samples", str(args.samples),
             "--batch-size", str(args.batch_size), "--threads", "1"]
    runs: dict[str, list[dict]] = {"fresh": [], "warm": []}
    for repeat in range(args.repeats):
        for kind, per_worker in (("fresh", 1), ("warm", 1000)) if repeat % 2 == 0 else (("warm", 1000), ("fresh", 1)):
            result = run_contender("startup", "process", 1, [*extra, "--max-trials-per-worker", str(per_worker)])
            runs[kind].append(timeline(result))
            print(f"  repeat {repeat + 1}: {kind}: {result['wall_s']:.1f} s", file=sys.stderr)
    fresh, warm = runs["fresh"], runs["warm"]
    # warm: every trial but the first runs on a worker that has trained before
    warm_first = median([median(r["first_epoch"][1:]) for r in warm])
    fresh_first = median([median(r["first_epoch"]) for r in fresh])
    spawn_block = median([median(r["spawn_block"]) for r in fresh])
    to_ready = median([median(r["spawn_to_ready"]) for r in fresh])
    stop = median([median(r["stop"]) for r in fresh])
    warm_trial = median([r["per_trial"] for r in warm])
    fresh_trial = median([r["per_trial"] for r in fresh])
    wall_fresh, wall_warm = median([r["wall"] for r in fresh]), median([r["wall"] for r in warm])
    per_start_wall = (wall_fresh - wall_warm) / (args.trials - 1)
    per_start = fresh_first - warm_first + stop
    print(f"1 worker, {args.trials} trials of {args.epochs} epochs ({args.samples} x {INPUTS} samples), threads 1; "
          f"median of {args.repeats} interleaved repeats")
    print("| figure | fresh worker every trial (K=1) | one warm worker (K large) |")
    print("|---|---|---|")
    print(f"| submit -> first epoch reaches the driver | {fresh_first:.2f} s | {warm_first:.2f} s (trials 2..) |")
    print(f"| of it: process.start() (driver blocked) | {spawn_block:.3f} s | - |")
    print(f"| of it: process.start() -> worker ready (Python, archsearch, runner unpickled) | {to_ready:.2f} s | - |")
    print(f"| worker exit after its last trial (driver waits in _stop) | {stop:.2f} s | - |")
    turn_fresh = median([median(r["epoch_turnaround"]) for r in fresh])
    turn_warm = median([median(r["epoch_turnaround"]) for r in warm])
    print(f"| epoch report -> driver's answer (median) | {1000 * turn_fresh:.1f} ms | {1000 * turn_warm:.1f} ms |")
    print(f"| submit -> result, median trial | {fresh_trial:.2f} s | {warm_trial:.2f} s |")
    print(f"| wall of the search | {wall_fresh:.1f} s | {wall_warm:.1f} s |")
    print(f"\nCost of one fresh worker: {per_start:.2f} s from the timeline (first-epoch difference + exit), "
          f"{per_start_wall:.2f} s from the walls ((fresh - warm) / {args.trials - 1})")
    cost = per_start_wall
    print(f"\nShare of a search spent starting workers, c / (c + K x T), c = {cost:.2f} s:")
    print("| trial length T | K = 1 | K = 5 | K = 10 (default) | K = 20 |")
    print("|---|---|---|---|---|")
    for length in (1, 5, 20):
        print(f"| {length} s | " + " | ".join(f"{100 * cost / (cost + k * length):.1f}%" for k in (1, 5, 10, 20)) + " |")


# --------------------------------------------------------------------------- recycling while others train


def recycle(args) -> None:
    """2 workers, each recycled after every ``--max-trials-per-worker`` trials: while the driver stops a
    worker (joins its exit) or starts one, the other worker's epoch reports wait for an answer."""
    extra = ["--trials", str(args.trials), "--epochs", str(args.epochs), "--samples", str(args.samples),
             "--batch-size", str(args.batch_size), "--threads", "1",
             "--max-trials-per-worker", str(args.max_trials_per_worker or 2)]
    rows = []
    for repeat in range(args.repeats):
        result = run_contender("recycle", "process", 2, extra)
        rows.append(_held_epochs(result))
        print(f"  repeat {repeat + 1}: {result['wall_s']:.1f} s", file=sys.stderr)
    k = args.max_trials_per_worker or 2
    print(f"2 workers, max_trials_per_worker={k}, {args.trials} trials of {args.epochs} epochs "
          f"({args.samples} x {INPUTS} samples), threads 1; {args.repeats} runs")
    header = ["driver busy with", "times (all runs)", "median s (max)", "epochs of the other worker that waited",
              "their extra wait, median s (max)"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|")
    for what, label in (("recycle", "recycling a worker: its exit (_stop joins it), then process.start() of the next"),
                        ("spawn", "starting the first workers (process.start())")):
        windows = [w for r in rows for w in r[what]["windows"]]
        waits = [w for r in rows for w in r[what]["waits"]]
        print(f"| {label} | {len(windows)} | {median(windows):.3f} ({max(windows or [0]):.3f}) | {len(waits)} | "
              f"{median(waits):.2f} ({max(waits or [float('nan')]):.2f}) |")
    others = [w for r in rows for w in r["elsewhere"]]
    print(f"\nEpoch intervals longer than the trial's median + 0.3 s outside those windows: {len(others)} "
          f"of {sum(r['epochs'] for r in rows)} epochs")


def _held_epochs(result: dict) -> dict:
    """Epochs of other trials that ended while the driver was recycling a worker, and how long they waited.

    A recycle is the old worker's exit (``_stop`` joins it) and, right after, ``process.start()`` of its
    replacement; the first workers' starts are counted apart.  An epoch's report waits for the driver's
    answer, and its arrival is stamped when the driver reads it: its extra wait is its interval from the
    trial's previous epoch minus the trial's median interval.
    """
    trials = result["trials"]
    log = result["log"]
    last_end = max(t["end"] for t in trials.values())
    stops = [(e[0], e[0] + e[3]) for e in log if e[1] == "stop" and not e[4] and e[0] < last_end]
    spawns = [(e[0], e[0] + e[3]) for e in log if e[1] == "spawn"]
    windows: dict[str, list[tuple[float, float]]] = {"recycle": [], "spawn": []}
    for start, end in spawns:
        before = [s for s in stops if 0 <= start - s[1] < 0.5]  # the exit it replaces, just before
        if before:
            windows["recycle"].append((before[-1][0], end))
        else:
            windows["spawn"].append((start, end))
    out = {what: {"windows": [b - a for a, b in ws], "waits": []} for what, ws in windows.items()}
    out["elsewhere"], out["epochs"] = [], 0
    for t in trials.values():
        epochs = t["epochs"]
        intervals = [b - a for a, b in zip(epochs, epochs[1:])]
        if not intervals:
            continue
        typical = median(intervals)
        for previous, arrived, interval in zip(epochs, epochs[1:], intervals):
            out["epochs"] += 1
            held = None
            for what, ws in windows.items():
                for start, end in ws:
                    # the report was sent before the window ended and read right after it
                    if previous < end and start - 0.05 <= arrived <= end + 0.05:
                        held = what
            if held is not None:
                out[held]["waits"].append(max(0.0, interval - typical))
            elif interval > typical + 0.3:
                out["elsewhere"].append(interval)
    return out


# --------------------------------------------------------------------------- main


DEFAULTS = {  # section: (trials, epochs, samples, batch size)
    "scaling": (12, 8, 4000, 32),
    "memory": (50, 2, 1000, 32),
    "startup": (8, 2, 2000, 32),
    "recycle": (12, 10, 2000, 32),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=sorted(DEFAULTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--what-if", default="", choices=["", "no-autotune"],
                        help="scaling only: rerun the process and inline contenders with the training pipeline's "
                             "tf.data autotuning off (an experiment, not an archsearch setting)")
    # for --contender (one search in this process)
    parser.add_argument("--contender", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--executor", default="process", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-trials-per-worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    trials, epochs, samples, batch = DEFAULTS[args.section]
    args.trials = args.trials or trials
    args.epochs = args.epochs or epochs
    args.samples = args.samples or samples
    args.batch_size = args.batch_size or batch
    if args.contender:
        print(json.dumps(contender(args)))
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", file=sys.stderr)
    if args.section == "scaling":
        scaling(args)
    elif args.section == "memory":
        from archsearch.executors.process import DEFAULT_MAX_TRIALS_PER_WORKER

        args.trials_per_worker_default = DEFAULT_MAX_TRIALS_PER_WORKER
        memory(args)
    elif args.section == "recycle":
        recycle(args)
    else:
        startup(args)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)", file=sys.stderr)


if __name__ == "__main__":
    main()
