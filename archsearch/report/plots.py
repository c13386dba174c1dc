"""The report's interactive figures, built with plotly (``pip install "archsearch[report]"``).

plotly because its offline HTML is what Optuna's users already know (zoom, hover, box-select of
parallel-coordinate ranges), and one copy of plotly.js embedded in the file (~4.7 MB) makes it open
without a network.  Each function returns a ``plotly.graph_objects.Figure``, or None when the search
holds nothing to draw.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from archsearch.report.importance import ABSENT, METHOD, Importance
from archsearch.report.data import RunRecord, finite, level_order, numeric_param

STATUS_COLOURS = {"completed": "#1f77b4", "promoted": "#2ca02c", "pruned": "#d62728", "failed": "#7f7f7f",
                  "interrupted": "#ff7f0e", "running": "#9467bd", "best": "#e6a800"}
_LAYOUT = dict(template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=50))


def history(run: RunRecord) -> go.Figure | None:
    """Objective per trial in id order, coloured by status, with the best so far as a step line."""
    valued = [t for t in run.trials if finite(t["value"])]
    if not valued:
        return None
    fig = go.Figure()
    for status in ("completed", "pruned", "failed", "interrupted", "running"):
        group = [t for t in valued if t["status"] == status]
        if group:
            fig.add_scatter(x=[t["id"] for t in group], y=[t["value"] for t in group], mode="markers", name=status,
                            marker=dict(color=STATUS_COLOURS[status], size=8),
                            hovertext=[_hover(t) for t in group], hoverinfo="text")
    xs, best, current = [], [], None
    for t in run.scored():
        if current is None or run.sign * t["value"] > run.sign * current:
            current = t["value"]
        xs.append(t["id"])
        best.append(current)
    if xs:
        fig.add_scatter(x=xs, y=best, mode="lines", name="best so far", line=dict(color=STATUS_COLOURS["best"],
                                                                                   shape="hv", width=3))
    fig.update_layout(title=f"{run.objective} per trial ({_better(run)})", xaxis_title="trial",
                      yaxis_title=run.objective, **_LAYOUT)
    return fig


def parameter(run: RunRecord, name: str) -> go.Figure | None:
    """One hyperparameter against the objective: a scatter for numbers, box and points for categories."""
    scored = run.scored()
    values = [t["hparams"].get(name, ABSENT) for t in scored]
    if not scored:
        return None
    spec = run.space.get(name) or {}
    fig = go.Figure()
    if numeric_param(values, spec):
        pairs = [(v, t) for v, t in zip(values, scored) if v is not ABSENT]
        fig.add_scatter(x=[v for v, _ in pairs], y=[t["value"] for _, t in pairs], mode="markers",
                        marker=dict(color=[t["id"] for _, t in pairs], colorscale="Blues", size=8,
                                    line=dict(width=0.5, color="#333"), colorbar=dict(title="trial", thickness=10)),
                        hovertext=[_hover(t) for _, t in pairs], hoverinfo="text", showlegend=False)
        if spec.get("sampling") == "log" and all(v > 0 for v, _ in pairs):
            fig.update_xaxes(type="log")
        absent = len(values) - len(pairs)
        title = name + (f" ({absent} trials without it)" if absent else "")
    else:
        labels = [str(v) for v in values]
        fig.add_box(x=labels, y=[t["value"] for t in scored], boxpoints="all", jitter=0.4, pointpos=0,
                    marker=dict(size=7, color=STATUS_COLOURS["completed"]), line=dict(color="#555"),
                    hovertext=[_hover(t) for t in scored], hoverinfo="text", showlegend=False)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=level_order(values))
        title = name
    fig.update_layout(title=title, xaxis_title=name, yaxis_title=run.objective,
                      **{**_LAYOUT, "height": 320})
    return fig


def parallel_coordinates(run: RunRecord) -> go.Figure | None:
    """Every completed trial as a line through its values, coloured by its score (drag on an axis to filter)."""
    scored = run.scored()
    names = [n for n in run.param_names() if any(n in t["hparams"] for t in scored)]
    if len(scored) < 2 or not names:
        return None
    dimensions = [_dimension(n, [t["hparams"].get(n, ABSENT) for t in scored], run.space.get(n) or {}) for n in names]
    dimensions.append(dict(label=run.objective, values=[t["value"] for t in scored]))
    fig = go.Figure(go.Parcoords(
        line=dict(color=[t["value"] for t in scored], colorscale="Viridis", reversescale=run.direction == "min",
                  showscale=True, colorbar=dict(title=run.objective)),
        dimensions=dimensions))
    fig.update_layout(title=f"Parallel coordinates (colour: {run.objective}, {_better(run)})",
                      **{**_LAYOUT, "height": 440, "margin": dict(l=80, r=80, t=80, b=40)})
    return fig


def importance(run: RunRecord, importances: list[Importance]) -> go.Figure | None:
    if not importances:
        return None
    ordered = importances[::-1]  # most important on top
    fig = go.Figure(go.Bar(
        x=[i.value for i in ordered], y=[i.name + (" *" if i.conditional else "") for i in ordered],
        orientation="h", error_x=dict(type="data", array=[i.std for i in ordered], visible=True),
        marker_color=STATUS_COLOURS["completed"], hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title="Hyperparameter importance", xaxis_title=METHOD, xaxis_range=[0, 1],
                      **{**_LAYOUT, "height": max(260, 60 + 34 * len(ordered))})
    return fig


def learning_curves(run: RunRecord) -> go.Figure | None:
    """The objective per epoch of every trial; pruned ones end with an x, promoted ones continue in their child."""
    promoted, best = run.parents(), run.best()
    groups: dict[str, tuple[list, list, list]] = {}
    ends: dict[str, tuple[list, list, list]] = {}
    for t in run.trials:
        points = run.joined_curve(t)
        if not points:
            continue
        group = "best" if best is not None and t["id"] == best["id"] else \
            "promoted" if t["id"] in promoted else t["status"]
        xs, ys, text = groups.setdefault(group, ([], [], []))
        xs += [p[0] for p in points] + [None]
        ys += [p[1] for p in points] + [None]
        text += [f"trial {t['id']} ({t['status']}), epoch {p[0]}: {p[1]:.4g}" for p in points] + [None]
        ex, ey, et = ends.setdefault(group, ([], [], []))
        ex.append(points[-1][0])
        ey.append(points[-1][1])
        et.append(f"trial {t['id']} {group}")
    if not groups:
        return None
    fig = go.Figure()
    symbols = {"pruned": "x", "promoted": "triangle-up", "failed": "circle-x", "best": "star"}
    for group in ("completed", "interrupted", "running", "failed", "pruned", "promoted", "best"):
        if group not in groups:
            continue
        xs, ys, text = groups[group]
        colour = STATUS_COLOURS.get(group, "#999")
        fig.add_scatter(x=xs, y=ys, mode="lines", name=group, legendgroup=group, hovertext=text, hoverinfo="text",
                        line=dict(color=colour, width=3 if group == "best" else 1.3), opacity=0.9)
        ex, ey, et = ends[group]
        fig.add_scatter(x=ex, y=ey, mode="markers", legendgroup=group, showlegend=False, hovertext=et,
                        hoverinfo="text", marker=dict(color=colour, size=10 if group == "best" else 7,
                                                      symbol=symbols.get(group, "circle")))
    fig.update_layout(title=f"Learning curves: {run.objective} per epoch", xaxis_title="epoch",
                      yaxis_title=run.objective, **_LAYOUT)
    return fig


def budgets(run: RunRecord) -> go.Figure | None:
    """Hyperband/BOHB/ASHA: each trial's score against its budget, one colour per bracket, lines to promotions."""
    if not run.multi_fidelity:
        return None
    valued = [t for t in run.trials if finite(t["value"]) and t.get("budget") is not None]
    if not valued:
        return None
    by_id = {t["id"]: t for t in valued}
    fig = go.Figure()
    lx, ly = [], []
    for t in valued:
        parent = by_id.get(t.get("parent"))
        if parent is not None:
            lx += [parent["budget"], t["budget"], None]
            ly += [parent["value"], t["value"], None]
    if lx:
        fig.add_scatter(x=lx, y=ly, mode="lines", name="promotion", line=dict(color="#bbb", width=1),
                        hoverinfo="skip")
    for key in sorted({_bracket(t) for t in valued}):
        group = [t for t in valued if _bracket(t) == key]
        fig.add_scatter(x=[t["budget"] for t in group], y=[t["value"] for t in group], mode="markers", name=key,
                        marker=dict(size=9, symbol=["x" if t["status"] == "pruned" else "circle" for t in group]),
                        hovertext=[_hover(t) + f"<br>rung {t['info'].get('round', '?')}" for t in group],
                        hoverinfo="text")
    fig.update_layout(title=f"{run.objective} against budget, per bracket (x: pruned)", xaxis_title="budget (epochs)",
                      yaxis_title=run.objective, **_LAYOUT)
    fig.update_xaxes(type="log")
    return fig


def _bracket(trial: dict[str, Any]) -> str:
    info = trial["info"]
    if "iteration" in info:
        return f"iteration {info['iteration']}, bracket {info.get('bracket')}"
    return f"bracket {info.get('bracket', '?')}"


def _dimension(name: str, values: list[Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A parallel-coordinates axis; categories and the absent value of a conditional parameter get labelled ticks."""
    present = [v for v in values if v is not ABSENT]
    if numeric_param(values, spec):
        log = spec.get("sampling") == "log" and all(v > 0 for v in present)
        xs = [math.log10(v) if log else float(v) for v in present]
        lo, hi = min(xs), max(xs)
        span = (hi - lo) or 1.0
        ticks = [lo + span * k / 4 for k in range(5)]
        text = [f"{10 ** x:.2g}" if log else f"{x:.3g}" for x in ticks]
        gap = lo - 0.15 * span
        it = iter(xs)
        encoded = [gap if v is ABSENT else next(it) for v in values]
        if len(present) < len(values):
            ticks, text = [gap, *ticks], [ABSENT, *text]
        return dict(label=name + (" (log)" if log else ""), values=encoded, tickvals=ticks, ticktext=text)
    levels = level_order(values)
    index = {lv: i for i, lv in enumerate(levels)}
    return dict(label=name, values=[index[str(v)] for v in values], tickvals=list(range(len(levels))),
                ticktext=levels)


def _hover(trial: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={_short(v)}" for k, v in trial["hparams"].items())
    return f"trial {trial['id']} ({trial['status']}): {_short(trial['value'])}<br>{values}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _better(run: RunRecord) -> str:
    return "higher is better" if run.direction == "max" else "lower is better"
