"""KerasTuner's ``results_summary`` table: the best trials, their scores, budgets and values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archsearch.oracles import Oracle, Trial


def results_table(oracle: Oracle, num_trials: int | None = 10, where: Path | None = None,
                  statuses: Sequence[str] | None = None, reference_point: Any = None) -> str:
    """The best ``num_trials`` trials as a text table (KerasTuner's ``results_summary``).

    A Pareto search lists its front instead (:func:`front_table`): ``num_trials`` None shows all of it,
    a number at most that many rows (the line under the table says how many more there are), and
    ``reference_point`` (each objective's value, by name or in order; None: derived) fixes the hypervolume's.
    """
    counts: dict[str, int] = {}
    for status in statuses if statuses is not None else [t.status for t in oracle.trials.values()]:
        counts[status] = counts.get(status, 0) + 1
    header = f"Results summary{f' ({where})' if where else ''}"
    objective = oracle.objective.label if oracle.objective.is_pareto else oracle.objective
    lines = [header, f"Objective: {objective}", "Trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    if oracle.objective.is_pareto:
        return "\n".join(lines + front_table(oracle, num_trials, reference_point))
    best = oracle.best_trials(10 if num_trials is None else num_trials)
    if not best:
        lines.append("No completed trial yet.")
        return "\n".join(lines)
    names, values, extra = _value_columns(oracle, best)
    columns = ["rank", "trial", "score", *extra, *names]
    rows = []
    for rank, t in enumerate(best, 1):
        row = [str(rank), str(t.id), f"{t.value:.4f}"]
        if extra:
            row.append(budget_text(t))
        row += [_fmt(values[t.id].get(n, "")) for n in names]
        rows.append(row)
    return "\n".join(lines + _aligned(columns, rows))


def front_table(oracle: Oracle, num_trials: int | None = None, reference_point: Any = None,
                setting: str | None = "search.reference_point") -> list[str]:
    """A Pareto search's results: its front (each trial's id, every objective, its values; the knee
    marked), how many more rows ``num_trials`` left out, and the hypervolume with its reference point
    (``setting``: where a user fixes it, named in the line; None where it cannot be set)."""
    from archsearch.core.pareto import FrontView, as_values, reference_costs

    objective = oracle.objective
    view = FrontView.of(oracle.trials.values(), objective)
    if not view.front:
        return ["No completed trial with every objective yet."]
    shown = view.front if num_trials is None else view.front[:num_trials]
    names, values, extra = _value_columns(oracle, shown)
    parts = list(objective.components)
    columns = ["#", "trial", *(p.name for p in parts), "knee", *extra, *names]
    rows = []
    for number, t in enumerate(shown, 1):
        row = [str(number), str(t.id), *(_fmt(float(t.metrics[p.name])) for p in parts),
               "yes" if t.id == view.knee else ""]
        if extra:
            row.append(budget_text(t))
        row += [_fmt(values[t.id].get(n, "")) for n in names]
        rows.append(row)
    lines = [f"Pareto front: {len(view.front)} of {len(view.trials)} trials with every objective "
             f"(ordered by {parts[0].name}; knee: trial {view.knee}, the point closest to the ideal once each "
             "objective is scaled to [0, 1] over the front)"]
    if view.lower_budget:
        lines[0] += (f"; {len(view.lower_budget)} trials stopped at a lower budget than "
                     f"{max(t.budget for t in view.trials if t.budget is not None)} epochs are left out")
    lines += _aligned(columns, rows) if rows else []
    if len(shown) < len(view.front):
        lines.append(f"... and {len(view.front) - len(shown)} more on the front (trials.csv: on_front=true; "
                     "show them all with summary_trials / results_summary(num_trials=None))")
    given = reference_point is not None
    hv, ref = view.hypervolume(reference_costs(objective, reference_point) if given else None)
    point = ", ".join(f"{p.name}={_fmt(v)}" for p, v in zip(parts, as_values(objective, ref)))
    source = "derived: each objective's worst value over these trials + 10% of its range" + (
        f"; fix it with {setting} to compare runs" if setting else "")
    source = (setting or "given") if given else source
    logged = [parts[j].name for j in objective.log_columns]
    if logged:
        source += f"; {', '.join(logged)} counted by {'its' if len(logged) == 1 else 'their'} logarithm (scale: log)"
    ideal, box_corner = objective.scaled_costs(view.costs.min(axis=0)), objective.scaled_costs(ref)
    share = ""
    if (box_corner > ideal).all():  # the report's normalised hypervolume: the share of the ideal-to-reference box
        share = (f", {hv / float((box_corner - ideal).prod()):.1%} of the box between the ideal and the reference "
                 "point")
    lines.append(f"Hypervolume: {hv:.6g}{share} (reference point {point}; {source})")
    return lines


def _value_columns(oracle: Oracle, best: Sequence[Trial]) -> tuple[list[str], dict[int, dict[str, Any]], list[str]]:
    """The trials' values (theirs and KerasTuner's tuner/epochs, ...) as columns in declaration order, and
    whether an ``epochs`` column says their budgets."""
    values = {t.id: {**t.hparams, **oracle.keras_tuner_values(t)} for t in best}
    shown = {k for t in best for k in values[t.id]}
    names = [k for k in oracle.hyperparameters.space.keys() if k in shown]  # declaration order: units_1, units_2, ...
    names += sorted(shown - set(names))
    budgets = any(t.budget is not None for t in best) and "tuner/epochs" not in shown  # else the tuner/ columns say it
    return names, values, ["epochs"] if budgets else []


def _aligned(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    return lines + ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]


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
