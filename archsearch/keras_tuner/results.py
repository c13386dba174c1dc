"""KerasTuner's ``results_summary`` table: the best trials, their scores, budgets and values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archsearch.oracles import Oracle, Trial


def results_table(oracle: Oracle, num_trials: int = 10, where: Path | None = None,
                  statuses: Sequence[str] | None = None) -> str:
    """The best ``num_trials`` trials as a text table (KerasTuner's ``results_summary``)."""
    best = oracle.best_trials(num_trials)
    counts: dict[str, int] = {}
    for status in statuses if statuses is not None else [t.status for t in oracle.trials.values()]:
        counts[status] = counts.get(status, 0) + 1
    header = f"Results summary{f' ({where})' if where else ''}"
    lines = [header, f"Objective: {oracle.objective}", "Trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    if not best:
        lines.append("No completed trial yet.")
        return "\n".join(lines)
    values = {t.id: {**t.hparams, **oracle.keras_tuner_values(t)} for t in best}  # KerasTuner's tuner/epochs, ...
    shown = {k for t in best for k in values[t.id]}
    names = [k for k in oracle.hyperparameters.space.keys() if k in shown]  # declaration order: units_1, units_2, ...
    names += sorted(shown - set(names))
    budgets = any(t.budget is not None for t in best) and "tuner/epochs" not in shown  # else the tuner/ columns say it
    extra = ["epochs"] if budgets else []
    columns = ["rank", "trial", "score", *extra, *names]
    rows = []
    for rank, t in enumerate(best, 1):
        row = [str(rank), str(t.id), f"{t.value:.4f}"]
        if extra:
            row.append(budget_text(t))
        row += [_fmt(values[t.id].get(n, "")) for n in names]
        rows.append(row)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def budget_text(trial: Trial) -> str:
    """``1->3 b1r1 from 4``: epochs trained, Hyperband bracket and round, and the trial it continued."""
    text = f"{trial.initial_budget}->{trial.budget}"
    if "bracket" in trial.info:
        text += f" b{trial.info['bracket']}r{trial.info['round']}"
    if trial.resume_from is not None:
        text += f" from {trial.resume_from}"
    return text


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def status_labels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each stored trial's status for the summary; an infeasible trial is not counted as a failure."""
    return ["infeasible" if r["failure_kind"] == "infeasible" else r["status"] for r in rows]


def pruning_line(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """How many trials the pruner stopped and the epochs that saved, or None when none was stopped.

    A pruned trial would have run to its budget (multi-fidelity tuners) or, without one, as long as the
    completed trials ran (their longest run): the difference is what pruning saved.
    """
    pruned = [r for r in rows if r["status"] == "pruned"]
    if not pruned:
        return None
    full_runs = [int(r["epochs_done"] or 0) for r in rows if r["status"] == "completed" and r["budget"] is None]
    longest = max(full_runs, default=None)
    saved = 0
    known = True
    for row in pruned:
        full = row["budget"] if row["budget"] is not None else longest
        if full is None:
            known = False
            continue
        saved += max(0, int(full) - int(row["epochs_done"] or 0))
    trained = sum(max(0, int(r["epochs_done"] or 0) - int(r["initial_budget"] or 0)) for r in rows)
    stopped = f"Pruning: {len(pruned)} of {len(rows)} trials stopped early"
    if not known:
        return f"{stopped} ({trained} epochs trained in all)."
    return f"{stopped}, saving {saved} epochs ({trained} trained in all, {trained + saved} without pruning)."
