"""The trial store: one SQLite file per search, the single source of truth.

One piece on purpose (its length too): it is the only code that opens ``trials.db`` or writes SQL, so the
schema, its migration, the writers and the read-only readers change together, in one file.

Every trial's hyperparameters, status, per-epoch metrics, result and timing
are written as they happen, each change in its own transaction, so a search
killed at any moment leaves a readable, consistent file.  WAL mode and a busy
timeout let several processes (future parallel workers) write one store.
A global sequence number orders every ask and tell, so an oracle's state can
be rebuilt exactly by replaying them (:meth:`TrialStore.events`).

This module is the only owner of ``trials.db``: nothing else in the package opens
the file or writes SQL.  Readers that must not change a search -- the report,
the sweep table, preflight, resume's checks -- use :meth:`TrialStore.open_read_only`,
which never creates, migrates or locks the file, works while a search writes it,
and names the file when it is missing or is not a store.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STORE_FILE = "trials.db"  # a run folder's store: the one place that names it
# The store and the journal files SQLite keeps beside it: what removing a store removes.
STORE_FILES = (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", f"{STORE_FILE}-journal")

from archsearch.core.atomic import atomic_path
from archsearch.core.disk import as_disk_full, is_disk_full
from archsearch.errors import ArchsearchError
from archsearch.core.trial import DONE, FAILED, INTERRUPTED, RETRIED_ON_RESUME, Trial

SCHEMA_VERSION = 2  # 2: trials.failure_kind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    hparams TEXT NOT NULL,
    budget INTEGER,
    initial_budget INTEGER NOT NULL DEFAULT 0,
    parent INTEGER,
    info TEXT NOT NULL DEFAULT '{}',
    value REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    intermediate TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    duration REAL,
    ask_seq INTEGER,
    tell_seq INTEGER,
    worker TEXT,
    failure_kind TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
"""

CSV_COLUMNS = ("id", "status", "value", "budget", "initial_budget", "parent", "epochs_done", "duration", "failure_kind",
               "error")


BUSY_TIMEOUT_S = 60.0  # how long a connection waits for another one's lock
_TABLES = ("meta", "trials", "epochs")  # what makes a SQLite file a store (every schema version has them)


class StoreNotFoundError(ArchsearchError, FileNotFoundError):
    """A run folder holds no store; a FileNotFoundError, so code that checks for a missing file still catches it."""

    def __init__(self, path: Path) -> None:
        super().__init__(2, f"{path.parent} holds no search (no {path.name})", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


class UnreadableStoreError(ArchsearchError, sqlite3.DatabaseError):
    """A file that cannot be read as a store: not SQLite, damaged, or without the store's tables.

    A ``sqlite3.DatabaseError`` too, so callers that caught SQLite's own error still catch it.
    ``blank``: the file is a database without the ``trials`` table, as a search killed (or
    stopped by a full disk) while creating its store leaves it -- a store with nothing in it.
    """

    def __init__(self, path: Path, reason: str, blank: bool = False) -> None:
        super().__init__(f"cannot read {path} as a search's store ({reason})")
        self.path, self.reason, self.blank = path, reason, blank


class ReadOnlyStoreError(RuntimeError):
    """A write to a store opened with :meth:`TrialStore.open_read_only` (a programming error)."""


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to write-ahead logging, waiting out other connections that open the same new file.

    SQLite answers "database is locked" at once, without its busy handler, when two connections
    change a fresh file's journal mode together (several tuners or oracles opening one project
    folder at the same moment); so retry, as a busy wait would.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _write_meta(db: sqlite3.Connection, values: Mapping[str, Any]) -> None:
    """Meta entries, as JSON, inside the caller's transaction."""
    for key, value in values.items():
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))


class TrialStore:
    """SQLite-backed record of a search (``<run folder>/trials.db``).

    ``TrialStore(path)`` opens the file for a search: it creates it, migrates an older schema and
    writes.  ``read_only=True`` (or :meth:`open_read_only`) only reads; see :meth:`open_read_only`.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._source = self.path  # the file connections open: a private copy where the original cannot be
        self._scratch: tempfile.TemporaryDirectory | None = None
        if read_only:
            self._check_readable()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn().executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise as_disk_full(exc, self.path, self.path.parent) from exc
            raise
        with self._transaction() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(trials)")}
            if "failure_kind" not in columns:  # a store written by schema version 1
                db.execute("ALTER TABLE trials ADD COLUMN failure_kind TEXT")
            db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('seq', '0')")
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @classmethod
    def open_read_only(cls, location: str | Path) -> TrialStore:
        """A store to read without changing it: ``location`` is a run folder or its ``trials.db``.

        SQLite's ``mode=ro``: the file is never created, migrated or locked for writing, so a
        running search never waits for the reader, and a killed search's running and interrupted
        trials read as they were left.  Raises StoreNotFoundError when there is no file and
        UnreadableStoreError when it is not a store; every write raises ReadOnlyStoreError.
        """
        path = Path(location)
        return cls(path if path.name == STORE_FILE or path.is_file() else path / STORE_FILE, read_only=True)

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ connection
    def _check_readable(self) -> None:
        """Fail at once, naming the file, when it is missing or not a store (read-only opening)."""
        if not self.path.is_file():
            raise StoreNotFoundError(self.path)
        try:
            tables = self._tables()
        except sqlite3.OperationalError:
            # A read-only copy of a killed search (a -wal file left, no -shm, folder not writable)
            # cannot be opened read-only in place: read a private copy of the file and its journal.
            self.close()
            self._scratch = tempfile.TemporaryDirectory(prefix="archsearch-store-")
            self._source = Path(self._scratch.name) / STORE_FILE
            for suffix in ("", "-wal"):
                if Path(f"{self.path}{suffix}").exists():
                    shutil.copyfile(f"{self.path}{suffix}", f"{self._source}{suffix}")
            try:
                tables = self._tables()
            except sqlite3.DatabaseError as exc:
                self.close()
                raise UnreadableStoreError(self.path, str(exc)) from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise UnreadableStoreError(self.path, str(exc)) from None
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            self.close()
            raise UnreadableStoreError(self.path, f"no {', '.join(missing)} table", blank="trials" in missing)

    def _tables(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read's rows as dicts by column; on a read-only store SQLite's errors (a damaged page) name the file."""
        try:
            cursor = self._conn().execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        except sqlite3.DatabaseError as exc:
            if self.read_only and not isinstance(exc, UnreadableStoreError):
                raise UnreadableStoreError(self.path, str(exc)) from None
            raise

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None and self.read_only:
            conn = sqlite3.connect(f"{self._source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
        elif conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue instead of failing.

        A full disk rolls the transaction back (the file keeps its last consistent state) and is
        raised as DiskFullError.
        """
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.path} was opened read-only; open TrialStore(path) to write")
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise as_disk_full(exc, self.path, self.path.parent) from exc
            raise

    @staticmethod
    def _next_seq(db: sqlite3.Connection) -> int:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")
        return int(db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

    def close(self) -> None:
        """Close this thread's connection (and drop a read-only store's private copy)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    # ------------------------------------------------------------ meta
    def set_meta(self, key: str, value: Any) -> None:
        self.set_meta_many({key: value})

    def set_meta_many(self, values: Mapping[str, Any]) -> None:
        """Several meta entries in one transaction: a kill leaves all of them or none."""
        with self._transaction() as db:
            _write_meta(db, values)

    def get_meta(self, key: str, default: Any = None) -> Any:
        """One meta entry (the stored config, the fingerprint, an oracle's state...), or ``default``."""
        found = self._select("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(found[0]["value"]) if found else default

    def meta(self) -> dict[str, Any]:
        """Every meta entry, decoded (a value that is not JSON is kept as its text): what a report reads whole."""
        return {r["key"]: _loads_or_text(r["value"]) for r in self._select("SELECT key, value FROM meta")}

    # ------------------------------------------------------------ writes
    def create_trial(self, trial: Trial, worker: str | None = None) -> None:
        """Record a trial the oracle just handed out (status running)."""
        with self._transaction() as db:
            seq = self._next_seq(db)
            db.execute(
                "INSERT OR REPLACE INTO trials(id, status, hparams, budget, initial_budget, parent, info,"
                " started_at, ask_seq, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (trial.id, trial.status, _dumps(trial.hparams), trial.budget, trial.initial_budget,
                 trial.resume_from, _dumps(trial.info), time.time(), seq, worker),
            )

    def set_worker(self, trial_id: int, worker: str) -> None:
        """Which worker trains the trial (and when it started there)."""
        with self._transaction() as db:
            db.execute("UPDATE trials SET worker = ?, started_at = ? WHERE id = ?", (worker, time.time(), trial_id))

    def update_hparams(self, trial_id: int, hparams: Mapping[str, Any]) -> None:
        """A define-by-run builder may add parameters while building; keep the store complete."""
        with self._transaction() as db:
            db.execute("UPDATE trials SET hparams = ? WHERE id = ?", (_dumps(hparams), trial_id))

    def record_epoch(self, trial_id: int, epoch: int, metrics: Mapping[str, float],
                     objective_value: float | None = None) -> None:
        """One epoch's metrics (1-based epoch), written as soon as the epoch ends."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs(trial_id, epoch, metrics, recorded_at) VALUES (?, ?, ?, ?)",
                (trial_id, int(epoch), _dumps(metrics), time.time()),
            )
            db.execute("UPDATE trials SET epochs_done = MAX(epochs_done, ?) WHERE id = ?", (int(epoch), trial_id))
            if objective_value is not None:
                row = db.execute("SELECT intermediate FROM trials WHERE id = ?", (trial_id,)).fetchone()
                if row is not None:
                    intermediate = json.loads(row[0])
                    intermediate[str(int(epoch))] = float(objective_value)
                    db.execute("UPDATE trials SET intermediate = ? WHERE id = ?", (_dumps(intermediate), trial_id))

    def finish_trial(self, trial: Trial, duration: float | None = None, epochs_done: int | None = None,
                     meta: Mapping[str, Any] | None = None) -> None:
        """Record a trial's outcome (completed, failed, pruned or interrupted).

        ``epochs_done`` is the epoch training reached, which may be one past the last recorded
        epoch when a kill fell between a checkpoint and its store record.  ``meta`` entries (an
        oracle's saved state) are written in the same transaction: a kill leaves both or neither.
        """
        with self._transaction() as db:
            _write_meta(db, meta or {})
            seq = self._next_seq(db) if trial.status != INTERRUPTED else None
            db.execute(
                "UPDATE trials SET status = ?, value = ?, metrics = ?, error = ?, finished_at = ?, duration = ?,"
                " tell_seq = ?, hparams = ?, intermediate = ?, failure_kind = ?,"
                " epochs_done = MAX(epochs_done, ?) WHERE id = ?",
                (trial.status, trial.value, _dumps(trial.metrics), trial.error, time.time(), duration, seq,
                 _dumps(trial.hparams), _intermediate_json(db, trial), trial.failure_kind, int(epochs_done or 0),
                 trial.id),
            )

    def reopen_retryable(self) -> list[int]:
        """Failed trials whose failure said nothing about their configuration (a full disk) run again.

        They become interrupted: never told, so a resumed search continues them from their
        last checkpoint like any interrupted trial.  Returns their ids.
        """
        marks = ",".join("?" for _ in RETRIED_ON_RESUME)
        with self._transaction() as db:
            ids = [r[0] for r in db.execute(
                f"SELECT id FROM trials WHERE status != ? AND failure_kind IN ({marks})",
                (INTERRUPTED, *RETRIED_ON_RESUME))]
            for trial_id in ids:
                db.execute("UPDATE trials SET status = ?, tell_seq = NULL, value = NULL WHERE id = ?",
                           (INTERRUPTED, trial_id))
        return ids

    def reopen_failed(self, kinds: Sequence[str]) -> list[int]:
        """``retry_failed``: failed trials of these failure kinds run again under their own ids.

        Like :meth:`reopen_retryable` they become interrupted and never told, so the oracle's
        replay finds them asked and running (as after a kill) and the search continues them
        first; max_trials counts them once, as before.  Their failed run is forgotten (its
        epochs past the trial's starting budget, its error), since it trains again from the
        start of its budget.  Returns their ids.
        """
        if not kinds:
            return []
        marks = ",".join("?" for _ in kinds)
        with self._transaction() as db:
            found = db.execute(f"SELECT id, initial_budget, intermediate FROM trials WHERE status = ? AND "
                               f"failure_kind IN ({marks}) ORDER BY id", (FAILED, *kinds)).fetchall()
            for trial_id, start, intermediate in found:
                start = int(start or 0)
                kept = {k: v for k, v in json.loads(intermediate or "{}").items() if int(k) <= start}
                db.execute("DELETE FROM epochs WHERE trial_id = ? AND epoch > ?", (trial_id, start))
                db.execute("UPDATE trials SET status = ?, tell_seq = NULL, value = NULL, error = NULL, "
                           "failure_kind = NULL, epochs_done = ?, intermediate = ? WHERE id = ?",
                           (INTERRUPTED, start, _dumps(kept), trial_id))
        return [row[0] for row in found]

    def discard_trial(self, trial_id: int) -> None:
        """Forget a trial that never measured anything (a configuration error stopped it at set-up)."""
        with self._transaction() as db:
            db.execute("DELETE FROM epochs WHERE trial_id = ?", (trial_id,))
            db.execute("DELETE FROM trials WHERE id = ?", (trial_id,))

    # ------------------------------------------------------------ reads
    def trials(self, status: str | None = None) -> list[Trial]:
        """Every trial (or those of one status), in id order."""
        sql = "SELECT * FROM trials" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [self._row_to_trial(r) for r in self._select(sql, (status,) if status else ())]

    def trial(self, trial_id: int) -> Trial | None:
        found = self._select("SELECT * FROM trials WHERE id = ?", (trial_id,))
        return self._row_to_trial(found[0]) if found else None

    def rows(self) -> list[dict[str, Any]]:
        """Every trial as a plain dict with all stored columns, JSON decoded (for reports, the sweep table, tests).

        ``failure_kind`` is there for a store of schema version 1 too (None), which a read-only
        store reads without migrating it.
        """
        out = []
        for record in self._select("SELECT * FROM trials ORDER BY id"):
            for key in ("hparams", "info", "metrics", "intermediate"):
                record[key] = json.loads(record[key])
            record.setdefault("failure_kind", None)
            out.append(record)
        return out

    def epochs(self, trial_id: int) -> list[dict[str, Any]]:
        """One trial's epochs: ``{"epoch": n, **metrics}``, in order."""
        return [{"epoch": r["epoch"], **json.loads(r["metrics"])}
                for r in self._select("SELECT epoch, metrics FROM epochs WHERE trial_id = ? ORDER BY epoch", (trial_id,))]

    def epoch_records(self) -> list[dict[str, Any]]:
        """Every epoch of every trial: ``trial_id``, ``epoch``, ``metrics`` (a dict) and ``recorded_at`` (epoch
        seconds), by trial and epoch; for ``epochs.csv`` and timing studies."""
        records = self._select("SELECT trial_id, epoch, metrics, recorded_at FROM epochs ORDER BY trial_id, epoch")
        for record in records:
            record["metrics"] = json.loads(record["metrics"])
        return records

    def epochs_by_trial(self) -> dict[int, list[dict[str, Any]]]:
        """Every trial's epochs (as :meth:`epochs` gives them) in one read, keyed by trial id: what a report draws."""
        out: dict[int, list[dict[str, Any]]] = {}
        for record in self.epoch_records():
            out.setdefault(int(record["trial_id"]), []).append({"epoch": int(record["epoch"]), **record["metrics"]})
        return out

    def events(self) -> list[tuple[str, Trial]]:
        """Every ask and tell in the order they happened, for ``Oracle.restore``."""
        events: list[tuple[int, str, Trial]] = []
        for record in self._select("SELECT * FROM trials ORDER BY id"):
            trial = self._row_to_trial(record)
            if record["ask_seq"] is not None:
                events.append((record["ask_seq"], "ask", trial))
            if record["tell_seq"] is not None:
                events.append((record["tell_seq"], "tell", trial))
        events.sort(key=lambda e: e[0])
        return [(kind, trial) for _, kind, trial in events]

    def problems(self) -> list[str]:
        """What is wrong with the file, if anything: SQLite's own check plus the store's invariants.

        Used after a crash (and by the kill tests): an empty list means the store can be resumed.
        """
        db = self._conn()
        found = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"]
        seqs = [s for row in db.execute("SELECT ask_seq, tell_seq FROM trials") for s in row if s is not None]
        if len(seqs) != len(set(seqs)):
            found.append("an ask/tell sequence number is used twice")
        if seqs and max(seqs) > int(self.get_meta("seq", 0)):
            found.append("the sequence counter is behind the trials")
        for trial_id, status, ask_seq, tell_seq in db.execute("SELECT id, status, ask_seq, tell_seq FROM trials"):
            if ask_seq is None:
                found.append(f"trial {trial_id} has no ask sequence number")
            if (tell_seq is not None) != (status in DONE):
                found.append(f"trial {trial_id} is {status} but its tell sequence number is {tell_seq}")
            if tell_seq is not None and ask_seq is not None and tell_seq < ask_seq:
                found.append(f"trial {trial_id} was told before it was asked")
        orphans = db.execute("SELECT COUNT(*) FROM epochs WHERE trial_id NOT IN (SELECT id FROM trials)").fetchone()[0]
        if orphans:
            found.append(f"{orphans} epoch rows belong to no trial")
        return found

    def count(self, status: str | None = None) -> int:
        """How many trials the store holds (of one status)."""
        sql = "SELECT COUNT(*) AS n FROM trials" + (" WHERE status = ?" if status else "")
        return int(self._select(sql, (status,) if status else ())[0]["n"])

    def export_csv(self, path: str | Path, objective: Any = None) -> Path:
        """``trials.csv``: one row per trial, hyperparameters and final metrics as columns.

        For a Pareto search's ``objective`` (every objective is a metric column already) two more columns:
        ``rank``, the trial's non-dominated rank among the completed trials with every objective trained to the
        full budget (0: the front; empty for the others, a lower rung's trials too), and ``on_front`` (true/false).
        """
        rows = self.rows()
        hp_names = _ordered_union(r["hparams"] for r in rows)
        metric_names = _ordered_union(r["metrics"] for r in rows)
        ranks = _pareto_ranks(self.trials(), objective) if objective is not None and objective.is_pareto else None
        extra = ["rank", "on_front"] if ranks is not None else []
        path = Path(path)
        with atomic_path(path, expected_size=4096 * (1 + len(rows)), run_folder=self.path.parent) as tmp, \
                tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*CSV_COLUMNS, *extra, *hp_names, *metric_names])
            for r in rows:
                rank = ranks.get(r["id"]) if ranks is not None else None
                writer.writerow(
                    [r[c] for c in CSV_COLUMNS]
                    + ([("" if rank is None else rank), "true" if rank == 0 else "false"] if extra else [])
                    + [r["hparams"].get(n, "") for n in hp_names]
                    + [r["metrics"].get(n, "") for n in metric_names]
                )
        return path

    def export_epochs_csv(self, path: str | Path) -> Path:
        """``epochs.csv``: one row per trial and epoch (1-based), every metric a column, for pandas users."""
        rows = self.epoch_records()
        names = _ordered_union(r["metrics"] for r in rows)
        path = Path(path)
        with atomic_path(path, expected_size=256 * (1 + len(rows)) * (1 + len(names)), run_folder=self.path.parent) \
                as tmp, tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["trial_id", "epoch", *names, "recorded_at"])
            for r in rows:
                writer.writerow([r["trial_id"], r["epoch"], *(r["metrics"].get(n, "") for n in names), r["recorded_at"]])
        return path

    @staticmethod
    def _row_to_trial(r: Mapping[str, Any]) -> Trial:
        return Trial(
            id=r["id"],
            hparams=json.loads(r["hparams"]),
            budget=r["budget"],
            resume_from=r["parent"],
            initial_budget=r["initial_budget"] or 0,
            info=json.loads(r["info"]),
            status=r["status"],
            value=r["value"],
            metrics=json.loads(r["metrics"]),
            intermediate={int(k): v for k, v in json.loads(r["intermediate"]).items()},
            error=r["error"],
            failure_kind=r.get("failure_kind"),
        )


def _intermediate_json(db: sqlite3.Connection, trial: Trial) -> str:
    """The trial's per-epoch objective values, merged with those already recorded epoch by epoch."""
    row = db.execute("SELECT intermediate FROM trials WHERE id = ?", (trial.id,)).fetchone()
    merged = json.loads(row[0]) if row else {}
    merged.update({str(k): v for k, v in trial.intermediate.items()})
    return _dumps(merged)


def _loads_or_text(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return text


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=False)


def _json_default(value: Any):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _pareto_ranks(trials: Sequence[Trial], objective: Any) -> dict[int, int]:
    """Each completed trial's non-dominated rank (0: the front), by id; trials without every objective, and
    those stopped at a lower budget than the front's (:func:`archsearch.core.pareto.at_full_budget`), are absent."""
    from archsearch.core.pareto import FrontView

    return FrontView.of(trials, objective).rank_of()


def _ordered_union(dicts) -> list[str]:
    names: list[str] = []
    for d in dicts:
        for k in d:
            if k not in names:
                names.append(k)
    return names
