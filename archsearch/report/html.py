"""``report.html``: one self-contained, interactive page about a search, built from ``trials.db`` alone.

Written at the end of every CLI search (also one stopped by Ctrl-C), and at any time, also while a
search runs or after it was killed, by::

    python -m archsearch.report.html <run folder> [--output FILE] [--no-png]

The page embeds everything it needs (plotly.js once, the predictions picture as data), so it opens
offline.  The plots are drawn with plotly (the page) and matplotlib (the PNG copies in ``plots/`` next
to it), both core dependencies, so a plain ``pip install`` writes the whole report.  Should either be
missing anyway (a broken environment), the page still holds the best trial, the importance table and the
trials table, and both the page and the console say so once, instead of quietly leaving the plots out.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch.core.atomic import write_text
from archsearch.engine.settings import ReportSettings
from archsearch.report.importance import METHOD, MIN_TRIALS, Importance, ped_anova
from archsearch.report.data import RunRecord, finite, read_run
from archsearch.report.gpu import GpuView, gpu_section, gpu_view
from archsearch.report.pareto import NORMALISATION, ParetoView, pareto_view
from archsearch.core.store import STORE_FILE, StoreNotFoundError, UnreadableStoreError

log = logging.getLogger("archsearch")
REINSTALL_HINT = "pip install --force-reinstall archsearch (or pip install plotly matplotlib)"
_warned: set[str] = set()  # the libraries already said missing in this process: one warning each, not one per report
PLOTS_FOLDER = "plots"


def write_report(folder: str | Path, output: str | Path | None = None, png: bool = True) -> Path:
    """Write the report of the search in ``folder`` (default ``<folder>/report.html``); returns its path.

    PNG copies of the main plots go to ``plots/`` beside it (unless ``png`` is False).
    """
    run = read_run(folder)
    output = Path(output) if output is not None else run.folder / "report.html"
    importances = ped_anova([t["hparams"] for t in run.final_results()], [t["value"] for t in run.final_results()],
                            run.direction, run.space)
    view = pareto_view(run) if run.pareto else None
    write_text(output, render(run, importances, view), run_folder=output.parent)
    if png:
        try:
            from archsearch.report.png import save_pngs

            save_pngs(run, importances, output.parent / PLOTS_FOLDER, view)
        except ImportError as exc:  # a broken environment: matplotlib is a dependency
            warn_missing("matplotlib", exc, "no PNG copies of the plots were written")
    return output


def missing_library_text(library: str, error: BaseException) -> str:
    """Why a plotting library cannot be used, and how to put it back (they are archsearch's dependencies)."""
    return (f"{library} cannot be imported ({error}), though archsearch depends on it: the environment is "
            f"incomplete; {REINSTALL_HINT}")


def warn_missing(library: str, error: BaseException, consequence: str) -> None:
    """Say once per process, on the console, that a report lacks its plots: never a silently thinner page."""
    if library not in _warned:
        _warned.add(library)
        log.warning("report: %s; %s", consequence, missing_library_text(library, error))


def render(run: RunRecord, importances: list[Importance], view: ParetoView | None = None) -> str:
    """The whole page as one string (``view``: a Pareto search's, :func:`archsearch.report.pareto.pareto_view`)."""
    if run.pareto and view is None:
        view = pareto_view(run)
    gpus = gpu_view(run)  # None without GPU figures: no panel
    figures, plotly_js, missing = _figures(run, importances, view, gpus)
    counts = Counter(t["status"] for t in run.trials)
    unfinished = counts.get("running", 0) + counts.get("interrupted", 0)
    parts = [
        f"<h1>Search report: {_e(run.folder.name or str(run.folder))}</h1>",
        "<p class='meta'>" + " · ".join(_e(s) for s in [
            f"run folder {run.folder}", f"tuner {run.tuner or 'unknown'}",
            _objective_text(run),
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials",
            f"written {_dt.datetime.now().isoformat(timespec='seconds')}"]) + "</p>",
        "<div id='report-errors' class='errors' hidden></div>",
    ]
    if unfinished:
        parts.append(f"<p class='note'>{unfinished} trial(s) were running or interrupted when this was written: the "
                     "search is still going, or was stopped (resume it with <code>python -m archsearch "
                     "resume=&lt;run folder&gt;</code>).</p>")
    if view is not None:
        parts.append(_pareto_section(view, figures))
    parts += [_best_section(run)]
    if figures is None:
        parts.append(f"<p class='errors'>No plots: {_e(missing)}; then <code>python -m archsearch.report.html "
                     f"{_e(str(run.folder))}</code> writes this page again with them.</p>")
    else:
        for title, key in (("Objective per trial", "history"), ("Learning curves", "curves"),
                           ("Score against budget", "budgets")):
            if figures.get(key):
                parts.append(f"<h2>{title}</h2>{figures[key]}")
    if gpus is not None:
        parts.append(gpu_section(gpus, (figures or {}).get("gpu", "")))
    parts.append(_importance_section(importances, figures, len(run.final_results())))
    if figures is not None:
        if figures.get("parallel"):
            parts.append(f"<h2>Parallel coordinates</h2>{figures['parallel']}")
        if figures.get("parameters"):
            parts.append("<h2>Each hyperparameter against the objective</h2><div class='grid'>"
                         + "".join(figures["parameters"]) + "</div>")
    parts += [_trials_section(run), _errors_section(run)]
    return _PAGE.format(title=_e(f"archsearch report: {run.folder.name}"), style=_STYLE,
                        plotly=f"<script type='text/javascript'>{plotly_js}</script>" if plotly_js else "",
                        body="\n".join(parts), script=_SCRIPT)


# ------------------------------------------------------------------ figures
def _figures(run: RunRecord, importances: list[Importance], view: ParetoView | None = None,
             gpus: GpuView | None = None) -> tuple[dict[str, Any] | None, str, str]:
    """Each figure as an HTML fragment (no plotly.js of its own), plotly.js once, and "" ; or (None, "", why)
    when plotly cannot be imported."""
    try:
        import plotly.io as pio
        from plotly.offline import get_plotlyjs

        from archsearch.report import plots as P
    except ImportError as exc:
        warn_missing("plotly", exc, "report.html has no plots")
        return None, "", missing_library_text("plotly", exc)

    def div(fig, key: str) -> str:
        if fig is None:
            return ""
        inner = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"plot-{key}",
                            config={"displaylogo": False, "responsive": True})
        return f"<div class='plot' data-plot='{_e(key)}'>{inner}</div>"

    figures: dict[str, Any] = {
        "history": div(P.history(run), "history"),
        "curves": div(P.learning_curves(run), "curves"),
        "budgets": div(P.budgets(run), "budgets"),
        "importance": div(P.importance(run, importances), "importance"),
        "parallel": div(P.parallel_coordinates(run), "parallel"),
        "parameters": [d for i, n in enumerate(run.param_names()) if (d := div(P.parameter(run, n), f"param-{i}"))],
    }
    if view is not None:
        figures["pareto"] = div(P.pareto_scatter(view), "pareto")
        figures["pareto-parallel"] = div(P.pareto_parallel(view), "pareto-parallel")
        figures["hypervolume"] = div(P.hypervolume_figure(view), "hypervolume")
    if gpus is not None:
        from archsearch.report.gpu import gpu_figure

        figures["gpu"] = div(gpu_figure(gpus), "gpu")
    return figures, get_plotlyjs(), ""


# ------------------------------------------------------------------ sections
def _objective_text(run: RunRecord) -> str:
    if run.pareto:
        return "Pareto search of " + ", ".join(f"{n} ({d})" for n, d in run.objectives)
    return f"objective {run.objective} ({'higher' if run.direction == 'max' else 'lower'} is better)"


def _pareto_section(view: ParetoView, figures: dict[str, Any] | None) -> str:
    """The front: how many trials, the hypervolume's reference point and normalisation, the plots, the table."""
    front = view.front()
    objectives = ", ".join(f"{n} ({'higher' if d == 'max' else 'lower'} is better)"
                           for n, d in zip(view.names, view.directions))
    parts = ["<h2>Pareto front</h2>", "<p>" + _e(
        f"{len(front)} of {len(view.scored)} completed trials are on the front of {objectives}; "
        + (f"{len(view.lower_budget)} trial(s) stopped at a lower budget are not compared (shown pale); "
           if view.lower_budget else "")
        + (f"{len(view.infeasible)} trial(s) were infeasible (refused by a constraint)." if view.infeasible
           else "no trial was infeasible.")) + "</p>",
        _reference_text(view), f"<p class='note'>Normalisation: {_e(NORMALISATION)}</p>"]
    if view.out_of_box():
        parts.append(f"<p class='errors'>No trial is better than the reference point on "
                     f"{_e(', '.join(view.out_of_box()))}: the hypervolume stays 0 until one is.</p>")
    for key, title in (("pareto", ""), ("pareto-parallel", "<h3>Every objective</h3>"),
                       ("hypervolume", "<h3>Hypervolume</h3>")):
        if figures and figures.get(key):
            parts.append(title + figures[key])
    return "\n".join(parts) + _front_table(view, front)


def _reference_text(view: ParetoView) -> str:
    """The hypervolume's reference point, in the objectives' units, and where it came from."""
    reference = _e(", ".join(f"{n} = {_fmt(v)}" for n, v in view.reference_values().items()))
    setting = view.setting
    if view.reference is None:
        return ("<p id='reference-point'>Hypervolume reference point: none yet (no trial has every objective; "
                f"set {setting} to fix one).</p>")
    if view.derived:
        return (f"<p id='reference-point'>Hypervolume reference point (derived: {setting} is not set, so "
                f"the worst value of each objective over the {len(view.scored)} completed trials plus 10% of its "
                f"range): <b>{reference}</b>. Set {setting} to compare searches on one scale.</p>")
    return f"<p id='reference-point'>Hypervolume reference point ({setting}): <b>{reference}</b>.</p>"


def _front_table(view: ParetoView, front: list[dict[str, Any]]) -> str:
    if not front:
        return "<p>No trial has completed with every objective yet.</p>"
    knee = view.knee()
    names = list(dict.fromkeys(n for t in front for n in t["hparams"]))
    head = "".join(f"<th>{_e(c)}</th>" for c in ["trial", *view.names, "", *names])
    rows = "".join(
        "<tr>" + "".join(f"<td data-v='{_e(_sort_key(v))}'>{_e(_fmt(v))}</td>"
                         for v in [t["id"], *view.values(t), "knee" if t["id"] == knee else "",
                                   *(t["hparams"].get(n) for n in names)]) + "</tr>" for t in front)
    return ("<h3>The front</h3><p class='note'>Best first by the first objective; the knee is the point closest to "
            "the ideal once each objective is scaled over the front.</p><div class='scroll'>"
            f"<table id='front' class='sortable'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")


def _best_section(run: RunRecord) -> str:
    best = run.best()
    # A Pareto search has no one best trial: this is the front's end that is best at the first objective.
    title = f"Best trial by {run.objective} (one end of the front)" if run.pareto else "Best trial"
    if best is None:
        return f"<h2>{_e(title)}</h2><p>No trial has completed yet.</p>"
    rows = [("trial", best["id"]), (run.objective, best["value"]), ("epochs", best.get("epochs_done")),
            ("budget", best.get("budget")), ("duration (s)", best.get("duration"))]
    rows += [(f"hp: {k}", v) for k, v in best["hparams"].items()]
    rows += [(f"metric: {k}", v) for k, v in best["metrics"].items()]
    text = f"<h2>{_e(title)}</h2><table class='kv'>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in rows if v is not None) + "</table>"
    picture = run.folder / "best" / "predictions.png"
    if picture.is_file():  # segmentation: the exported model's predictions, with its class legend
        data = base64.b64encode(picture.read_bytes()).decode("ascii")
        text += ("<h3>Predictions of the best model (validation samples)</h3>"
                 f"<img class='predictions' alt='input, true and predicted masks' src='data:image/png;base64,{data}'>")
    return text


def _importance_section(importances: list[Importance], figures: dict[str, Any] | None, trials_used: int) -> str:
    head = "<h2>Hyperparameter importance</h2>"
    if not importances:
        return head + (f"<p>Needs at least {MIN_TRIALS} completed trials whose parameters vary.</p>")
    about = (f"<p class='note'>{_e(METHOD)}: how differently each parameter's values are spread among the best "
             "10% of the completed trials (for Hyperband-style tuners, each configuration's last result) than among "
             "all of them, one parameter at a time (interactions are not seen). Shares sum to 1; the error bars are "
             "the standard deviation over bootstrap resamples of the trials, so a bar shorter than its error bar "
             "says the search cannot tell yet. * marks a conditional parameter: its absence is one of its values, "
             "so it also carries its parent's effect.</p>")
    table = ("<table class='sortable'><thead><tr><th>parameter</th><th>importance</th><th>± (bootstrap sd)</th>"
             "<th>conditional</th></tr></thead><tbody>" + "".join(
                 f"<tr><td>{_e(i.name)}</td><td data-v='{i.value}'>{i.value:.3f}</td><td data-v='{i.std}'>"
                 f"{i.std:.3f}</td><td>{'yes' if i.conditional else ''}</td></tr>" for i in importances)
             + "</tbody></table>")
    plot = (figures or {}).get("importance") or ""
    if trials_used < 50:
        about += (f"<p class='note'>From {trials_used} trials: fewer than 5 are in the top 10%, so read these "
                  "with their error bars.</p>")
    return head + about + plot + table


def _trials_section(run: RunRecord) -> str:
    names = run.param_names()
    metrics: list[str] = []
    for t in run.trials:
        metrics += [m for m in t["metrics"] if m not in metrics]
    columns = ["trial", "status", run.objective, "budget", "parent", "epochs", "duration (s)", "failure", *names,
               *metrics, "error"]
    head = "".join(f"<th title='click to sort'>{_e(c)}</th>" for c in columns)
    body = []
    for t in run.trials:
        cells = [t["id"], t["status"], t["value"], t.get("budget"), t.get("parent"), t.get("epochs_done"),
                 t.get("duration"), t.get("failure_kind")]
        cells += [t["hparams"].get(n) for n in names] + [t["metrics"].get(m) for m in metrics]
        tds = "".join(f"<td data-v='{_e(_sort_key(v))}'>{_e(_fmt(v))}</td>" for v in cells)
        error = t.get("error")
        first = (error.strip().splitlines() or ["error"])[0][:80] if error else ""
        tds += (f"<td class='error' data-v='{_e(first)}'><details><summary>{_e(first)}</summary>"
                f"<pre>{_e(error)}</pre></details></td>" if error else "<td data-v=''></td>")
        body.append(f"<tr class='status-{_e(t['status'])}'>{tds}</tr>")
    return ("<h2>Trials</h2><p class='note'>Click a column to sort.</p><div class='scroll'>"
            f"<table id='trials' class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            "</table></div>")


def _errors_section(run: RunRecord) -> str:
    failed = [t for t in run.trials if t.get("error")]
    if not failed:
        return ""
    return "<h2>Errors</h2>" + "".join(
        f"<h3>Trial {t['id']} ({_e(t['status'])}{', ' + _e(t['failure_kind']) if t.get('failure_kind') else ''})</h3>"
        f"<pre class='error'>{_e(t['error'])}</pre>" for t in failed)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _sort_key(value: Any) -> str:
    return repr(float(value)) if finite(value) else ("" if value is None else str(value))


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style>
<script>
window.addEventListener('error', function (e) {{
  var box = document.getElementById('report-errors');
  if (box) {{ box.hidden = false; box.textContent += 'A plot could not be drawn: ' + e.message + '\\n'; }}
}});
</script>
{plotly}
</head><body>
{body}
<script>{script}</script>
</body></html>
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
.meta, .note { color: #555; } .errors { background: #fee; color: #900; padding: .5em; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ddd; padding: 3px 6px; }
table.sortable th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
table.sortable th[data-order=asc]::after { content: " \\25B2"; } table.sortable th[data-order=desc]::after { content: " \\25BC"; }
table.kv th { text-align: left; background: #f8f8f8; }
.scroll { overflow: auto; max-height: 70vh; } .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }
tr.status-failed { background: #fdecec; } tr.status-pruned { background: #fff6e6; }
tr.status-running, tr.status-interrupted { background: #eef3ff; }
pre.error, td.error pre { white-space: pre-wrap; font-size: 12px; max-width: 70em; }
img.predictions { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
"""

_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.dataset.order !== 'asc';
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? 'asc' : 'desc';
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || '', y = b.cells[col].dataset.v || '';
        if (x === '' || y === '') { return (x === '') - (y === ''); }
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def write_report_safely(folder: str | Path, mode: str = ReportSettings.mode) -> Path | None:
    """The end of a search: write the report, but never let a report problem cost the search's results.

    ``mode`` is the config's ``report`` (:class:`archsearch.engine.settings.ReportSettings`): ``full``
    (the page and its PNGs), ``html`` (no PNGs: about 3 s of matplotlib less) or ``off``.  Returns the
    page's path (the caller's console says it), or None when none was written (a problem is logged).
    """
    if mode == "off":
        return None
    try:
        path = write_report(folder, png=mode != "html")
    except Exception as exc:  # noqa: BLE001 - the report is a convenience; the store and best/ are the record
        log.warning("could not write report.html: %s", exc)
        return None
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archsearch.report.html",
                                     description="Write report.html (and plots/*.png) for a search's run folder.")
    parser.add_argument("folder", help=f"the run folder (the one that holds {STORE_FILE})")
    parser.add_argument("--output", "-o", help="where to write the page (default <folder>/report.html)")
    parser.add_argument("--no-png", action="store_true", help="do not write the PNG copies of the plots")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    try:
        path = write_report(folder, args.output, png=not args.no_png)
    except StoreNotFoundError as exc:
        print(f"error: {exc}; give the run folder of a search, e.g. outputs/<date>/<time>", file=sys.stderr)
        return 2
    except UnreadableStoreError as exc:
        print(f"error: {exc}; is it a search's run folder?", file=sys.stderr)
        return 2
    print(f"Report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
