"""ASHA vs synchronous Hyperband on simulated parallel workers: best score at equal wall time, idle workers.

Both oracles come from ``archsearch.oracles.create_oracle`` ("asha", "hyperband") and run on the
learning-curve problem of ``bench/curves.py`` (max_epochs = 27, factor = 3, min_epochs = 1); no Keras.
A simulated cluster of W workers drives them the way ``archsearch.engine.search`` does: a free worker asks
the oracle at once; a trial trains from its ``initial_budget`` to its ``budget`` and every epoch costs
one unit of wall time; its epochs are reported and it is told its result when it ends.  When the
oracle has nothing to hand out (a Hyperband round waiting for its slowest trial, with every started
bracket waiting and none left to start), the worker waits, idle, until the next trial ends.

Hyperband is the engine's own: each round synchronous (a round is decided when all its trials are
done), and when every started bracket waits, the next bracket starts meanwhile.  Two settings: with as
many ``hyperband_iterations`` as the wall needs (it never runs out of brackets), and with the default
single iteration (357 epochs; it finishes before the last wall times, and its idle fraction counts up
to its end).  ASHA runs without limits and is stopped at the wall.

Score at wall time t, as in ``bench/hyperband_bench.py``: among the trials that reached the full 27
epochs by t, the one with the best *observed* value (what a user would pick); its noise-free final
score is reported (``-`` when none has yet).  Reported: quartiles over seeds at wall times where the
workers together had 300, 600 and 1200 epochs of capacity (t = capacity / W), the fraction of
worker time spent idle (waiting for the oracle) up to the last wall time or the end of the search
(for the capped ASHA also the part of it while its epoch budget still had room for a new
configuration, i.e. not the end of the search), and the median wall time of the first full-budget result.

    python bench/asha_bench.py                         # 50 seeds, 2, 4 and 8 workers
    python bench/asha_bench.py --seeds 5 --workers 2   # a quick look
"""

from __future__ import annotations

import argparse
import heapq
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curves import MAX_EPOCHS, SPACE, CurveProblem  # noqa: E402

from archsearch import HyperParameters  # noqa: E402
from archsearch.oracles import create_oracle  # noqa: E402

FACTOR = 3
CAPACITIES = (300, 600, 1200)  # worker-epochs available at the reported wall times: t = capacity / workers
HYPERBAND_EPOCHS = 357  # one Hyperband iteration at max_epochs=27, factor=3
METHODS = ("asha", "hyperband", "asha-357", "hyperband-1")
LABELS = {"asha": "ASHA, no limit", "hyperband": "Hyperband, iterations to fill the wall",
          "asha-357": f"ASHA, max_epochs_total={HYPERBAND_EPOCHS}",
          "hyperband-1": "Hyperband, hyperband_iterations=1 (357 epochs)"}


@dataclass
class SimResult:
    finals: list[tuple[float, float, float]] = field(default_factory=list)  # (time, observed, true) at 27 epochs
    idle: float = 0.0  # worker-time spent waiting for the oracle, up to the wall
    idle_open: float = 0.0  # ... of which while ASHA's epoch budget still had room for a new configuration
    wall: float = 0.0
    trials: int = 0
    configurations: int = 0


def make_oracle(method: str, seed: int, wall: float, workers: int):
    space = HyperParameters.from_config(SPACE)
    if method.startswith("asha"):
        limit = HYPERBAND_EPOCHS if method == "asha-357" else None
        return create_oracle("asha", space, "score", max_epochs=MAX_EPOCHS, factor=FACTOR, min_epochs=1, seed=seed,
                             max_epochs_total=limit)
    per_iteration = create_oracle("hyperband", space, "score", max_epochs=MAX_EPOCHS, factor=FACTOR).total_epochs
    # "hyperband": never runs out before the wall; "hyperband-1": one iteration (357 epochs), then it is done.
    iterations = 1 if method == "hyperband-1" else math.ceil(wall * workers / per_iteration) + 1
    return create_oracle("hyperband", space, "score", max_epochs=MAX_EPOCHS, factor=FACTOR, min_epochs=1,
                         hyperband_iterations=iterations, seed=seed)


def simulate(oracle, problem: CurveProblem, workers: int, wall: float) -> SimResult:
    """Run ``oracle`` on ``workers`` simulated workers until wall time ``wall``."""
    out = SimResult(wall=wall)
    now = 0.0
    running: list[tuple[float, int, int]] = []  # heap of (finish time, tiebreak, trial id)
    free = workers
    counter = 0

    def room() -> bool:  # ASHA only: could a new configuration still start under max_epochs_total?
        total = getattr(oracle, "max_epochs_total", None)
        return total is not None and oracle.epochs_committed() + oracle.min_epochs <= total

    while True:
        # Every free worker asks at once; a None means "nothing now": wait for the next result.
        while free and now < wall and not oracle.finished:
            trial = oracle.ask()
            if trial is None:
                break
            out.trials += 1
            out.configurations += trial.resume_from is None
            budget = trial.budget or MAX_EPOCHS
            heapq.heappush(running, (now + budget - trial.initial_budget, counter, trial.id))
            counter += 1
            free -= 1
        if not running:  # the search is over (or the oracle has nothing and nothing runs: idle to the wall)
            if oracle.finished:
                out.wall = now
            else:
                out.idle += free * max(0.0, wall - now)
            break
        finish = running[0][0]
        if finish > wall:  # the wall comes first: what still trains does not count
            out.idle += free * (wall - now)
            break
        out.idle += free * (finish - now)
        if room():
            out.idle_open += free * (finish - now)
        now = finish
        # Every trial ending at this instant reports before anyone asks again.
        while running and running[0][0] == now:
            _, _, trial_id = heapq.heappop(running)
            free += 1
            trial = oracle.trials[trial_id]
            budget = trial.budget or MAX_EPOCHS
            for epoch in range(trial.initial_budget + 1, budget + 1):
                oracle.report(trial_id, epoch, problem.score(trial.hparams, epoch))
            value = problem.score(trial.hparams, budget)
            oracle.tell(trial_id, value)
            if budget == MAX_EPOCHS:
                out.finals.append((now, value, problem.true_score(trial.hparams)))
    return out


def best_at(finals: list[tuple[float, float, float]], t: float) -> float:
    done = [(observed, true) for when, observed, true in finals if when <= t]
    return max(done)[1] if done else -math.inf


def quartiles(values: list[float]) -> tuple[float, float, float]:
    a = np.asarray(values, dtype=float)
    # -inf (no full-budget result yet) sorts first, as "worse than anything"
    return tuple(float(np.quantile(a, q, method="lower")) for q in (0.25, 0.5, 0.75))  # type: ignore[return-value]


def _fmt(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.4f}"


def run(seeds: int, workers_list: list[int], noise: float) -> None:
    print(f"Synthetic learning curves (bench/curves.py), max_epochs={MAX_EPOCHS}, factor={FACTOR}, min_epochs=1, "
          f"noise={noise}, {seeds} seeds; one epoch = one unit of wall time")
    header = (["workers", "method"] + [f"best @t={c}/W (q1 / median / q3)" for c in CAPACITIES]
              + ["idle fraction (median, max)", "idle while epochs were left", "first 27-epoch result at t", "search ends at t", "trials", "sim s"])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    summary: dict[tuple[int, str], dict] = {}
    for workers in workers_list:
        wall = max(CAPACITIES) / workers
        for method in METHODS:
            start = time.perf_counter()
            results = []
            for seed in range(seeds):
                problem = CurveProblem(seed, noise=noise)
                results.append(simulate(make_oracle(method, seed, wall, workers), problem, workers, wall))
            seconds = time.perf_counter() - start
            cells = []
            medians = []
            for capacity in CAPACITIES:
                q1, med, q3 = quartiles([best_at(r.finals, capacity / workers) for r in results])
                medians.append(med)
                cells.append(f"{_fmt(q1)} / {_fmt(med)} / {_fmt(q3)}")
            idle = [r.idle / (workers * r.wall) for r in results]
            idle_open = (f"{100 * np.median([r.idle_open / (workers * r.wall) for r in results]):.1f}%"
                         if method == "asha-357" else "-")
            first = [min((w for w, _, _ in r.finals), default=math.inf) for r in results]
            trials = int(np.median([r.trials for r in results]))
            ends = float(np.median([r.wall for r in results]))
            ends_text = f"{ends:.1f}" if ends < wall else f"> {wall:g} (stopped)"
            summary[(workers, method)] = {"medians": medians, "idle": float(np.median(idle)), "idle_max": max(idle)}
            print(f"| {workers} | {LABELS[method]} | " + " | ".join(cells)
                  + f" | {100 * np.median(idle):.1f}% ({100 * max(idle):.1f}%) | {idle_open} | {np.median(first):.1f}"
                  + f" | {ends_text} | {trials} | {seconds:.1f} |")
    print()
    for workers in workers_list:
        for mine, theirs in (("asha", "hyperband"), ("asha-357", "hyperband-1")):
            a, h = summary[(workers, mine)], summary[(workers, theirs)]
            better = ", ".join(f"@{c}/W: {x - y:+.4f}" if np.isfinite(x) and np.isfinite(y) else f"@{c}/W: -"
                               for c, x, y in zip(CAPACITIES, a["medians"], h["medians"]))
            print(f"{workers} workers, median best {LABELS[mine]} - {LABELS[theirs]}: {better}; idle < 5%: "
                  f"{'yes' if a['idle_max'] < 0.05 else 'no'} (median {100 * a['idle']:.2f}%, worst seed "
                  f"{100 * a['idle_max']:.2f}%)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--noise", type=float, default=0.01)
    args = parser.parse_args(argv)
    run(args.seeds, args.workers, args.noise)


if __name__ == "__main__":
    main()
