"""GPU check: does a search keep one GPU busy?  Several trials per GPU and mixed precision, side by side.

One command, no internet, about 8 minutes on one GPU::

    python bench/gpu_check.py                          # the whole check: 16 searches + the reference
    KERAS_BACKEND=jax python bench/gpu_check.py        # where TensorFlow is not installed
    python bench/gpu_check.py --dry                    # tiny, on the CPU, executor.gpus=[0] simulated
    python bench/gpu_check.py --workloads cnn --trials-per-gpu 1,auto --mixed-precision off --seconds 60

It runs the real command line (``python -m archsearch``), one search at a time, each in a fresh run folder:

(a) ``cnn``: a small CNN (``model=cnn``) on the built-in ``shapes`` images;
(b) ``unet``: the U-Net (``model=unet``) on the built-in ``documents`` pages (128x128 in the full check);

each with ``executor.trials_per_gpu`` 1, 2, 4 and ``auto`` and ``trainer.mixed_precision`` off and on.  A
search is stopped (SIGTERM: archsearch stops cleanly, keeping what finished) after ``--seconds``, so every
run costs the same wall time whatever the GPU; its pace is measured from the store over the trials that
ended.  Then a plain Keras ``model.fit`` of the first run's first configuration, on the same arrays, with no
archsearch around it, is the physical reference for one trial's speed.

Printed side by side, and written as JSON (``--out``): trials per hour (from the first trial's start, worker
start-up included; and steady: the trials after the first to end, over the time after it), samples per second
of the steady epochs, mean GPU utilisation (all epochs, and steady: after each trial's first epoch, which also
builds and compiles), peak GPU memory, out-of-memory
trials, other failed trials, the best objective (to see that mixed precision keeps the quality), and the
``trials_per_gpu`` an ``auto`` run chose (store meta ``gpu_sharing``).  The issue's targets are checked
at the end: with the chosen ``trials_per_gpu`` >= 2x the trials per hour of one per GPU on the CNN, >= 85%
steady utilisation, no OOM, mixed precision >= 1.5x faster on the U-Net.

GPU figures come from the epochs (archsearch/training/gpu_stats.py) and need NVML (``nvidia-ml-py``);
without it the GPU columns are empty and the rest still runs.  An option this archsearch's config does not
have (``executor.trials_per_gpu``, ``trainer.mixed_precision``) is left out with a printed note, so the
check runs on older versions too.  This script never imports TensorFlow: on a machine with JAX (or torch)
and no TensorFlow set ``KERAS_BACKEND``; the built-in data needs OpenCV only.  A machine with jax, opencv and
nvidia-ml-py but no Keras (the lent GPU machines) needs archsearch's other dependencies installed first (keras,
hydra-core, omegaconf, rich, moocore, plotly, ...: ``pip install --no-deps`` of their wheels).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's archsearch, as the searches it starts use

TRIALS_PER_GPU = ("1", "2", "4", "auto")
MIXED_PRECISION = ("off", "on")
PRECISION_VALUES = {"off": "false", "on": "true"}

# Each workload at full size (on a GPU) and tiny (--dry, on a CPU in seconds).  The searches are random
# searches of the families' own spaces; trials are short on purpose: that is what leaves a GPU idle.
WORKLOADS: dict[str, dict[str, list[str]]] = {
    "cnn": {
        "full": ["model=cnn", "data=shapes", "data.num_samples=6000", "tuner=random", "tuner.max_trials=200",
                 "trainer.epochs=3"],
        "dry": ["model=cnn", "data=shapes", "data.num_samples=64", "data.image_size=12", "data.test_samples=8",
                "tuner=random", "tuner.max_trials=1", "trainer.epochs=1", "trainer.batch_size=16"],
    },
    "unet": {
        "full": ["model=unet", "data.image_size=128", "data.num_samples=192", "tuner=random", "tuner.max_trials=200",
                 "trainer.epochs=3"],
        "dry": ["model=unet", "data.image_size=16", "data.num_samples=10", "data.test_samples=4", "tuner=random",
                "tuner.max_trials=1", "trainer.epochs=1", "model.space.net_depth.max=2",
                "model.space.start_neurons.max=8"],
    },
}
COMMON = ["progress=false", "report=false", "export.format=keras"]


@dataclass
class RunResult:
    """One search of the plan, as read back from its store."""

    workload: str
    trials_per_gpu: str | None
    mixed_precision: str | None
    folder: str
    exit_status: int = 0
    wall_seconds: float = 0.0
    stopped_at_limit: bool = False
    trials_ended: int = 0
    completed: int = 0
    oom: int = 0
    failed: int = 0
    trials_per_hour: float | None = None  # ended trials over the time from the first start (worker start-up in)
    steady_trials_per_hour: float | None = None  # the trials after the first to end, over the time after its end
    mean_gpu_utilization: float | None = None
    steady_gpu_utilization: float | None = None
    peak_gpu_memory_mb: float | None = None
    samples_per_second: float | None = None
    objective: str = ""
    best_value: float | None = None
    chosen_trials_per_gpu: Any = None
    errors: list[str] = field(default_factory=list)
    output_tail: str = ""


# ------------------------------------------------------------------ the plan
def config_has(section: str, key: str) -> bool:
    """Whether this archsearch's config has ``<section>.<key>`` (conf/executor/process.yaml, conf/trainer/default.yaml)."""
    import yaml

    path = REPO / "conf" / {"executor": "executor/process.yaml", "trainer": "trainer/default.yaml"}[section]
    return key in (yaml.safe_load(path.read_text()) or {})


def plan(workloads: list[str], trials_per_gpu: list[str], precisions: list[str]) -> tuple[list[tuple], list[str]]:
    """The runs (workload, trials_per_gpu or None, mixed precision or None) and the notes on options left out."""
    notes = []
    if not config_has("executor", "trials_per_gpu"):
        notes.append("executor.trials_per_gpu is not in this archsearch's config (conf/executor/process.yaml): "
                     "left out, every run trains one trial per GPU")
        trials_per_gpu = [None]
    if not config_has("trainer", "mixed_precision"):
        notes.append("trainer.mixed_precision is not in this archsearch's config (conf/trainer/default.yaml): "
                     "left out, every run trains at the config's precision")
        precisions = [None]
    return [(w, n, p) for w in workloads for p in precisions for n in trials_per_gpu], notes


def overrides(workload: str, trials_per_gpu: str | None, precision: str | None, dry: bool) -> list[str]:
    """The command line of one run."""
    args = [*WORKLOADS[workload]["dry" if dry else "full"], *COMMON, "executor=process"]
    if dry:
        # No GPU: the executor only bookkeeps the id and sets CUDA_VISIBLE_DEVICES; the backend runs on the CPU.
        args.append('++executor.gpus=["0"]')
    if trials_per_gpu is not None:
        args.append(f"executor.trials_per_gpu={trials_per_gpu}")
    if precision is not None:
        args.append(f"trainer.mixed_precision={PRECISION_VALUES[precision]}")
    return args


# ------------------------------------------------------------------ running a search
def run_search(folder: Path, args: list[str], seconds: float | None, hang_limit: float) -> tuple[int, float, bool, str]:
    """``python -m archsearch <args>`` in ``folder``: stopped with SIGTERM after ``seconds`` (None: runs to its
    end); returns (exit status, wall seconds, stopped at the limit, output tail)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "archsearch", *args, f"hydra.run.dir={folder}"]
    log = folder.parent / f"{folder.name}.log"
    start = time.perf_counter()
    stopped = False
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            stopped = True
            process.send_signal(signal.SIGTERM)  # a clean stop: finished trials stay in the store
        try:
            process.wait(timeout=hang_limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    wall = time.perf_counter() - start
    return process.returncode, wall, stopped, log.read_text(errors="replace")[-3000:]


def read_result(result: RunResult) -> RunResult:
    """The run's figures, from its store (the report's reading of it)."""
    from archsearch.core.store import TrialStore
    from archsearch.report.data import finite, read_run
    from archsearch.report.gpu import gpu_view

    folder = Path(result.folder)
    if not (folder / "trials.db").exists():
        result.errors.append("no trials.db: the search did not start")
        return result
    run = read_run(folder)
    with TrialStore.open_read_only(folder / "trials.db") as store:
        sharing = store.meta().get("gpu_sharing")
    result.objective = run.objective
    best = run.best()
    result.best_value = best["value"] if best else None
    ended = [t for t in run.trials if t["status"] in ("completed", "failed", "pruned")]
    result.trials_ended = len(ended)
    result.completed = sum(t["status"] == "completed" for t in run.trials)
    result.oom = sum(t.get("failure_kind") == "oom" for t in run.trials)
    result.failed = sum(t["status"] == "failed" and t.get("failure_kind") != "oom" for t in run.trials)
    result.errors += sorted({(t.get("error") or "").strip().splitlines()[-1][:200] for t in run.trials
                             if t["status"] == "failed" and t.get("error")})
    starts = [t["started_at"] for t in run.trials if finite(t.get("started_at"))]
    ends = [t["finished_at"] for t in ended if finite(t.get("finished_at"))]
    if starts and ends and max(ends) > min(starts):
        result.trials_per_hour = len(ends) / ((max(ends) - min(starts)) / 3600.0)
    if len(ends) >= 3 and max(ends) > min(ends):
        result.steady_trials_per_hour = (len(ends) - 1) / ((max(ends) - min(ends)) / 3600.0)
    # Steady epochs (each trial's first also builds and compiles), or every epoch when trials train one.
    speeds = ([e["samples_per_second"] for epochs in run.epochs.values() for e in epochs[1:]
               if finite(e.get("samples_per_second"))]
              or [e["samples_per_second"] for epochs in run.epochs.values() for e in epochs
                  if finite(e.get("samples_per_second"))])
    result.samples_per_second = sum(speeds) / len(speeds) if speeds else None
    view = gpu_view(run)
    if view is not None:
        rows = view.summary()
        epochs = [e for gpu in view.gpus.values() for e in gpu]
        steady = [e.utilization for e in epochs if not e.first]
        result.mean_gpu_utilization = sum(e.utilization for e in epochs) / len(epochs)
        result.steady_gpu_utilization = sum(steady) / len(steady) if steady else None
        peaks = [r["peak_memory_mb"] for r in rows if r["peak_memory_mb"] is not None]
        result.peak_gpu_memory_mb = max(peaks) if peaks else None
    if isinstance(sharing, dict):
        # the probe's choice (auto), else the N the search ran with; "trials_per_gpu" is N after any OOM reduction
        probe = sharing.get("probe") if isinstance(sharing.get("probe"), dict) else {}
        result.chosen_trials_per_gpu = probe.get("chosen") or sharing.get("trials_per_gpu")
    return result


# ------------------------------------------------------------------ the physical reference
def reference(folder: Path, epochs: int | None) -> dict[str, Any]:
    """Plain Keras: the first trial of the run in ``folder`` built as the search built it, then ``model.fit`` on
    the same arrays (batch size, epochs, validation data), nothing of archsearch around the fit.  Runs in its own
    process (``--reference``), after the searches, so the backend's memory is its own."""
    from archsearch.cli import config as C
    from archsearch.core.store import TrialStore
    from archsearch.datasets import load_data
    from archsearch.training import gpu_stats

    with TrialStore.open_read_only(folder / "trials.db") as store:
        config, rows = store.meta()["config"], store.rows()
    first = min(rows, key=lambda t: t["id"])
    settings = C.read_settings(config)
    builder_path, space = C.model_settings(settings.model)
    splits = load_data(settings.data.section)
    hypermodel, space = C.model_for_data(builder_path, space, settings.model, splits)
    trainer, compile_settings = C.trainer_settings(settings)
    hp = space.with_values(first["hparams"])
    import keras

    keras.utils.set_random_seed(0)
    build_start = time.perf_counter()
    model = hypermodel.build(hp) if hasattr(hypermodel, "build") else hypermodel(hp)
    if not getattr(model, "compiled", False):
        compile_settings.compile(model, hp)
    batch = int(hp.get("batch_size", trainer.batch_size))
    epochs = int(epochs or trainer.epochs)
    fit = dict(batch_size=batch, validation_data=(splits.x_val, splits.y_val), verbose=0)
    model.fit(splits.x_train, splits.y_train, epochs=1, **fit)  # compiles and traces: the trial's start-up
    warm = time.perf_counter()
    sampler = gpu_stats.gpu_sampler()
    window = sampler.open() if sampler is not None else None
    model.fit(splits.x_train, splits.y_train, epochs=epochs, **fit)
    seconds = time.perf_counter() - warm
    figures = sampler.close(window) if sampler is not None and window is not None else {}
    return {"trial": first["id"], "hparams": first["hparams"], "batch_size": batch, "epochs": epochs,
            "start_up_seconds": warm - build_start, "seconds_per_epoch": seconds / epochs,
            "samples_per_second": len(splits.x_train) * epochs / seconds,
            "trial_seconds": warm - build_start + seconds / epochs * (int(trainer.epochs) - 1),
            "gpu_utilization": figures.get("gpu_utilization"), "gpu_memory_mb": figures.get("gpu_memory_mb"),
            "backend": keras.backend.backend()}


def reference_or_error(folder: Path, epochs: int | None) -> dict[str, Any]:
    """:func:`reference` in this process, its error as the result's ``error``."""
    try:
        return reference(folder, epochs)
    except Exception as exc:  # noqa: BLE001 - reported in the table and the JSON like a failed run
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_reference(folder: Path, epochs: int | None, hang_limit: float) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--reference", str(folder)]
    if epochs:
        command += ["--reference-epochs", str(epochs)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=hang_limit)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout).strip()[-1500:], "exit_status": done.returncode}
    return json.loads(lines[-1])


# ------------------------------------------------------------------ the table and the targets
def device_name() -> str:
    """The first GPU's name through NVML, or what this machine is when there is none."""
    from archsearch.training.gpu_stats import load_nvml

    nvml = load_nvml()
    if nvml is not None:
        try:
            name = nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(0))
            return name.decode() if isinstance(name, bytes) else str(name)
        except Exception:  # noqa: BLE001 - no device behind the driver
            pass
    return f"no GPU read through NVML ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)"


def _f(value: Any, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[RunResult]) -> str:
    head = ("workload", "trials/GPU", "mixed prec.", "trials/h", "steady/h", "GPU %", "steady %", "peak MiB", "samples/s",
            "OOM", "failed", "best", "chosen N", "exit")
    rows = [head]
    for r in results:
        rows.append((r.workload, r.trials_per_gpu or "n/a", r.mixed_precision or "n/a", _f(r.trials_per_hour, ".1f"),
                     _f(r.steady_trials_per_hour, ".1f"),
                     _f(r.mean_gpu_utilization), _f(r.steady_gpu_utilization), _f(r.peak_gpu_memory_mb),
                     _f(r.samples_per_second), str(r.oom), str(r.failed),
                     f"{r.objective}={_f(r.best_value, '.4f')}", str(r.chosen_trials_per_gpu or "-"),
                     f"{r.exit_status}{' (stopped)' if r.stopped_at_limit else ''}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)


def targets(results: list[RunResult]) -> dict[str, Any]:
    """The issue's targets, measured on this run (None where the runs needed are not in it)."""
    def find(workload, n, precision):
        return next((r for r in results if (r.workload, r.trials_per_gpu, r.mixed_precision) == (workload, n, precision)
                     and r.trials_per_hour), None)

    def pace(r: RunResult) -> float:  # steady when enough trials ended to have it, for both runs compared
        return r.steady_trials_per_hour or r.trials_per_hour

    def speedup(fast: RunResult, slow: RunResult) -> float:
        if fast.steady_trials_per_hour and slow.steady_trials_per_hour:
            return fast.steady_trials_per_hour / slow.steady_trials_per_hour
        return fast.trials_per_hour / slow.trials_per_hour

    out: dict[str, Any] = {}
    one, chosen = find("cnn", "1", "off") or find("cnn", "1", None), find("cnn", "auto", "off") or find("cnn", "auto", None)
    if one and chosen:
        out["cnn_auto_vs_one_per_gpu"] = {"speedup": speedup(chosen, one), "target": 2.0,
                                          "trials_per_hour": [pace(one), pace(chosen)]}
    off, on = find("unet", "1", "off"), find("unet", "1", "on")
    if off and on:
        out["unet_mixed_precision"] = {"speedup": speedup(on, off), "target": 1.5,
                                       "samples_per_second_ratio": (on.samples_per_second / off.samples_per_second
                                                                    if on.samples_per_second and off.samples_per_second
                                                                    else None),
                                       "best_off": off.best_value, "best_on": on.best_value}
    steady = [r.steady_gpu_utilization for r in results if r.trials_per_gpu == "auto" and r.steady_gpu_utilization]
    if steady:
        out["steady_utilization_auto"] = {"mean": sum(steady) / len(steady), "target": 85.0}
    out["oom_trials"] = sum(r.oom for r in results)
    return out


# ------------------------------------------------------------------ main
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="tiny runs on the CPU (executor.gpus=[0] simulated)")
    parser.add_argument("--workloads", default="cnn,unet", help="comma-separated: cnn, unet")
    parser.add_argument("--trials-per-gpu", default=",".join(TRIALS_PER_GPU), help="comma-separated: 1,2,4,auto")
    parser.add_argument("--mixed-precision", default=",".join(MIXED_PRECISION), help="comma-separated: off,on")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop each search after this many seconds (default 26 on a GPU; --dry: to its end)")
    parser.add_argument("--reference-epochs", type=int, default=None, help="timed epochs of the reference fit")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain Keras reference")
    parser.add_argument("--workdir", default=None, help="where the run folders go (default: a new temporary folder)")
    parser.add_argument("--out", default=None, help="the JSON file (default <workdir>/gpu_check.json)")
    parser.add_argument("--reference", default=None, help=argparse.SUPPRESS)  # internal: the reference's process
    args = parser.parse_args(argv)
    for name, allowed in (("workloads", WORKLOADS), ("trials_per_gpu", TRIALS_PER_GPU),
                          ("mixed_precision", MIXED_PRECISION)):
        values = [v.strip() for v in getattr(args, name).split(",") if v.strip()]
        wrong = [v for v in values if v not in allowed]
        if wrong or not values:
            parser.error(f"--{name.replace('_', '-')}: {', '.join(wrong) or 'nothing'} is not one of "
                         f"{', '.join(allowed)}")
        setattr(args, name, values)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.reference:
        print(json.dumps(reference(Path(args.reference), args.reference_epochs)))
        return 0
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu_check_"))
    workdir.mkdir(parents=True, exist_ok=True)
    seconds = args.seconds if args.seconds is not None else (None if args.dry else 26.0)
    hang_limit = 600.0
    runs, notes = plan(args.workloads, args.trials_per_gpu, args.mixed_precision)
    device = "CPU (dry run: executor.gpus=[0] simulated)" if args.dry else device_name()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print(f"GPU check on {device}, KERAS_BACKEND={backend}: {len(runs)} searches"
          + (f", each stopped after {seconds:g} s" if seconds else "") + f"; run folders in {workdir}", flush=True)
    for note in notes:
        print(f"Note: {note}", flush=True)
    results = []
    for k, (workload, n, precision) in enumerate(runs):
        name = f"{k:02d}_{workload}_tpg{n or 'na'}_mp{precision or 'na'}"
        result = RunResult(workload, n, precision, str(workdir / name))
        status, wall, stopped, tail = run_search(workdir / name, overrides(workload, n, precision, args.dry),
                                                 seconds, hang_limit)
        result.exit_status, result.wall_seconds, result.stopped_at_limit = status, wall, stopped
        if status not in (0, 130):
            result.output_tail = tail
        results.append(read_result(result))
        print(f"  {name}: exit {status}{' (stopped at the limit)' if stopped else ''}, {wall:.0f} s, "
              f"{result.trials_ended} trials ended, {_f(result.trials_per_hour, '.1f')} trials/h", flush=True)
        if status not in (0, 130):
            print(tail[-1500:], flush=True)
    ref = None
    if not args.no_reference and results and Path(results[0].folder, "trials.db").exists():
        first = Path(results[0].folder)
        # On a GPU in its own process (the searches' memory is free then); a dry run's CPU needs no such care.
        ref = (reference_or_error(first, args.reference_epochs or 1) if args.dry
               else run_reference(first, args.reference_epochs, hang_limit))
    print()
    print(table(results))
    if ref is not None:
        if "error" in ref:
            print(f"\nreference (plain Keras fit of the first configuration) failed: {ref['error']}")
        else:
            print(f"\nreference, plain Keras model.fit of {results[0].workload} trial {ref['trial']} "
                  f"({ref['backend']}): {ref['seconds_per_epoch']:.2f} s/epoch, {ref['samples_per_second']:,.0f} "
                  f"samples/s, start-up {ref['start_up_seconds']:.1f} s, one trial ~{ref['trial_seconds']:.1f} s "
                  f"(~{3600 / ref['trial_seconds']:.0f} trials/h one at a time), GPU {_f(ref['gpu_utilization'])}%, "
                  f"{_f(ref['gpu_memory_mb'])} MiB")
    checks = targets(results)
    print("\ntargets: " + json.dumps(checks, default=str))
    out = Path(args.out) if args.out else workdir / "gpu_check.json"
    out.write_text(json.dumps({"device": device, "backend": backend, "dry": args.dry, "seconds_per_run": seconds,
                               "notes": notes, "runs": [asdict(r) for r in results], "reference": ref,
                               "targets": checks}, indent=2, default=str))
    print(f"\nJSON: {out}")
    # A dry run checks that every run trains: each must complete a trial (a real run may time out or OOM).
    broken = [r for r in results if r.exit_status not in (0, 130) or not Path(r.folder, "trials.db").exists()
              or (args.dry and r.completed == 0)]
    return 1 if broken or (ref is not None and "error" in ref) else 0


if __name__ == "__main__":
    sys.exit(main())
