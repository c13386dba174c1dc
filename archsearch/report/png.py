"""The report's main plots as PNG files (for papers and READMEs), drawn with matplotlib.

Why matplotlib and not plotly's own image export: plotly writes PNGs through kaleido, which since
version 1 drives an installed Chrome (and downloads one from Google when there is none), so a
headless server or CI machine without a browser, or without internet, would get no pictures.
matplotlib is a plain wheel, draws without a display (the Agg backend), and is what papers' figures
are usually made with.  Both are in the ``report`` extra.
"""

from __future__ import annotations

import math
from pathlib import Path

from archsearch.core.atomic import atomic_path
from archsearch.report.importance import ABSENT, METHOD, Importance
from archsearch.report.data import RunRecord, finite, level_order, numeric_param
from archsearch.report.pareto import COLOURS as _PARETO, ParetoView, pareto_view, step_shape, time_unit

_COLOURS = {"completed": "#1f77b4", "promoted": "#2ca02c", "pruned": "#d62728", "failed": "#7f7f7f",
            "interrupted": "#ff7f0e", "running": "#9467bd", "best": "#e6a800"}


def save_pngs(run: RunRecord, importances: list[Importance], folder: Path,
              view: ParetoView | None = None) -> list[Path]:
    """Write ``history.png``, ``parameters.png``, ``importance.png``, ``learning_curves.png`` (and
    ``budgets.png`` for multi-fidelity tuners; ``pareto.png`` and ``hypervolume.png`` for a Pareto
    search) into ``folder``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if run.pareto and view is None:
        view = pareto_view(run)
    written = []
    for name, draw in (("history", _history), ("parameters", _parameters), ("importance", _importance),
                       ("learning_curves", _curves), ("budgets", _budgets),
                       ("pareto", lambda plt_, run_, _: _pareto(plt_, view)),
                       ("hypervolume", lambda plt_, run_, _: _hypervolume(plt_, view))):
        fig = draw(plt, run, importances)
        if fig is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        with atomic_path(path, expected_size=200_000) as tmp:
            fig.savefig(tmp, dpi=120, format="png")  # no bbox "tight": it draws the figure twice
        plt.close(fig)
        written.append(path)
    return written


def _single(plt):
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9)
    return fig, ax


def _history(plt, run: RunRecord, _):
    valued = [t for t in run.trials if finite(t["value"])]
    if not valued:
        return None
    fig, ax = _single(plt)
    for status in ("completed", "pruned", "failed", "interrupted", "running"):
        group = [t for t in valued if t["status"] == status]
        if group:
            ax.scatter([t["id"] for t in group], [t["value"] for t in group], s=18, color=_COLOURS[status],
                       label=status)
    xs, best, current = [], [], None
    for t in run.scored():
        current = t["value"] if current is None or run.sign * t["value"] > run.sign * current else current
        xs.append(t["id"])
        best.append(current)
    if xs:
        ax.step(xs, best, where="post", color=_COLOURS["best"], linewidth=2, label="best so far")
    ax.set(xlabel="trial", ylabel=run.objective, title=f"{run.objective} per trial")
    ax.xaxis.get_major_locator().set_params(integer=True)  # trial ids, never 0.25
    ax.legend(fontsize=8, loc="upper right" if run.direction == "min" else "lower right")
    ax.grid(alpha=0.3)
    return fig


def _parameters(plt, run: RunRecord, _):
    scored = run.scored()
    names = [n for n in run.param_names() if any(n in t["hparams"] for t in scored)]
    if not scored or not names:
        return None
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.12 / rows, top=1 - 0.1 / rows, wspace=0.3, hspace=0.45)
    for ax, name in zip(axes.flat, names):
        pairs = [(t["hparams"].get(name, ABSENT), t["value"]) for t in scored]
        present = [(v, y) for v, y in pairs if v is not ABSENT]
        spec = run.space.get(name) or {}
        if numeric_param([v for v, _ in pairs], spec):
            ax.scatter([v for v, _ in present], [y for _, y in present], s=14, color=_COLOURS["completed"])
            if spec.get("sampling") == "log" and all(v > 0 for v, _ in present):
                ax.set_xscale("log")
        else:
            levels = level_order([v for v, _ in pairs])
            groups = [[y for v, y in pairs if str(v) == lv] for lv in levels]
            ax.boxplot(groups, showfliers=False)
            ax.set_xticks(range(1, len(levels) + 1), levels, fontsize=8)
            for k, ys in enumerate(groups, start=1):
                ax.scatter([k] * len(ys), ys, s=10, color=_COLOURS["completed"], alpha=0.7)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.supylabel(run.objective)
    return fig


def _importance(plt, run: RunRecord, importances: list[Importance]):
    if not importances:
        return None
    ordered = importances[::-1]
    height = 1.2 + 0.35 * len(ordered)
    fig, ax = plt.subplots(figsize=(6.4, height))
    fig.subplots_adjust(left=0.25, right=0.97, bottom=0.6 / height, top=1 - 0.35 / height)
    ax.barh([i.name + (" *" if i.conditional else "") for i in ordered], [i.value for i in ordered],
            xerr=[i.std for i in ordered], color=_COLOURS["completed"], capsize=3)
    ax.set(xlim=(0, 1), title="Hyperparameter importance")
    ax.set_xlabel(METHOD, fontsize=7)
    return fig


def _curves(plt, run: RunRecord, _):
    from matplotlib.collections import LineCollection

    curves = [(t, run.joined_curve(t)) for t in run.trials]
    curves = [(t, c) for t, c in curves if c]
    if not curves:
        return None
    promoted, best = run.parents(), run.best()
    groups: dict[str, list] = {}
    for t, points in curves:
        group = "best" if best is not None and t["id"] == best["id"] else \
            "promoted" if t["id"] in promoted else t["status"]
        groups.setdefault(group, []).append(points)
    fig, ax = _single(plt)
    for group in ("completed", "interrupted", "running", "failed", "pruned", "promoted", "best"):
        lines = groups.get(group)
        if not lines:
            continue
        colour = _COLOURS.get(group, "#999")
        # One artist per group: a search of a thousand trials draws as fast as one of ten.
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=2.5 if group == "best" else 1,
                                         alpha=0.85, label=group))
        ends = [line[-1] for line in lines]
        ax.scatter([e[0] for e in ends], [e[1] for e in ends], s=14, color=colour,
                   marker={"pruned": "x", "promoted": "^", "best": "*"}.get(group, "o"))
    ax.autoscale()
    ax.set(xlabel="epoch", ylabel=run.objective, title="Learning curves")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="upper right" if run.direction == "min" else "lower right")
    ax.grid(alpha=0.3)
    return fig


def _budgets(plt, run: RunRecord, _):
    if not run.multi_fidelity:
        return None
    valued = [t for t in run.trials if finite(t["value"]) and t.get("budget") is not None]
    if not valued:
        return None
    fig, ax = _single(plt)
    brackets = sorted({str(t["info"].get("bracket", "?")) for t in valued})
    for key in brackets:
        group = [t for t in valued if str(t["info"].get("bracket", "?")) == key]
        ax.scatter([t["budget"] for t in group], [t["value"] for t in group], s=20, label=f"bracket {key}")
    ax.set_xscale("log")
    ax.set(xlabel="budget (epochs)", ylabel=run.objective, title=f"{run.objective} against budget")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def _pareto(plt, view: ParetoView | None):
    """The first two objectives (as the page's scatter): grey dominated, red infeasible, the front's step line."""
    if view is None or not view.scored:
        return None
    x, y = 1, 0
    fig, ax = _single(plt)
    fig.set_size_inches(6.4, 4.4)
    lower = view.lower_budget
    if lower:
        ax.scatter([view.values(t)[x] for t in lower], [view.values(t)[y] for t in lower], s=12,
                   color=_PARETO["lower_budget"], edgecolors="#999", linewidths=0.4, label="lower budget", zorder=1)
    for group, keep in (("dominated", False), ("front", True)):
        trials = [t for t, on in zip(view.scored, view.on_front) if bool(on) == keep]
        if trials:
            ax.scatter([view.values(t)[x] for t in trials], [view.values(t)[y] for t in trials], s=26 if keep else 16,
                       color=_PARETO[group], label=group, zorder=3 if keep else 2)
    line = view.front_of_two(x, y)
    ax.step([view.values(t)[x] for t in line], [view.values(t)[y] for t in line], color=_PARETO["front"],
            where="post" if step_shape(view.directions[x]) == "hv" else "pre", linewidth=1.5)
    both = [t for t in view.infeasible if view.values(t)[x] is not None and view.values(t)[y] is not None]
    if both:
        ax.scatter([view.values(t)[x] for t in both], [view.values(t)[y] for t in both], s=26, marker="x",
                   color=_PARETO["infeasible"], label="infeasible")
    knee = view.knee()
    if knee is not None:
        trial = next(t for t in view.scored if t["id"] == knee)
        ax.scatter([view.values(trial)[x]], [view.values(trial)[y]], s=160, marker="*", color=_PARETO["knee"],
                   edgecolors="#333", label="knee", zorder=4)
    for k, scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if view.log_axis(k, [v[k] for v in map(view.values, view.scored + both)]):
            scale("log")
    ax.set(xlabel=view.names[x], ylabel=view.names[y], title=f"Pareto front: {view.names[y]} against {view.names[x]}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _hypervolume(plt, view: ParetoView | None):
    """The normalised hypervolume against trials ended and against time (the page's normalisation)."""
    points = view.curve if view is not None else []
    if not points:
        return None
    unit, scale = time_unit(max(p.seconds for p in points))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.6), sharey=True)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.86, wspace=0.08)
    values = [p.normalised for p in points]
    left.step([p.ended for p in points], values, where="post", color=_PARETO["front"])
    right.step([p.seconds / scale for p in points], values, where="post", color=_PARETO["front"])
    left.set(xlabel="trials ended", ylabel="hypervolume (normalised)")
    right.set(xlabel=f"time since the first trial started ({unit})")
    reference = ", ".join(f"{n}={v:.4g}" for n, v in view.reference_values().items())
    fig.suptitle(f"Hypervolume (reference {reference}{', derived' if view.derived else ''})", fontsize=10)
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    return fig
