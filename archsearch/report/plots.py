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
from archsearch.report.pareto import COLOURS as PARETO_COLOURS, ParetoView, step_shape, time_unit

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


# ------------------------------------------------------------------ Pareto search
def pareto_scatter(view: ParetoView) -> go.Figure | None:
    """The first two objectives: the second across, the first (the main score) up; dominated trials grey,
    infeasible ones in red (those refused before training, without a score, on the edge of the plot), the front
    of the two as a step line and the knee of the whole front as a star."""
    if len(view.names) < 2 or not (view.scored or view.infeasible):
        return None
    x, y = 1, 0
    fig = go.Figure()
    knee = view.knee()
    groups = (("lower_budget", view.lower_budget),
              ("front", [t for t, on in zip(view.scored, view.on_front) if on]),
              ("dominated", [t for t, on in zip(view.scored, view.on_front) if not on]))
    for group, trials in groups:
        if trials:
            fig.add_scatter(x=[view.values(t)[x] for t in trials], y=[view.values(t)[y] for t in trials],
                            mode="markers", name=_front_name(view, group),
                            marker=dict(color=PARETO_COLOURS[group], size=9 if group == "front" else 7,
                                        line=dict(width=0.5, color="#999" if group == "lower_budget" else "#333")),
                            hovertext=[_pareto_hover(view, t) for t in trials], hoverinfo="text")
    line = view.front_of_two(x, y)
    if line:
        fig.add_scatter(x=[view.values(t)[x] for t in line], y=[view.values(t)[y] for t in line], mode="lines",
                        name=f"front of {view.names[y]} and {view.names[x]}" if len(view.names) > 2 else "front line",
                        line=dict(color=PARETO_COLOURS["front"], shape=step_shape(view.directions[x]), width=2),
                        hoverinfo="skip")
    _infeasible_traces(fig, view, x, y)
    if knee is not None:
        trial = next(t for t in view.scored if t["id"] == knee)
        fig.add_scatter(x=[view.values(trial)[x]], y=[view.values(trial)[y]], mode="markers", name="knee",
                        marker=dict(color=PARETO_COLOURS["knee"], size=16, symbol="star", line=dict(width=1)),
                        hovertext=[_pareto_hover(view, trial)], hoverinfo="text")
    fig.update_layout(title=f"{view.names[y]} against {view.names[x]} ({_arrows(view, y)} {view.names[y]}, "
                            f"{_arrows(view, x)} {view.names[x]} is better)",
                      xaxis_title=view.names[x], yaxis_title=view.names[y], **{**_LAYOUT, "height": 460})
    for axis, k in (("xaxis", x), ("yaxis", y)):
        values = [v[k] for v in map(view.values, view.scored + view.infeasible) if v[k] is not None]
        if view.log_axis(k, values):
            fig.update_layout({axis: dict(type="log")})
    return fig


def _infeasible_traces(fig: go.Figure, view: ParetoView, x: int, y: int) -> None:
    """Infeasible trials with both values as red x's; those with one (refused before training: a size, no score)
    as a rug on the plot's edge, on a hidden [0, 1] axis so that they do not stretch the objective's axis."""
    both, rug_x, rug_y = [], [], []
    for trial in view.infeasible:
        values = view.values(trial)
        target = both if values[x] is not None and values[y] is not None else \
            rug_x if values[x] is not None else rug_y if values[y] is not None else None
        if target is not None:
            target.append(trial)
    marker = dict(color=PARETO_COLOURS["infeasible"], size=9, symbol="x")
    if both:
        fig.add_scatter(x=[view.values(t)[x] for t in both], y=[view.values(t)[y] for t in both], mode="markers",
                        name="infeasible", marker=marker, hovertext=[_pareto_hover(view, t) for t in both],
                        hoverinfo="text")
    if rug_x:
        fig.add_scatter(x=[view.values(t)[x] for t in rug_x], y=[0.03] * len(rug_x), yaxis="y2", mode="markers",
                        name=f"infeasible (no {view.names[y]}: not trained)", hoverinfo="text",
                        marker={**marker, "symbol": "line-ns-open", "size": 14},
                        hovertext=[_pareto_hover(view, t) for t in rug_x])
        fig.update_layout(yaxis2=dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True))
    if rug_y:
        fig.add_scatter(x=[0.03] * len(rug_y), y=[view.values(t)[y] for t in rug_y], xaxis="x2", mode="markers",
                        name=f"infeasible (no {view.names[x]})", hoverinfo="text",
                        marker={**marker, "symbol": "line-ew-open", "size": 14},
                        hovertext=[_pareto_hover(view, t) for t in rug_y])
        fig.update_layout(xaxis2=dict(overlaying="x", range=[0, 1], visible=False, fixedrange=True))


def pareto_parallel(view: ParetoView) -> go.Figure | None:
    """Three objectives or more: every completed trial (and every infeasible one with all values) as a line
    through its objectives; the front in colour, dominated trials grey, infeasible ones red."""
    if len(view.names) < 3:
        return None
    lines = [(t, 1.0 if on else 0.0) for t, on in zip(view.scored, view.on_front)]
    lines += [(t, 0.5) for t in view.infeasible if all(v is not None for v in view.values(t))]
    if len(lines) < 2:
        return None
    dimensions = []
    for k, (name, direction) in enumerate(zip(view.names, view.directions)):
        values = [view.values(t)[k] for t, _ in lines]
        log = view.log_axis(k, values)
        dimensions.append(dict(label=f"{name} ({direction}{', log' if log else ''})",
                               values=[math.log10(v) for v in values] if log else values,
                               **(_log_ticks(values) if log else {})))
    colours = [[0.0, PARETO_COLOURS["dominated"]], [0.33, PARETO_COLOURS["dominated"]],
               [0.34, PARETO_COLOURS["infeasible"]], [0.66, PARETO_COLOURS["infeasible"]],
               [0.67, PARETO_COLOURS["front"]], [1.0, PARETO_COLOURS["front"]]]
    fig = go.Figure(go.Parcoords(line=dict(color=[c for _, c in lines], colorscale=colours, cmin=0, cmax=1),
                                 dimensions=dimensions))
    fig.update_layout(title=f"The objectives of every trial (blue: the front, {int(view.on_front.sum())} trials; "
                            "grey: dominated; red: infeasible)",
                      **{**_LAYOUT, "height": 460, "margin": dict(l=80, r=80, t=110, b=40)})
    return fig


def hypervolume_figure(view: ParetoView) -> go.Figure | None:
    """The normalised hypervolume after each trial's end: against the number of trials ended and against time."""
    points = view.curve
    if not points:
        return None
    from plotly.subplots import make_subplots

    seconds = [p.seconds for p in points]
    unit, scale = time_unit(max(seconds))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("against trials ended", "against time"))
    text = [f"after trial {p.trial} ({p.ended} ended, {p.seconds / scale:.3g} {unit}): {p.normalised:.4g}"
            f"<br>raw (objectives' units): {p.raw:.4g}" for p in points]
    common = dict(mode="lines+markers", line=dict(shape="hv", color=PARETO_COLOURS["front"]), marker=dict(size=5),
                  hovertext=text, hoverinfo="text", showlegend=False)
    fig.add_scatter(x=[p.ended for p in points], y=[p.normalised for p in points], name="hypervolume", row=1, col=1,
                    **common)
    fig.add_scatter(x=[s / scale for s in seconds], y=[p.normalised for p in points], name="hypervolume by time",
                    row=1, col=2, **common)
    fig.update_xaxes(title_text="trials ended", row=1, col=1)
    fig.update_xaxes(title_text=f"time since the first trial started ({unit})", row=1, col=2)
    fig.update_yaxes(title_text="hypervolume (normalised)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=60, r=20, t=40, b=50)})
    return fig


def _log_ticks(values: list[float]) -> dict[str, Any]:
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    ticks = list(range(low, high + 1))
    return dict(tickvals=ticks, ticktext=[f"{10.0 ** k:.0e}" for k in ticks])


def _front_name(view: ParetoView, group: str) -> str:
    if group == "front":
        return "front" if len(view.names) == 2 else f"front (of all {len(view.names)} objectives)"
    if group == "lower_budget":
        return "stopped at a lower budget (not compared)"
    return "dominated"


def _pareto_hover(view: ParetoView, trial: dict[str, Any]) -> str:
    values = "<br>".join(f"{n} = {_short(v)}" for n, v in zip(view.names, view.values(trial)) if v is not None)
    error = (trial.get("error") or "").strip().splitlines()
    return f"trial {trial['id']} ({trial['status']})<br>{values}" + (f"<br>{error[0][:120]}" if error else "")


def _arrows(view: ParetoView, k: int) -> str:
    return "higher" if view.directions[k] == "max" else "lower"
