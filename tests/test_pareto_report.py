"""report.html of a Pareto search: the front's scatter, parallel coordinates, hypervolume; from synthetic stores."""

from __future__ import annotations

import json
import re
from itertools import product

import numpy as np
import pytest

from archsearch.core.pareto import default_reference_point, hypervolume
from archsearch.report import html as report
from archsearch.report.data import read_run
from archsearch.report.pareto import configured_reference, pareto_view
from report_stores import CHROMIUM, chromium_dom, pareto_store, random_store

TWO = ("val_accuracy:max", "params:min")


def _figure(text: str, key: str) -> tuple[list[dict], dict]:
    """The traces and layout of the page's plot ``key``, as the page hands them to plotly.js."""
    start = re.search(rf'Plotly\.newPlot\(\s*"plot-{re.escape(key)}",\s*', text).end()
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text, start)
    layout, _ = decoder.raw_decode(text, text.index("{", end))
    return data, layout


def _trace(data: list[dict], name: str) -> dict:
    found = [t for t in data if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in data]
    return found[0]


def _ids(trace: dict) -> list[int]:
    return [int(re.match(r"trial (\d+)", h).group(1)) for h in trace["hovertext"]]


def _front_by_hand(points: dict[int, tuple[float, float]]) -> list[int]:
    """Trials no other trial beats on both (accuracy up, params down), by increasing params."""
    def beaten(a, b):
        return b[0] >= a[0] and b[1] <= a[1] and b != a
    return sorted((i for i, p in points.items() if not any(beaten(p, q) for q in points.values())),
                  key=lambda i: points[i][1])


def test_a_two_objective_report_draws_the_front_infeasible_trials_and_a_rising_hypervolume(tmp_path):
    folder = pareto_store(tmp_path / "run", objectives=TWO, reference_point={"val_accuracy": 0.4, "params": 4e6})
    text = report.write_report(folder).read_text()
    assert "data-plot='pareto'" in text and "data-plot='hypervolume'" in text
    assert "data-plot='pareto-parallel'" not in text  # two objectives: the scatter says it all

    run = read_run(folder)
    completed = {t["id"]: (t["metrics"]["val_accuracy"], t["metrics"]["params"])
                 for t in run.trials if t["status"] == "completed"}
    front = _front_by_hand(completed)
    data, layout = _figure(text, "pareto")
    line = _trace(data, "front line")
    assert line["line"]["shape"] == "hv"
    assert list(zip(line["x"], line["y"])) == [(completed[i][1], completed[i][0]) for i in front]  # exactly the front
    assert sorted(_ids(_trace(data, "front"))) == sorted(front)
    assert sorted(_ids(_trace(data, "dominated"))) == sorted(set(completed) - set(front))
    assert _ids(_trace(data, "infeasible")) == [7]  # measured, trained, then refused: its own colour
    refused = _trace(data, "infeasible (no val_accuracy: not trained)")  # refused before training: on the edge
    assert _ids(refused) == [0, 5, 10, 15, 20, 25] and refused["yaxis"] == "y2"
    assert layout["xaxis"]["type"] == "log" and layout["yaxis"].get("type") != "log"  # params spans decades

    curve = _figure(text, "hypervolume")[0][0]["y"]
    assert len(curve) == 30 and np.all(np.diff(curve) >= 0) and curve[-1] > 0  # a point per ended trial, any status
    # The last point by hand: the area the front dominates up to the reference, over the box [ideal, reference].
    ref, ideal = (0.4, 4e6), (max(a for a, _ in completed.values()), min(p for _, p in completed.values()))
    area, floor = 0.0, ref[0]
    for i in front:  # by increasing params, increasing accuracy
        area += (completed[i][0] - floor) * (ref[1] - completed[i][1])
        floor = completed[i][0]
    assert curve[-1] == pytest.approx(area / ((ideal[0] - ref[0]) * (ref[1] - ideal[1])))
    assert "Hypervolume reference point (search.reference_point): <b>val_accuracy = 0.4, params = 4e+06</b>" in text
    for name in ("pareto", "hypervolume"):
        assert (folder / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_three_objectives_get_parallel_coordinates_and_a_derived_reference_said_so(tmp_path):
    folder = pareto_store(tmp_path / "run")  # val_accuracy, params, latency_ms; no reference point in the config
    text = report.write_report(folder, png=False).read_text()
    view = pareto_view(read_run(folder))
    data, _ = _figure(text, "pareto-parallel")
    lines = data[0]
    assert [d["label"] for d in lines["dimensions"]] == ["val_accuracy (max)", "params (min, log)", "latency_ms (min)"]
    colours = lines["line"]["color"]
    assert colours.count(1.0) == int(view.on_front.sum()) == len(view.front()) > 0  # the front highlighted
    assert colours.count(0.5) == 1  # trial 7, the one infeasible trial with every objective
    assert len(colours) == len(view.scored) + 1
    assert "front of val_accuracy and params" in [t.get("name") for t in _figure(text, "pareto")[0]]

    costs = np.array([[-t["metrics"]["val_accuracy"], t["metrics"]["params"], t["metrics"]["latency_ms"]]
                      for t in view.scored])
    derived = default_reference_point(costs)
    assert derived == pytest.approx(costs.max(axis=0) + 0.1 * (costs.max(axis=0) - costs.min(axis=0)))
    assert "Hypervolume reference point (derived: search.reference_point is not set" in text
    printed = f"val_accuracy = {-derived[0]:.6g}, params = {derived[1]:.6g}, latency_ms = {derived[2]:.6g}"
    assert printed in text
    curve = _figure(text, "hypervolume")[0][0]["y"]
    assert np.all(np.diff(curve) >= 0) and curve[-1] > curve[0]
    assert "Normalisation: each objective (by its log where its scale is log) is scaled to [0, 1] between the ideal" in text
    front_table = text[text.index("<table id='front'"):text.index("</table>", text.index("<table id='front'"))]
    assert front_table.count("<tr>") == len(view.front()) + 1 and front_table.count(">knee<") == 1


def test_the_hypervolume_is_zero_while_no_trial_beats_the_reference_and_says_why(tmp_path):
    folder = pareto_store(tmp_path / "run", objectives=TWO, n=12, reference_point=[0.99, 4e6])
    run = read_run(folder)
    view = pareto_view(run)
    assert view.out_of_box() == ["val_accuracy"]
    assert all(p.normalised == 0 for p in view.hypervolume_curve(run.trials))
    assert "No trial is better than the reference point on val_accuracy" in report.render(run, [], view)


def test_a_stored_reference_point_that_does_not_fit_the_objectives_is_an_error_not_a_guess():
    names = ["val_accuracy", "params"]
    assert configured_reference({"search": {"reference_point": {"params": 2e6, "val_accuracy": 0.5}}}, names) == \
        [0.5, 2e6]
    assert configured_reference({"search": {"reference_point": None}}, names) is None
    for bad in ([0.5], {"val_accuracy": 0.5, "flops": 1}, [0.5, "big"]):
        with pytest.raises(ValueError, match="search.reference_point"):
            configured_reference({"search": {"reference_point": bad}}, names)


@pytest.mark.parametrize("dx, dy", list(product(("min", "max"), repeat=2)))
def test_the_step_line_bounds_what_the_front_dominates_in_every_direction(tmp_path, dx, dy):
    from archsearch.report.data import RunRecord
    from archsearch.report.plots import pareto_scatter

    # A trade-off in every direction: x better -> y worse.  Between two front points the line turns at the corner
    # both of them dominate (the edge of the dominated region), never at the one neither does.
    sx, sy = (1 if dx == "min" else -1), (1 if dy == "min" else -1)
    points = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (3.0, 3.0)]  # costs: the last is dominated
    trials = [{"id": i, "status": "completed", "failure_kind": None, "hparams": {}, "error": None,
               "metrics": {"y": sy * cy, "x": sx * cx}} for i, (cx, cy) in enumerate(points)]
    run = RunRecord(tmp_path, trials, {}, "y", dy, objectives=[("y", dy), ("x", dx)])
    line = _trace(pareto_scatter(pareto_view(run)).to_plotly_json()["data"], "front line")
    xs, ys = list(line["x"]), list(line["y"])
    assert sorted(xs) == xs and len(xs) == 3
    for k in range(2):
        corner = (xs[k + 1], ys[k]) if line["line"]["shape"] == "hv" else (xs[k], ys[k + 1])
        for x, y in ((xs[k], ys[k]), (xs[k + 1], ys[k + 1])):
            assert sx * x <= sx * corner[0] and sy * y <= sy * corner[1], (dx, dy, corner)


def test_a_single_objective_report_has_no_pareto_views(tmp_path):
    folder = random_store(tmp_path / "run", n=6)
    text = report.write_report(folder, png=False).read_text()
    assert "Pareto" not in text and "data-plot='hypervolume'" not in text and "<h2>Best trial</h2>" in text
    assert not read_run(folder).pareto


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_the_pareto_plots_render_in_headless_chromium(tmp_path):
    page = report.write_report(pareto_store(tmp_path / "run", n=15), png=False)
    dom = chromium_dom(page, tmp_path / "profile")
    ends = r'(?=<div class="plot" data-plot=|<h[23]>|</body>)'
    plots = dict(re.findall(r'<div class="plot" data-plot="([^"]+)">(.*?)' + ends, dom, re.S))
    for key in ("pareto", "pareto-parallel", "hypervolume"):
        assert "main-svg" in plots[key], f"plot {key} did not render"
    assert re.search(r'<div id="report-errors" class="errors" hidden="">\s*</div>', dom)  # no script error


def test_the_derived_reference_point_lies_beyond_the_nadir_even_when_every_trial_shares_a_value():
    costs = np.array([[-0.9, 2e6], [-0.7, 1e6], [-0.8, 1e6]])
    assert default_reference_point(costs) == pytest.approx([-0.7 + 0.02, 2e6 + 1e5])
    assert default_reference_point(np.array([[0.0, -3.0]])) == pytest.approx([0.1, -3.0 + 0.3])
    with pytest.raises(ValueError, match="no trial"):
        default_reference_point(np.zeros((0, 2)))


def test_a_log_scaled_objective_counts_by_its_logarithm_in_the_reports_hypervolume(tmp_path):
    """``params:min:log`` (stored in the search's fingerprint): the curve is the share of the box between the
    ideal and the reference point in log params, as the oracles count it; the front and the axes do not change."""
    told = {"val_accuracy": 0.4, "params": 4e6}
    plain = pareto_view(read_run(pareto_store(tmp_path / "plain", objectives=TWO, reference_point=told)))
    run = read_run(pareto_store(tmp_path / "log", objectives=("val_accuracy:max", "params:min:log"),
                                reference_point=told))
    assert run.log_scaled == ("params",)
    logged = pareto_view(run)
    assert logged.on_front.tolist() == plain.on_front.tolist()
    assert logged.reference_values() == told  # printed in the objectives' own units
    costs = logged.costs.copy()
    costs[:, 1] = np.log(costs[:, 1])
    reference = np.array([-0.4, np.log(4e6)])
    ideal = costs.min(axis=0)
    expected = hypervolume((costs - ideal) / (reference - ideal), np.ones(2))
    assert logged.curve[-1].normalised == pytest.approx(expected)
    assert logged.curve[-1].normalised != pytest.approx(plain.curve[-1].normalised)


def test_an_objective_counted_by_its_logarithm_gets_a_log_axis(tmp_path):
    """latency_ms is not a size (a linear axis by default); told ``latency_ms:min:log``, its axis is log."""
    folder = pareto_store(tmp_path / "run", objectives=("val_accuracy:max", "params:min", "latency_ms:min:log"))
    data, _ = _figure(report.write_report(folder, png=False).read_text(), "pareto-parallel")
    labels = [d["label"] for d in data[0]["dimensions"]]
    assert labels == ["val_accuracy (max)", "params (min, log)", "latency_ms (min, log)"]
