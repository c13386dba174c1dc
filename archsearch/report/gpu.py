"""The report's GPU panel: how busy each GPU was over the search, and how many trials an hour it finished.

Drawn from the epochs' own figures (archsearch/training/gpu_stats.py: ``gpu_utilization``, ``gpu_memory_mb``,
``gpu_index``, ``samples_per_second``) and the store's times, so a report of a running or killed search shows
them too.  A run with no ``gpu_utilization`` figure (no NVML, no GPU, a command search) has no panel.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archsearch.core.measures import RUN_FIGURES
from archsearch.report.data import RunRecord, finite

SAMPLES_PER_SECOND, GPU_UTILIZATION, GPU_MEMORY_MB, GPU_INDEX = RUN_FIGURES
ENDED = ("completed", "failed", "pruned")


@dataclass(frozen=True)
class GpuEpoch:
    """One epoch's figures: which trial and epoch, when (minutes since the search's first trial started)."""

    trial: int
    epoch: int
    minutes: float
    utilization: float
    memory_mb: float | None
    samples_per_second: float | None
    first: bool  # the first epoch this trial trained in its run: it also builds, compiles and traces


@dataclass
class GpuView:
    """The run's GPU figures by GPU (``GPU 0``, ...), and its pace in trials per hour."""

    gpus: dict[str, list[GpuEpoch]] = field(default_factory=dict)
    trials_ended: int = 0
    hours: float = 0.0

    @property
    def trials_per_hour(self) -> float | None:
        return self.trials_ended / self.hours if self.hours > 0 and self.trials_ended else None

    def summary(self) -> list[dict[str, Any]]:
        """Per GPU: epochs measured, mean utilisation (all epochs, and after each trial's first), peak memory,
        mean samples per second."""
        rows = []
        for name, epochs in self.gpus.items():
            steady = [e.utilization for e in epochs if not e.first]
            memory = [e.memory_mb for e in epochs if e.memory_mb is not None]
            speed = [e.samples_per_second for e in epochs if e.samples_per_second is not None]
            rows.append({"gpu": name, "epochs": len(epochs), "mean_utilization": _mean([e.utilization for e in epochs]),
                         "steady_utilization": _mean(steady), "peak_memory_mb": max(memory) if memory else None,
                         "samples_per_second": _mean(speed)})
        return rows


def gpu_view(run: RunRecord) -> GpuView | None:
    """The run's GPU figures, or None when no epoch has ``gpu_utilization`` (then the report has no panel)."""
    starts = [float(t["started_at"]) for t in run.trials if finite(t.get("started_at"))]
    origin = min(starts) if starts else 0.0
    view = GpuView()
    for trial in run.trials:
        times = run.epoch_times.get(trial["id"], {})
        epochs = sorted(run.epochs.get(trial["id"], []), key=lambda e: e["epoch"])
        for k, epoch in enumerate(epochs):
            utilization = epoch.get(GPU_UTILIZATION)
            when = times.get(int(epoch["epoch"]))
            if not finite(utilization) or when is None:
                continue
            name = f"GPU {int(epoch[GPU_INDEX])}" if finite(epoch.get(GPU_INDEX)) else "GPU"
            view.gpus.setdefault(name, []).append(GpuEpoch(
                int(trial["id"]), int(epoch["epoch"]), (when - origin) / 60.0, float(utilization),
                _number(epoch.get(GPU_MEMORY_MB)), _number(epoch.get(SAMPLES_PER_SECOND)),
                first=k == 0))
    if not view.gpus:
        return None
    for epochs in view.gpus.values():
        epochs.sort(key=lambda e: (e.minutes, e.trial))
    view.gpus = dict(sorted(view.gpus.items()))
    ended = [t for t in run.trials if t["status"] in ENDED and finite(t.get("finished_at"))]
    view.trials_ended = len(ended)
    if ended and starts:
        view.hours = (max(float(t["finished_at"]) for t in ended) - origin) / 3600.0
    return view


def gpu_figure(view: GpuView):
    """Utilisation (top) and peak memory (bottom) of each GPU over the search's minutes, one point per epoch."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("utilisation per epoch (%)", "peak memory per epoch (MiB)"))
    for name, epochs in view.gpus.items():
        hover = [f"trial {e.trial}, epoch {e.epoch}" + (f"<br>{e.samples_per_second:,.0f} samples/s"
                                                        if e.samples_per_second is not None else "") for e in epochs]
        fig.add_trace(go.Scatter(x=[e.minutes for e in epochs], y=[e.utilization for e in epochs], name=name,
                                 legendgroup=name, mode="lines+markers", text=hover,
                                 hovertemplate="%{y:.0f}% at %{x:.1f} min<br>%{text}<extra>" + name + "</extra>"),
                      row=1, col=1)
        memory = [e for e in epochs if e.memory_mb is not None]
        if memory:
            fig.add_trace(go.Scatter(x=[e.minutes for e in memory], y=[e.memory_mb for e in memory], name=name,
                                     legendgroup=name, showlegend=False, mode="lines+markers",
                                     hovertemplate="%{y:,.0f} MiB at %{x:.1f} min<extra>" + name + "</extra>"),
                          row=2, col=1)
    fig.update_yaxes(range=[0, 105], row=1, col=1)
    fig.update_xaxes(title_text="minutes since the first trial started", row=2, col=1)
    fig.update_layout(height=520, margin=dict(l=60, r=20, t=40, b=50))
    return fig


def gpu_section(view: GpuView, figure: str = "") -> str:
    """The panel: the pace, the plot (``figure``: its HTML, "" without plotly) and a table per GPU."""
    pace = view.trials_per_hour
    head = ("<h2 id='gpu'>GPU</h2><p>" + (f"<b>{pace:.1f} trials per hour</b> ({view.trials_ended} trials ended in "
                                           f"{view.hours * 60:.1f} minutes). " if pace is not None else "")
            + "Utilisation and memory are each GPU's own, sampled through NVML while every epoch trained (trials "
            "sharing a GPU report the same device); steady = the epochs after each trial's first, which also "
            "builds and compiles its model.</p>")
    columns = ["GPU", "epochs", "mean utilisation %", "steady utilisation %", "peak memory MiB", "samples/s"]
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(row[k]))}</td>" for k in (
        "gpu", "epochs", "mean_utilization", "steady_utilization", "peak_memory_mb", "samples_per_second"))
        + "</tr>" for row in view.summary())
    table = ("<table id='gpu-table'><thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns)
             + f"</tr></thead><tbody>{body}</tbody></table>")
    return head + figure + table


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _number(value: Any) -> float | None:
    return float(value) if finite(value) else None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
