"""The SQLite trial store: round trips, event order, CSV export, several connections, reopening, WAL."""

from __future__ import annotations

import csv
import sqlite3
import threading

import numpy as np
import pytest

from archsearch.oracles.base import COMPLETED, FAILED, INTERRUPTED, PRUNED, RUNNING, Trial
from archsearch.core.store import CSV_COLUMNS, TrialStore


@pytest.fixture
def store(tmp_path):
    s = TrialStore(tmp_path / "run" / "trials.db")  # the parent folder is created
    yield s
    s.close()


def finished(trial: Trial, status: str = COMPLETED, value: float | None = 0.5, **metrics) -> Trial:
    trial.status = status
    trial.value = value
    trial.metrics = dict(metrics)
    return trial


def test_create_record_epoch_finish_round_trip(store):
    t = Trial(0, {"units": np.int64(64), "lr": 1e-3, "act": "relu", "bn": True}, budget=3, resume_from=None,
              initial_budget=0, info={"bracket": 1, "round": 0})
    store.create_trial(t, worker="w0")
    got = store.trial(0)
    assert got.status == RUNNING
    assert got.hparams == {"units": 64, "lr": 1e-3, "act": "relu", "bn": True}
    assert type(got.hparams["units"]) is int  # numpy scalars are stored as plain numbers
    assert (got.budget, got.info, got.value, got.metrics, got.intermediate) == (3, {"bracket": 1, "round": 0},
                                                                                  None, {}, {})

    store.record_epoch(0, 1, {"loss": 1.0, "val_loss": 0.9}, objective_value=0.9)
    store.record_epoch(0, 2, {"loss": 0.8, "val_loss": np.float32(0.7)}, objective_value=0.7)
    store.record_epoch(0, 3, {"loss": 0.7})  # no objective: intermediate unchanged
    assert store.epochs(0) == [
        {"epoch": 1, "loss": 1.0, "val_loss": 0.9},
        {"epoch": 2, "loss": 0.8, "val_loss": pytest.approx(0.7)},
        {"epoch": 3, "loss": 0.7},
    ]
    assert store.trial(0).intermediate == {1: 0.9, 2: pytest.approx(0.7)}
    assert store.rows()[0]["epochs_done"] == 3

    t.intermediate = {3: 0.65}
    store.finish_trial(finished(t, value=0.65, val_loss=0.65, loss=0.7), duration=1.5)
    got = store.trial(0)
    assert (got.status, got.value, got.metrics) == (COMPLETED, 0.65, {"val_loss": 0.65, "loss": 0.7})
    assert got.intermediate == {1: 0.9, 2: pytest.approx(0.7), 3: 0.65}  # merged, not replaced
    row = store.rows()[0]
    assert row["duration"] == 1.5 and row["worker"] == "w0"
    assert row["finished_at"] >= row["started_at"] > 0
    assert store.trial(99) is None


def test_failed_and_resumed_trials_keep_their_fields(store):
    parent = Trial(0, {"x": 1}, budget=2)
    child = Trial(1, {"x": 1}, budget=6, resume_from=0, initial_budget=2)
    store.create_trial(parent)
    store.create_trial(child)
    parent.error = "ValueError: bad shape"
    store.finish_trial(finished(parent, FAILED, None))
    got = store.trial(0)
    assert got.status == FAILED and got.error == "ValueError: bad shape" and got.value is None
    got = store.trial(1)
    assert (got.resume_from, got.initial_budget, got.budget) == (0, 2, 6)
    assert store.count() == 2 and store.count(FAILED) == 1 and store.count(RUNNING) == 1
    assert [t.id for t in store.trials(RUNNING)] == [1]
    assert [t.id for t in store.trials()] == [0, 1]


def test_events_are_in_the_order_they_happened(store):
    trials = [Trial(i, {"i": i}) for i in range(4)]
    store.create_trial(trials[0])
    store.create_trial(trials[1])
    store.finish_trial(finished(trials[1]))
    store.create_trial(trials[2])
    store.finish_trial(finished(trials[0], PRUNED, 0.3))
    store.create_trial(trials[3])
    store.finish_trial(finished(trials[3], INTERRUPTED, None))  # not a result: no tell event
    events = [(kind, t.id) for kind, t in store.events()]
    assert events == [("ask", 0), ("ask", 1), ("tell", 1), ("ask", 2), ("tell", 0), ("ask", 3)]
    kinds = {(kind, t.id): t for kind, t in store.events()}
    assert kinds[("tell", 0)].status == PRUNED and kinds[("tell", 0)].value == 0.3
    assert store.trial(3).status == INTERRUPTED


def test_export_csv_columns(store, tmp_path):
    a = Trial(0, {"units": 32, "act": "relu"}, budget=4)
    b = Trial(1, {"units": 64, "act": "tanh", "units_2": 16})
    c = Trial(2, {"units": 16, "act": "relu"})
    for t in (a, b, c):
        store.create_trial(t)
    store.finish_trial(finished(a, value=0.8, val_accuracy=0.8, loss=0.4), duration=2.0)
    store.finish_trial(finished(b, value=0.7, val_accuracy=0.7, loss=0.5, val_f1=0.6))
    c.error = "OOM"
    store.finish_trial(finished(c, FAILED, None))
    path = store.export_csv(tmp_path / "trials.csv")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    assert header == [*CSV_COLUMNS, "units", "act", "units_2", "val_accuracy", "loss", "val_f1"]
    assert list(CSV_COLUMNS[:3]) == ["id", "status", "value"]
    records = [dict(zip(header, r)) for r in rows[1:]]
    assert len(records) == 3
    assert records[0]["status"] == "completed" and float(records[0]["value"]) == 0.8
    assert records[0]["budget"] == "4" and float(records[0]["duration"]) == 2.0
    assert records[0]["units_2"] == "" and records[1]["units_2"] == "16"
    assert records[1]["val_f1"] == "0.6" and records[0]["val_f1"] == ""
    assert records[2]["status"] == "failed" and records[2]["error"] == "OOM" and records[2]["value"] == ""


def test_two_stores_on_one_file_interleave_writes(tmp_path):
    path = tmp_path / "trials.db"
    one, two = TrialStore(path), TrialStore(path)
    one.create_trial(Trial(0, {"x": 0}))
    two.create_trial(Trial(1, {"x": 1}))
    assert [t.id for t in one.trials()] == [0, 1] == [t.id for t in two.trials()]
    two.record_epoch(0, 1, {"loss": 1.0}, objective_value=1.0)
    one.finish_trial(finished(Trial(1, {"x": 1}), value=0.2, loss=0.2))
    two.finish_trial(finished(Trial(0, {"x": 0}), value=0.4, loss=0.4))
    one.create_trial(Trial(2, {"x": 2}))
    expected = [("ask", 0), ("ask", 1), ("tell", 1), ("tell", 0), ("ask", 2)]
    assert [(k, t.id) for k, t in one.events()] == expected == [(k, t.id) for k, t in two.events()]
    assert two.trial(0).intermediate == {1: 1.0}
    assert one.epochs(0) == [{"epoch": 1, "loss": 1.0}]
    one.close()
    two.close()


def test_readable_while_another_connection_holds_the_write_lock(tmp_path):
    path = tmp_path / "trials.db"
    writer = TrialStore(path)
    writer.create_trial(Trial(0, {"x": 0}))
    reader = TrialStore(path)
    raw = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    raw.execute("BEGIN IMMEDIATE")  # holds the write lock, with an uncommitted change
    raw.execute("UPDATE trials SET status = 'completed', value = 1.0 WHERE id = 0")
    assert reader.trial(0).status == RUNNING  # readers see the last committed state, without waiting
    assert reader.count() == 1
    raw.execute("COMMIT")
    assert reader.trial(0).status == COMPLETED and reader.trial(0).value == 1.0
    raw.close()
    reader.close()
    writer.close()


def test_concurrent_writers_from_threads(tmp_path):
    path = tmp_path / "trials.db"
    TrialStore(path).close()

    def work(offset: int) -> None:
        s = TrialStore(path)
        for i in range(offset, offset + 15):
            t = Trial(i, {"i": i})
            s.create_trial(t)
            s.finish_trial(finished(t, value=float(i)))
        s.close()

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    s = TrialStore(path)
    assert s.count(COMPLETED) == 30
    seqs = [(r["ask_seq"], r["tell_seq"]) for r in s.rows()]
    flat = [x for pair in seqs for x in pair]
    assert len(set(flat)) == 60 and sorted(flat) == list(range(1, 61))  # one global sequence
    assert all(a < t for a, t in seqs)


def test_reopening_keeps_content_and_continues_the_sequence(tmp_path):
    path = tmp_path / "trials.db"
    first = TrialStore(path)
    t = Trial(0, {"lr": 0.01})
    first.create_trial(t)
    first.record_epoch(0, 1, {"loss": 0.5}, objective_value=0.5)
    first.finish_trial(finished(t, value=0.5, loss=0.5))
    first.set_meta("fingerprint", {"space": {"lr": [0.01, 0.1]}, "seed": 3})
    first.close()

    again = TrialStore(path)
    got = again.trial(0)
    assert (got.status, got.value, got.hparams, got.intermediate) == (COMPLETED, 0.5, {"lr": 0.01}, {1: 0.5})
    assert again.epochs(0) == [{"epoch": 1, "loss": 0.5}]
    assert again.get_meta("fingerprint") == {"space": {"lr": [0.01, 0.1]}, "seed": 3}
    assert again.get_meta("absent", "dflt") == "dflt"
    again.create_trial(Trial(1, {"lr": 0.1}))
    assert [(k, t.id) for k, t in again.events()] == [("ask", 0), ("tell", 0), ("ask", 1)]
    again.close()


def test_wal_mode_is_on(tmp_path):
    path = tmp_path / "trials.db"
    s = TrialStore(path)
    s.create_trial(Trial(0, {}))
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"  # persistent in the file
    raw.close()
    s.close()


def test_discard_trial_removes_its_rows_and_leaves_the_rest(store):
    keep, drop = Trial(0, {"x": 0}), Trial(1, {"x": 1})
    store.create_trial(keep)
    store.create_trial(drop)
    store.record_epoch(1, 1, {"loss": 1.0})
    store.record_epoch(0, 1, {"loss": 2.0})
    store.discard_trial(1)
    assert [t.id for t in store.trials()] == [0]
    assert store.epochs(1) == [] and store.epochs(0) == [{"epoch": 1, "loss": 2.0}]
    assert [(k, t.id) for k, t in store.events()] == [("ask", 0)]
    assert store.problems() == []


def test_problems_is_empty_for_a_healthy_store_and_names_broken_invariants(store):
    a, b, c = Trial(0, {"x": 0}), Trial(1, {"x": 1}), Trial(2, {"x": 2})
    for t in (a, b, c):
        store.create_trial(t)
    store.record_epoch(0, 1, {"loss": 1.0})
    store.finish_trial(finished(a))
    store.finish_trial(finished(b, INTERRUPTED, None))
    assert store.problems() == []

    raw = sqlite3.connect(store.path, isolation_level=None)
    raw.execute("UPDATE trials SET status = 'completed' WHERE id = 2")  # completed without a tell
    raw.execute("UPDATE trials SET ask_seq = 1 WHERE id = 1")  # a sequence number used twice
    raw.execute("INSERT INTO epochs VALUES (7, 1, '{}', 0.0)")  # an epoch of no trial
    raw.close()
    found = store.problems()
    assert "trial 2 is completed but its tell sequence number is None" in found
    assert "an ask/tell sequence number is used twice" in found
    assert "1 epoch rows belong to no trial" in found


def _process_writer(path: str, offset: int, count: int, start) -> None:
    """One of several processes writing the same store, as parallel workers will."""
    start.wait()  # all processes open and write at the same moment, the file possibly not yet created
    s = TrialStore(path)
    for i in range(offset, offset + count):
        t = Trial(i, {"i": i})
        s.create_trial(t, worker=f"w{offset}")
        for epoch in (1, 2, 3):
            s.record_epoch(i, epoch, {"loss": 1.0 / epoch}, objective_value=1.0 / epoch)
        s.finish_trial(finished(t, value=float(i), loss=0.3), duration=0.01)
    s.close()


def test_several_processes_write_one_store_at_once(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold TensorFlow threads
    path = tmp_path / "shared" / "trials.db"
    start = ctx.Event()
    workers = [ctx.Process(target=_process_writer, args=(str(path), k * 1000, 25, start)) for k in range(3)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(timeout=600)
    assert [w.exitcode for w in workers] == [0, 0, 0]

    s = TrialStore(path)
    rows = s.rows()
    assert len(rows) == 75 and all(r["status"] == COMPLETED for r in rows)
    assert {r["worker"] for r in rows} == {"w0", "w1000", "w2000"}
    assert all(r["epochs_done"] == 3 and r["intermediate"] == {"1": 1.0, "2": 0.5, "3": pytest.approx(1 / 3)}
               for r in rows)
    count = sqlite3.connect(path).execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    assert count == 225
    seqs = sorted(x for r in rows for x in (r["ask_seq"], r["tell_seq"]))
    assert seqs == list(range(1, 151))  # one global order across the processes
    assert s.problems() == []
    s.close()


def test_many_stores_opening_one_new_file_at_once_all_open(tmp_path):
    """Tuners or oracles started together on one project folder: SQLite refuses a simultaneous switch
    to write-ahead logging at once ("database is locked"), so opening must wait it out, not fail."""
    import threading

    errors = []
    for round_ in range(20):
        path = tmp_path / f"r{round_}" / "trials.db"
        start = threading.Barrier(8)

        def open_store():
            start.wait()
            try:
                TrialStore(path)
            except Exception as exc:  # noqa: BLE001 - the test reports every failure
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_store) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_reopen_failed_forgets_the_failed_run_and_leaves_other_kinds(store):
    kinds = {0: "lost", 1: "infeasible", 2: "oom"}
    for trial_id, kind in kinds.items():
        trial = Trial(trial_id, {"x": trial_id}, budget=4, initial_budget=1 if trial_id == 2 else 0)
        store.create_trial(trial)
        for epoch in (1, 2, 3):
            store.record_epoch(trial_id, epoch, {"loss": 1.0 / epoch}, 0.1 * epoch)
        trial.error, trial.failure_kind = f"{kind} happened", kind
        store.finish_trial(finished(trial, FAILED, None), epochs_done=3)
    assert store.reopen_failed(("lost", "oom")) == [0, 2]
    lost, infeasible, oom = (store.trial(i) for i in range(3))
    assert (lost.status, lost.error, lost.failure_kind) == (INTERRUPTED, None, None)
    assert infeasible.status == FAILED and infeasible.failure_kind == "infeasible"
    assert store.epochs(0) == [] and [e["epoch"] for e in store.epochs(2)] == [1]  # kept: before its budget began
    assert [r["epochs_done"] for r in store.rows()] == [0, 3, 1]
    assert [kind for kind, t in store.events()] == ["ask", "ask", "tell", "ask"]  # asked, never told: to continue
    assert store.problems() == []
    assert store.reopen_failed(()) == []


# ------------------------------------------------------------------ read-only readers (report, sweep, preflight, resume)
def _written_store(path):
    """A store with two trials (one finished, one running), epochs and meta, closed."""
    writer = TrialStore(path)
    writer.set_meta("config", {"objective": "val_accuracy"})
    for trial_id in (0, 1):
        writer.create_trial(Trial(trial_id, {"x": trial_id}))
        writer.record_epoch(trial_id, 1, {"loss": 1.0 + trial_id}, 0.5)
    writer.finish_trial(finished(writer.trial(0), value=0.75, val_accuracy=0.75), epochs_done=1)
    writer.close()
    return path


def test_read_only_store_names_a_missing_file_and_creates_nothing(tmp_path):
    from archsearch.errors import ArchsearchError
    from archsearch.core.store import STORE_FILE, StoreNotFoundError

    for location in (tmp_path / "run", tmp_path / "run" / STORE_FILE, tmp_path):
        with pytest.raises(StoreNotFoundError) as caught:
            TrialStore.open_read_only(location)
        assert isinstance(caught.value, (FileNotFoundError, ArchsearchError))
        assert str(caught.value) == f"{tmp_path / 'run' if location != tmp_path else tmp_path} holds no search " \
                                    f"(no {STORE_FILE})"
    assert list(tmp_path.iterdir()) == []  # no folder, no file, no journal


@pytest.mark.parametrize("content, blank", [(b"not a database" * 100, False), (b"", True), ("other table", True)])
def test_read_only_store_names_a_file_that_is_not_a_store_and_leaves_it(tmp_path, content, blank):
    from archsearch.errors import ArchsearchError
    from archsearch.core.store import UnreadableStoreError

    path = tmp_path / "trials.db"
    if content == "other table":  # a SQLite file, not a store (or one a kill left before its tables)
        raw = sqlite3.connect(path)
        raw.execute("CREATE TABLE other (x)")
        raw.commit()
        raw.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(UnreadableStoreError) as caught:
        TrialStore.open_read_only(tmp_path)
    assert isinstance(caught.value, ArchsearchError) and isinstance(caught.value, sqlite3.DatabaseError)
    assert str(path) in str(caught.value) and caught.value.blank is blank
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["trials.db"]


def test_read_only_store_reads_while_a_search_holds_the_write_lock(tmp_path):
    path = _written_store(tmp_path / "trials.db")
    writer = TrialStore(path)
    raw = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    raw.execute("BEGIN IMMEDIATE")  # a search in the middle of a write
    raw.execute("UPDATE trials SET status = 'completed', value = 1.0 WHERE id = 1")
    with TrialStore.open_read_only(tmp_path) as reader:
        assert reader.read_only and reader.count() == 2 and reader.count(RUNNING) == 1
        rows = reader.rows()
        assert [(r["id"], r["status"], r["value"]) for r in rows] == [(0, COMPLETED, 0.75), (1, RUNNING, None)]
        assert rows[0]["metrics"] == {"val_accuracy": 0.75} and rows[0]["failure_kind"] is None
        assert reader.meta()["config"] == {"objective": "val_accuracy"} and reader.get_meta("config")
        assert reader.epochs_by_trial() == {0: [{"epoch": 1, "loss": 1.0}], 1: [{"epoch": 1, "loss": 2.0}]}
        records = reader.epoch_records()
        assert [(r["trial_id"], r["epoch"], r["metrics"]) for r in records] == [(0, 1, {"loss": 1.0}),
                                                                                 (1, 1, {"loss": 2.0})]
        assert all(isinstance(r["recorded_at"], float) for r in records)
        raw.execute("COMMIT")
        assert reader.trial(1).status == COMPLETED  # sees the search's writes as they commit
    raw.close()
    writer.close()


def test_read_only_store_refuses_writes_and_never_migrates(tmp_path):
    from archsearch.core.store import ReadOnlyStoreError

    path = _written_store(tmp_path / "trials.db")
    raw = sqlite3.connect(path)  # as a store of schema version 1 left it: no failure_kind column
    raw.execute("ALTER TABLE trials DROP COLUMN failure_kind")
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with TrialStore.open_read_only(path) as reader:
        for write in (lambda: reader.set_meta("k", 1), lambda: reader.create_trial(Trial(5, {})),
                      lambda: reader.discard_trial(0), lambda: reader.reopen_failed(("lost",))):
            with pytest.raises(ReadOnlyStoreError, match="read-only"):
                write()
        assert [r["failure_kind"] for r in reader.rows()] == [None, None]  # read as version 1 has it
        assert reader.meta()["schema_version"] == 1 and "k" not in reader.meta()
    raw = sqlite3.connect(path)
    assert "failure_kind" not in {row[1] for row in raw.execute("PRAGMA table_info(trials)")}
    raw.close()


@pytest.mark.parametrize("store_state, removed", [("empty", True), ("blank", True), ("a trial", False),
                                                  ("unreadable", False)])
def test_an_unused_run_folder_is_removed_only_when_its_store_holds_nothing(tmp_path, store_state, removed):
    from archsearch.cli.preflight import remove_unused_run_folder

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".archsearch.lock").write_text("")
    path = folder / "trials.db"
    if store_state == "empty":
        TrialStore(path).close()
    elif store_state == "blank":  # a kill while the store was being created
        path.write_bytes(b"")
    elif store_state == "a trial":
        _written_store(path)
    else:
        path.write_bytes(b"not a database" * 100)
    assert remove_unused_run_folder(folder) is removed
    assert folder.exists() is not removed


# ------------------------------------------------------------------ one owner of trials.db
def _code_strings(tree):
    """String constants of a module that are not docstrings (messages, paths, SQL)."""
    import ast

    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_only_the_store_module_opens_trials_db_or_writes_sql():
    """trials.db has one owner: archsearch/core/store.py names the file and holds every SQL statement.

    Elsewhere in the package: no ``sqlite3.connect``, no ``.execute*()`` and no "trials.db" literal
    outside docstrings (messages take the name from store.STORE_FILE), so the report, preflight,
    the sweep table and resume read through TrialStore's read-only API.
    """
    import ast
    from pathlib import Path

    import archsearch

    package = Path(archsearch.__file__).parent
    owner = package / "core" / "store.py"
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == owner:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(package.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                    node.func.attr in ("execute", "executemany", "executescript")
                    or (node.func.attr == "connect" and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "sqlite3")):
                found.append(f"{where}:{node.lineno}: .{node.func.attr}(...)")
        found += [f"{where}:{n.lineno}: the literal {n.value!r}" for n in _code_strings(tree) if "trials.db" in n.value]
    assert found == [], "only archsearch/core/store.py may open trials.db or write SQL; use TrialStore " \
                        "(open_read_only to read) and store.STORE_FILE:\n" + "\n".join(found)
