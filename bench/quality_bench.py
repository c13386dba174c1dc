"""Search quality on generated problem families (issue 15): archsearch and its peers side by side.

One command runs every contender on every family of ``bench/problem_families.py``
and prints one markdown table per family (``--out`` also writes them to a
file).  Instances and seeds: ``--split held-out`` (the default, what
``bench/RESULTS.md`` reports) or ``--split dev`` (what to look at while
changing an optimiser); ``--seeds N`` takes the first N of the split.

Single-fidelity families (branin, hartmann6, deceptive, conditional),
``--trials`` evaluations each, minimised:

* archsearch ``random`` and ``bayesian`` (defaults), through ``ask``/``tell``;
* Optuna ``GPSampler`` (needs PyTorch), ``TPESampler(multivariate=True)``,
  defaults otherwise, through ``study.ask``/``tell``, conditional parameters
  suggested only where active (define-by-run, as Optuna is meant to be used);
* KerasTuner ``BayesianOptimizationOracle`` (needs scikit-learn), through its
  oracle API as ``bench/bayesian_bench.py`` drives it; KerasTuner gets the
  conditional space flattened (every parameter declared; inactive ones are
  ignored by the function).

On ``deceptive`` a reference row (``ceiling-fair-share``, not a contender):
archsearch bayesian told the best category and given ``trials // k`` trials
inside it -- what a method that treats the k categories alike can hope for.

Columns: median and quartiles of the simple regret at the last trial, the
median at 10 and 20 trials, for ``deceptive``/``conditional`` the seeds whose
best value beats every point outside the best basin/branch ("found best"),
and the median seconds per suggestion (numpy/BLAS pinned to one thread).

Multi-fidelity family (curves, max_epochs 27, factor 3), each contender
spends ``--cap`` epochs: archsearch ``asha`` (until the cap), ``hyperband`` and
``bohb`` (promoted trials resume from their parent; as many iterations as the
cap allows), ``asha-random`` (ASHA as published: random proposals, promotion
by current score), ``hyperband-curve`` (promotion by the learning-curve
model), ``bohb-curve`` (proposals from it), Optuna TPE + ``HyperbandPruner`` and
KerasTuner ``HyperbandOracle`` as in ``bench/hyperband_bench.py``.  Loss after
E epochs: 1 - the noise-free final score of the best-*observed* full-budget
trial finished within E epochs; median and quartiles over seeds at 100, 300
and 600 epochs, and per seed: worse than archsearch Hyperband by > 0.02, and
better / within 5% / worse than the best peer (lowest median at that budget).
Optuna's ``HyperbandPruner`` assigns trials to brackets by hashing the study
name, so runs under other names differ (``--optuna-run N`` names the study
``bench_<seed>_runN``); ``--losses`` saves a run's per-seed losses and
``--peers`` adds saved runs as rows:

    for i in 1 2 3; do python bench/quality_bench.py --families curves --only optuna-tpe+hyperband-pruner --optuna-run $i --losses tpe$i.json; done
    python bench/quality_bench.py --families curves --only archsearch-asha,archsearch-hyperband,archsearch-bohb --peers tpe1.json,tpe2.json,tpe3.json

    /tmp/benchvenv/bin/python bench/quality_bench.py                      # everything, held-out seeds
    python bench/quality_bench.py --only archsearch-bayesian --families deceptive --split dev --seeds 5

Peers come from the ``bench`` extra; GPSampler needs PyTorch -- install the
CPU build (``pip install torch --index-url https://download.pytorch.org/whl/cpu``),
the default wheel pulls gigabytes of CUDA libraries a CPU benchmark never uses.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bayesian_bench  # noqa: E402
import hyperband_bench  # noqa: E402
from curves import MAX_EPOCHS, SPACE  # noqa: E402
from problem_families import (DEVELOPMENT_SEEDS, HELD_OUT_SEEDS, MULTI_FIDELITY, SINGLE_FIDELITY,  # noqa: E402
                              Instance, curves, single_fidelity)

from archsearch import HyperParameters  # noqa: E402
from archsearch.oracles import create_oracle  # noqa: E402
from archsearch.oracles.driving import drive  # noqa: E402

Unavailable = bayesian_bench.Unavailable
CHECKPOINTS = (10, 20)
BUDGETS = (100, 300, 600)
WORSE_BY = 0.02  # a loss this much above Hyperband's on one seed counts as worse (the curves' noise is 0.01)


# --------------------------------------------------------------------------- single-fidelity contenders


def _active(spec: dict, values: dict) -> bool:
    when = spec.get("when") or {}
    return all(values.get(parent) in allowed for parent, allowed in when.items())


def run_optuna(problem: Instance, seed: int, trials: int, kind: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # GPSampler warns at every inactive parameter
    sampler = bayesian_bench.optuna_sampler(kind, seed, multivariate=True)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    values, seconds = [], []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        params: dict = {}
        for name, spec in problem.space.items():  # parents come first in every family's space
            if _active(spec, params):
                params.update(bayesian_bench._optuna_suggest(trial, {name: spec}))
        seconds.append(time.perf_counter() - start)
        value = problem(params)
        study.tell(trial, value)
        values.append(value)
    return values, seconds


def _flat(problem: Instance) -> Instance:
    """The space without ``when`` (KerasTuner gets every parameter; the function ignores inactive ones)."""
    space = {n: {k: v for k, v in s.items() if k != "when"} for n, s in problem.space.items()}
    return Instance(problem.name, space, problem.function, problem.minimum, problem.success_below)


def run_fair_share_ceiling(problem: Instance, seed: int, trials: int):
    """A reference row, not a contender: archsearch bayesian *told* the best category, with its fair share.

    On ``deceptive`` no observation points to the best category before its
    narrow basin is hit (it looks no better than any other), so a method that
    treats categories alike can count on about ``trials // k`` trials in it.
    This row searches that share in the best category alone (the category
    fixed, the other parameters as before): what such a method finds at best
    with archsearch's own within-category search.
    """
    best = problem.info.get("best_category")
    if best is None:
        raise Unavailable("only for families whose instances name a best category")
    space = {n: s for n, s in problem.space.items() if n != "cat"}
    inside = Instance(problem.name, space, lambda h: problem.function(dict(h, cat=best)), problem.minimum,
                      problem.success_below)
    return bayesian_bench.run_archsearch(inside, seed, trials // problem.info["categories"], "bayesian")


SINGLE = {
    "archsearch-random": lambda p, s, n: bayesian_bench.run_archsearch(p, s, n, "random"),
    "archsearch-bayesian": lambda p, s, n: bayesian_bench.run_archsearch(p, s, n, "bayesian"),
    "optuna-gp": lambda p, s, n: run_optuna(p, s, n, "gp"),
    "optuna-tpe": lambda p, s, n: run_optuna(p, s, n, "tpe"),
    "kerastuner-bayesian": lambda p, s, n: bayesian_bench.run_keras_tuner(_flat(p), s, n, "bayesian"),
    "ceiling-fair-share": run_fair_share_ceiling,
}
REFERENCE_ROWS = {"ceiling-fair-share"}  # run only where they apply (not contenders)


# --------------------------------------------------------------------------- multi-fidelity contenders


def run_mf_archsearch(problem, seed: int, cap: int, tuner: str, **extra):
    """archsearch ASHA, Hyperband or BOHB epoch by epoch through ask/report/tell, until ``cap`` epochs are spent."""
    space = HyperParameters.from_config(SPACE)
    options = dict(max_epochs=MAX_EPOCHS, factor=3, min_epochs=1, **extra)
    if tuner != "asha":  # ASHA has no iterations: it runs until the cap (drive's max_epochs_trained)
        per_iteration = create_oracle("hyperband", space, "score", max_epochs=MAX_EPOCHS, factor=3).total_epochs
        options["hyperband_iterations"] = math.ceil(cap / per_iteration)
    oracle = create_oracle(tuner, HyperParameters.from_config(SPACE), "score", seed=seed, **options)
    done = drive(oracle, curve=problem.score, epochs=MAX_EPOCHS, max_epochs_trained=cap)
    finals = [(spent, trial.value, problem.true_score(trial.hparams)) for trial, spent in zip(done.told, done.epochs_at)
              if (trial.budget or MAX_EPOCHS) == MAX_EPOCHS]
    return finals, len(oracle.trials)


MULTI = {
    "archsearch-asha": lambda p, s, c: run_mf_archsearch(p, s, c, "asha"),
    "archsearch-asha-random": lambda p, s, c: run_mf_archsearch(p, s, c, "asha", promotion="rank",
                                                                 random_fraction=1.0),
    "archsearch-hyperband": lambda p, s, c: run_mf_archsearch(p, s, c, "hyperband"),
    "archsearch-hyperband-curve": lambda p, s, c: run_mf_archsearch(p, s, c, "hyperband", promotion="curve"),
    "archsearch-bohb": lambda p, s, c: run_mf_archsearch(p, s, c, "bohb"),
    "archsearch-bohb-curve": lambda p, s, c: run_mf_archsearch(p, s, c, "bohb", proposals="curve"),
    "optuna-tpe+hyperband-pruner": lambda p, s, c: hyperband_bench.run_optuna(p, s, c, run=OPTUNA_RUN[0]),
    "kerastuner-hyperband": hyperband_bench.run_keras_tuner,
}
LABELS = {
    "archsearch-random": "archsearch random",
    "archsearch-bayesian": "archsearch bayesian",
    "optuna-gp": "Optuna GPSampler",
    "optuna-tpe": "Optuna TPE (multivariate)",
    "kerastuner-bayesian": "KerasTuner BayesianOptimization",
    "archsearch-asha": "archsearch ASHA",
    "archsearch-asha-random": "archsearch ASHA as published (random draws, promoted by current score)",
    "archsearch-hyperband": "archsearch Hyperband",
    "archsearch-hyperband-curve": "archsearch Hyperband, promotion=curve",
    "archsearch-bohb": "archsearch BOHB",
    "archsearch-bohb-curve": "archsearch BOHB, proposals=curve",
    "optuna-tpe+hyperband-pruner": "Optuna TPE + HyperbandPruner",
    "kerastuner-hyperband": "KerasTuner Hyperband",
    "ceiling-fair-share": "ceiling: best category known, trials/k in it (reference)",
}


# --------------------------------------------------------------------------- tables


def _q(xs) -> str:
    lo, med, hi = np.percentile(xs, [25, 50, 75])
    return f"{med:.3g} [{lo:.3g}, {hi:.3g}]"


def single_table(family: str, seeds: list[int], trials: int, names: list[str]) -> list[str]:
    tracked = single_fidelity(family, seeds[0]).success_below is not None
    checks = [c for c in CHECKPOINTS if c < trials]
    lines = [f"### {family}: {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}) x {trials} trials, regret "
             "(median [25%, 75%])", ""]
    header = (["method", f"regret@{trials}"] + [f"median@{c}" for c in checks]
              + (["found best"] if tracked else []) + ["s/suggestion", "total s"])
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    print("\n".join(lines), flush=True)
    for name in names:
        if name in REFERENCE_ROWS and "best_category" not in single_fidelity(family, seeds[0]).info:
            continue
        start = time.perf_counter()
        try:
            runs = [(single_fidelity(family, s), SINGLE[name](single_fidelity(family, s), s, trials)) for s in seeds]
        except Unavailable as exc:
            row = f"| {LABELS[name]} | n/a ({exc}) |"
            print(row, flush=True)
            lines.append(row)
            continue
        total = time.perf_counter() - start
        final = [inst.regret(min(v)) for inst, (v, _) in runs]
        cells = [LABELS[name], _q(final)]
        cells += [f"{np.median([inst.regret(min(v[:c])) for inst, (v, _) in runs]):.3g}" for c in checks]
        if tracked:
            cells.append(f"{sum(min(v) < inst.success_below for inst, (v, _) in runs)}/{len(runs)}")
        cells += [f"{np.median([x for _, (_, secs) in runs for x in secs]):.4f}", f"{total:.0f}"]
        row = "| " + " | ".join(cells) + " |"
        print(row, flush=True)
        lines.append(row)
    return lines


OPTUNA_RUN = [0]  # --optuna-run: which study name, hence which bracket assignment, HyperbandPruner gets
PEERS = ("optuna-tpe+hyperband-pruner", "kerastuner-hyperband")  # contenders that are not archsearch's
WITHIN = 0.05  # per-seed counts: a loss within 5% of the best peer's on that seed is a tie


def _losses(runs, budgets: list[int]) -> dict[int, list[float]]:
    return {b: [1.0 - hyperband_bench.best_at(finals, b) for finals, _ in runs] for b in budgets}


def _versus(mine: list[float], peer: list[float]) -> str:
    """Seeds better / within 5% / worse than the peer's loss on the same seed."""
    better = sum(m < p * (1 - WITHIN) for m, p in zip(mine, peer))
    worse = sum(m > p * (1 + WITHIN) for m, p in zip(mine, peer))
    return f"{better}/{len(mine) - better - worse}/{worse}"


def multi_table(family: str, seeds: list[int], cap: int, names: list[str], losses_out: str = "",
                peer_files: list[str] | None = None) -> list[str]:
    """One row per contender (median [quartiles] loss at each budget), per-seed comparisons with archsearch
    Hyperband and with the best peer; ``peer_files`` add rows saved by earlier runs (``--losses``): Optuna's
    HyperbandPruner assigns brackets by Python's per-process string hash, so each process is another run."""
    budgets = [b for b in BUDGETS if b <= cap]
    crossing = [curves(s).crossing for s in seeds]
    lines = [f"### {family}: {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), crossing strength "
             f"{min(crossing):.2f}-{max(crossing):.2f}, loss = 1 - true final score of the best-observed "
             "full-budget trial (median [25%, 75%])", ""]
    hyperband = _losses([MULTI["archsearch-hyperband"](curves(s), s, cap) for s in seeds], budgets)
    rows: dict[str, dict[int, list[float]]] = {}
    info: dict[str, tuple[int, float]] = {}
    for name in names:
        start = time.perf_counter()
        runs = [MULTI[name](curves(s), s, cap) for s in seeds]
        rows[LABELS[name]] = _losses(runs, budgets)
        info[LABELS[name]] = (int(np.median([n for _, n in runs])), time.perf_counter() - start)
    for i, path in enumerate(peer_files or [], 1):
        import json

        for label, per_budget in json.loads(Path(path).read_text()).items():
            rows[f"{label} (run {i})"] = {int(b): v for b, v in per_budget.items()}
    if losses_out:
        import json

        Path(losses_out).write_text(json.dumps({k: {str(b): v for b, v in r.items()} for k, r in rows.items()}))
    peer_labels = [k for k in rows if any(k.startswith(LABELS[p]) for p in PEERS)]
    best_peer = {b: min(peer_labels, key=lambda k: np.median(rows[k][b])) for b in budgets} if peer_labels else {}
    header = (["method"] + [f"@{b} epochs" for b in budgets]
              + [f"seeds worse than archsearch Hyperband by > {WORSE_BY} (@{', @'.join(map(str, budgets))})"]
              + ([f"vs the best peer, better/within {WITHIN:.0%}/worse (@{', @'.join(map(str, budgets))})"]
                 if best_peer else []) + ["trials", "total s"])
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for label, per_budget in rows.items():
        cells = [label] + [_q(per_budget[b]) for b in budgets]
        cells.append(", ".join(str(sum(m - h > WORSE_BY for m, h in zip(per_budget[b], hyperband[b])))
                               for b in budgets))
        if best_peer:
            cells.append("-" if label in peer_labels else
                         ", ".join(_versus(per_budget[b], rows[best_peer[b]][b]) for b in budgets))
        n, seconds = info.get(label, (None, None))
        cells += ["-" if n is None else str(n), "-" if seconds is None else f"{seconds:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if best_peer:
        lines += ["", "Best peer (lowest median) at " + ", ".join(f"@{b}: {best_peer[b]}" for b in budgets) + "."]
    print("\n".join(lines), flush=True)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("held-out", "dev"), default="held-out")
    parser.add_argument("--seeds", type=int, default=10, help="the first N seeds of the split")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--cap", type=int, default=600, help="epochs per seed on the curve family")
    parser.add_argument("--families", default=",".join(SINGLE_FIDELITY + MULTI_FIDELITY))
    parser.add_argument("--only", default="", help="comma-separated contender names")
    parser.add_argument("--out", default="", help="also write the tables to this file")
    parser.add_argument("--optuna-run", type=int, default=0,
                        help="TPE + HyperbandPruner's run number: another study name, so another bracket assignment")
    parser.add_argument("--losses", default="", help="curves: write every row's per-seed losses to this JSON file")
    parser.add_argument("--peers", default="", help="curves: comma-separated --losses files of earlier runs, "
                        "added as rows (run 1, run 2, ...)")
    args = parser.parse_args(argv)
    seeds = list(HELD_OUT_SEEDS if args.split == "held-out" else DEVELOPMENT_SEEDS)[:args.seeds]
    only = set(filter(None, args.only.split(",")))
    OPTUNA_RUN[0] = args.optuna_run
    lines: list[str] = []
    for family in args.families.split(","):
        if family in MULTI_FIDELITY:
            names = [n for n in MULTI if not only or n in only]
            if names or args.peers:
                lines += multi_table(family, seeds, args.cap, names, args.losses,
                                     [p for p in args.peers.split(",") if p]) + [""]
        else:
            names = [n for n in SINGLE if not only or n in only]
            if names:
                lines += single_table(family, seeds, args.trials, names) + [""]
        print(flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
