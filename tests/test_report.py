"""report.html and the importance method, from synthetic trials.db files (no Keras, no training)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archsearch.report import html as report
from archsearch.report.importance import MIN_TRIALS, ped_anova
from archsearch.report.data import read_run
from archsearch.core.store import TrialStore
from report_stores import CHROMIUM, chromium_dom, hyperband_store, random_store

REPO = Path(__file__).resolve().parent.parent


def _importances(folder: Path):
    run = read_run(folder)
    final = run.final_results()
    return ped_anova([t["hparams"] for t in final], [t["value"] for t in final], run.direction, run.space)


# ------------------------------------------------------------------ importance
def test_importance_ranks_the_parameter_that_drives_the_objective_first_and_noise_low(tmp_path):
    imps = _importances(random_store(tmp_path / "run", n=60, seed=0))
    by_name = {i.name: i for i in imps}
    assert imps[0].name == "learning_rate"
    assert by_name["learning_rate"].value > 0.4
    assert by_name["learning_rate"].value > 3 * by_name["noise"].value
    assert sum(i.value for i in imps) == pytest.approx(1.0)
    assert all(i.std >= 0 for i in imps)
    assert by_name["units_2"].conditional and not by_name["noise"].conditional  # absent in 1-layer trials
    assert _importances(tmp_path / "run") == imps  # seeded: the same numbers every time


def test_importance_direction_and_conditional_parameters():
    rng = np.random.default_rng(3)
    hparams, values = [], []
    for _ in range(80):
        on = bool(rng.integers(0, 2))
        hp = {"noise": float(rng.uniform()), "on": on}
        if on:
            hp["child"] = float(rng.uniform())
        hparams.append(hp)
        values.append((hp["child"] - 0.8) ** 2 if on else 1.0)  # a loss: only "on" trials with child near 0.8 win
    imps = {i.name: i for i in ped_anova(hparams, values, direction="min")}
    assert imps["child"].conditional
    assert imps["child"].value > 3 * imps["noise"].value
    assert imps["on"].value > imps["noise"].value
    flipped = {i.name: i.value for i in ped_anova(hparams, [-v for v in values], direction="max")}
    assert flipped == pytest.approx({n: i.value for n, i in imps.items()})  # max of -loss is min of loss


def test_importance_needs_enough_trials_and_ignores_fixed_values():
    few = [{"x": float(i)} for i in range(MIN_TRIALS - 1)]
    assert ped_anova(few, [float(i) for i in range(MIN_TRIALS - 1)]) == []
    fixed = [{"x": 1, "y": float(i)} for i in range(20)]
    assert [i.name for i in ped_anova(fixed, [float(i) for i in range(20)])] == ["y"]
    assert ped_anova([{"x": 1.0}] * 20, [float("nan")] * 20) == []  # no finite score


# ------------------------------------------------------------------ the page
def test_report_of_a_random_search_holds_every_section_and_opens_offline(tmp_path):
    folder = random_store(tmp_path / "run")
    path = report.write_report(folder)
    assert path == folder / "report.html"
    text = path.read_text()
    for key in ("history", "curves", "importance", "parallel", "param-0"):
        assert f"data-plot='{key}'" in text
    assert "data-plot='budgets'" not in text  # not a multi-fidelity search
    assert text.count("plotly.js v") == 1  # plotly.js embedded exactly once
    assert not re.search(r"<(script|link|img)[^>]+(src|href)\s*=\s*['\"]?(https?:)?//", text, re.I)  # nothing fetched
    assert "PED-ANOVA" in text and "Best trial" in text
    trials_table = text[text.index("<table id='trials'"):]
    assert trials_table.count("<tr class='status-") == 40
    assert "status-failed" in trials_table and "status-running" in trials_table  # the killed search's trial shows
    assert "ValueError: units &lt;tiny&gt; &amp; &#x27;bad&#x27;" in text  # the error, escaped
    for name in ("history", "parameters", "importance", "learning_curves"):
        assert (folder / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (folder / "plots" / "budgets.png").exists()


def test_report_of_a_hyperband_search_shows_budgets_promotions_and_pruned_trials(tmp_path):
    folder = hyperband_store(tmp_path / "run")
    run = read_run(folder)
    assert run.multi_fidelity and run.direction == "min" and run.parents() == {0, 3, 5}
    assert [t["id"] for t in run.final_results()] == [1, 2, 6, 7, 8]  # one result per configuration
    text = report.write_report(folder, tmp_path / "elsewhere" / "page.html").read_text()
    assert "data-plot='budgets'" in text
    assert '"name":"promoted"' in text and '"name":"pruned"' in text  # their own legend entries in the curves
    assert "status-pruned" in text and "status-failed" in text and "OOM &lt;GPU:0&gt;" in text
    assert (tmp_path / "elsewhere" / "plots" / "budgets.png").is_file()
    assert not (folder / "report.html").exists()


def test_report_reads_the_store_read_only_while_a_search_writes(tmp_path):
    folder = random_store(tmp_path / "run", n=8)
    writer = TrialStore(folder / "trials.db")

    def files() -> list[str]:
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("trials.db*"))]

    with writer._transaction() as db:  # the search holds the write lock meanwhile
        db.execute("UPDATE trials SET value = value WHERE id = 0")
        before = files()
        report.write_report(folder, png=False)
        assert files() == before  # the reader wrote nothing
    writer.close()
    assert "<table id='trials'" in (folder / "report.html").read_text()


def test_a_broken_environment_without_plotly_says_so_on_the_page_and_once_on_the_console(tmp_path, monkeypatch,
                                                                                          caplog):
    # plotly and matplotlib are core dependencies; if they are gone anyway, the thinner page is never silent.
    for name in ("plotly", "plotly.io", "plotly.offline", "plotly.graph_objects", "matplotlib",
                 "archsearch.report.plots", "archsearch.report.png"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    monkeypatch.setattr(report, "_warned", set())
    folder = random_store(tmp_path / "run", n=10)
    with caplog.at_level("WARNING", logger="archsearch"):
        text = report.write_report(folder).read_text()
        report.write_report(folder)  # a second report in the same process: no second warning
    assert "No plots: plotly cannot be imported" in text and "archsearch depends on it" in text
    assert "archsearch[report]" not in text  # the extra no longer brings anything
    assert "plotly.js v" not in text and "data-plot=" not in text
    assert "<table id='trials'" in text and "Hyperparameter importance" in text
    assert not (folder / "plots").exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings  # plotly once, matplotlib once
    assert "report.html has no plots" in warnings[0] and "no PNG copies" in warnings[1]


def test_predictions_picture_is_embedded(tmp_path):
    folder = random_store(tmp_path / "run", n=6)
    import cv2

    (folder / "best").mkdir()
    cv2.imwrite(str(folder / "best" / "predictions.png"), np.zeros((8, 8, 3), np.uint8))
    assert "src='data:image/png;base64," in report.write_report(folder, png=False).read_text()


def test_predictions_picture_has_a_legend_naming_each_class_colour(tmp_path):
    import cv2

    from archsearch.report.pictures import _COLOURS, save_predictions

    class Model:
        def predict(self, x, verbose=0):
            return np.stack([x[..., 0] > 0.5, x[..., 0] <= 0.5], axis=-1).astype("float32")

    class Splits:
        x_val = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype("float32")
        y_val = np.stack([x_val[..., 0] > 0.5, x_val[..., 0] <= 0.5], axis=-1).astype("float32")
        class_names = ["number", "stamp"]

    picture = cv2.imread(str(save_predictions(Model(), Splits(), tmp_path / "p.png")))
    width = picture.shape[1]
    legend = picture[24 + 2 * (width // 3):]
    assert legend.shape[0] == 26
    for colour in _COLOURS[:2].astype(np.uint8):  # a swatch of each class colour, none of the third
        assert (legend == colour).all(axis=-1).sum() >= 100
    assert (legend == _COLOURS[2].astype(np.uint8)).all(axis=-1).sum() == 0


# ------------------------------------------------------------------ the command
def test_command_line_writes_the_report_and_refuses_a_folder_without_a_store(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no trials.db" in err
    folder = random_store(tmp_path / "run", n=6)
    result = subprocess.run([sys.executable, "-m", "archsearch.report", str(folder), "--output",
                             str(tmp_path / "r.html"), "--no-png"], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"Report: {tmp_path / 'r.html'}" in result.stdout
    assert (tmp_path / "r.html").is_file() and not (tmp_path / "plots").exists()


# ------------------------------------------------------------------ in a real browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_the_plots_render_in_headless_chromium(tmp_path):
    folder = hyperband_store(tmp_path / "run")  # every kind of plot and trial, small (a browser start is ~10 s)
    page = report.write_report(folder, png=False)
    # After the page drew, click the trials table's value column twice (descending) and note the order.
    probe = ("<script>window.addEventListener('load', function () {"
             "var heads = document.querySelectorAll('#trials th');"
             "Array.prototype.forEach.call(heads, function (h) { h.click(); });"  # every column sorts
             "var th = heads[2]; th.click(); th.click();"
             "document.body.dataset.sorted = Array.prototype.map.call("
             "document.querySelectorAll('#trials tbody tr'), function (r) { return r.cells[0].textContent; }).join(',');"
             "});</script></body>")
    page.write_text(page.read_text().replace("</body>", probe))
    dom = chromium_dom(page, tmp_path / "profile")
    plots = re.findall(r'<div class="plot" data-plot="([^"]+)">(.*?)(?=<div class="plot" data-plot=|<h2>|</body>)',
                       dom, re.S)
    assert {"history", "curves", "budgets", "importance", "parallel", "param-0"} <= {key for key, _ in plots}
    for key, content in plots:
        assert "main-svg" in content, f"plot {key} did not render"
    assert re.search(r'<div id="report-errors" class="errors" hidden="">\s*</div>', dom)  # no script error
    order = [int(i) for i in re.search(r'data-sorted="([^"]*)"', dom).group(1).split(",")]
    run = read_run(folder)
    values = {t["id"]: t["value"] for t in run.trials}
    scored = [i for i in order if values[i] is not None]
    assert scored == sorted(scored, key=lambda i: -values[i]) and order[:len(scored)] == scored  # blanks last


def test_the_end_of_a_search_never_fails_because_of_the_report(tmp_path, monkeypatch, caplog):
    folder = random_store(tmp_path / "run", n=6)
    assert report.write_report_safely(folder, mode="off") is None
    assert not (folder / "report.html").exists()
    assert report.write_report_safely(folder, mode="html") == folder / "report.html"
    assert not (folder / "plots").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "trials.db").write_bytes(b"not a database" * 100)
    assert report.write_report_safely(broken) is None
    assert "could not write report.html" in caplog.text
    assert report.main([str(broken)]) == 2  # the command: one line, no traceback


@pytest.mark.parametrize("value, mode", [(True, "full"), ("true", "full"), ("html", "html"), ("HTML", "html"),
                                         (False, "off"), ("false", "off"), ("no", "off")])
def test_the_report_setting_is_read_strictly(value, mode):
    from archsearch.engine.settings import ReportSettings

    assert ReportSettings.from_config(value).mode == mode


def test_a_bad_report_setting_names_the_choices():
    from archsearch.engine.settings import ReportSettings
    from archsearch.errors import ConfigError

    with pytest.raises(ConfigError, match="report.*html"):
        ReportSettings.from_config("pdf")


def test_a_store_that_cannot_be_opened_in_place_is_read_from_a_private_copy(tmp_path, monkeypatch):
    import sqlite3

    from archsearch.report import data as report_data
    from archsearch.core.store import TrialStore

    folder = random_store(tmp_path / "run", n=6)
    real, sources = TrialStore._tables, []

    def first_fails(store):
        sources.append(store._source)
        if len(sources) == 1:  # as for a read-only copy of a killed search: a -wal file and no -shm
            raise sqlite3.OperationalError("unable to open database file")
        return real(store)

    monkeypatch.setattr(TrialStore, "_tables", first_fails)
    run = report_data.read_run(folder)
    assert len(run.trials) == 6 and run.folder == folder
    assert sources[0] == folder / "trials.db" and sources[1] != sources[0]
    assert not sources[1].parent.exists()  # the private copy is gone once read
