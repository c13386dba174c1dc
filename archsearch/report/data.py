"""What the report shows, read from ``trials.db`` alone, read-only, while a search runs or after it died.

The store is opened read-only (:meth:`archsearch.core.store.TrialStore.open_read_only`): the reader takes no
write lock and changes nothing, so a running search never waits for it, and a killed search's
``running``/``interrupted`` trials show as they were left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.report.importance import ABSENT
from archsearch.core.objective import LINEAR, LOG, PARETO, Objective, ParetoObjective, infer_direction
from archsearch.core.store import STORE_FILE, TrialStore

MULTI_FIDELITY = ("hyperband", "bohb", "asha")


@dataclass
class RunRecord:
    """A search as the report sees it: trials (plain dicts, one per row), their epochs, objective and space."""

    folder: Path
    trials: list[dict[str, Any]]
    epochs: dict[int, list[dict[str, Any]]]
    objective: str
    direction: str
    tuner: str | None = None
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # A Pareto search's objectives, (name, direction) in order; empty for one objective.  ``objective`` and
    # ``direction`` are then the first one's, as each trial's ``value`` is (ParetoObjective.value_from).
    objectives: list[tuple[str, str]] = field(default_factory=list)
    # When each epoch was recorded (epoch seconds), by trial id and epoch: the GPU panel's time axis.
    epoch_times: dict[int, dict[int, float]] = field(default_factory=dict)
    # The Pareto objectives counted by their logarithm (``scale: log``): the hypervolume counts them so.
    log_scaled: tuple[str, ...] = ()

    @property
    def pareto(self) -> bool:
        return bool(self.objectives)

    def pareto_objective(self) -> ParetoObjective:
        """The Pareto search's objectives with their scales (:meth:`ParetoObjective.scaled_costs`)."""
        return ParetoObjective.of([{"name": n, "direction": d, "scale": LOG if n in self.log_scaled else LINEAR}
                                   for n, d in self.objectives])

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "max" else -1.0

    def scored(self) -> list[dict[str, Any]]:
        """Completed trials with a finite objective value, in id order."""
        return [t for t in self.trials if t["status"] == "completed" and finite(t["value"])]

    def best(self) -> dict[str, Any] | None:
        scored = self.scored()
        return max(scored, key=lambda t: self.sign * t["value"]) if scored else None

    def param_names(self) -> list[str]:
        names = list(self.space)
        for t in self.trials:
            names += [n for n in t["hparams"] if n not in names]
        return names

    def parents(self) -> set[int]:
        """Trials some other trial continued from (promoted by Hyperband, ASHA or BOHB)."""
        return {t["parent"] for t in self.trials if t.get("parent") is not None}

    @property
    def multi_fidelity(self) -> bool:
        return (self.tuner or "") in MULTI_FIDELITY or any("bracket" in t["info"] or "rung" in t["info"]
                                                           for t in self.trials)

    def curve(self, trial: dict[str, Any]) -> list[tuple[int, float]]:
        """The trial's objective per epoch: the store's intermediate values, else its epochs' metric."""
        points = {int(k): float(v) for k, v in trial["intermediate"].items() if finite(v)}
        if not points:
            points = {int(e["epoch"]): float(e[self.objective]) for e in self.epochs.get(trial["id"], [])
                      if finite(e.get(self.objective))}
        return sorted(points.items())

    def joined_curve(self, trial: dict[str, Any]) -> list[tuple[int, float]]:
        """:meth:`curve`, starting from the parent's point at the epoch a promoted trial continued from."""
        points = self.curve(trial)
        parent = next((t for t in self.trials if t["id"] == trial.get("parent")), None)
        if points and parent is not None:
            joint = int(trial.get("initial_budget") or 0)
            start = dict(self.curve(parent))
            if joint in start and points[0][0] > joint:
                points = [(joint, start[joint]), *points]
        return points

    def final_results(self) -> list[dict[str, Any]]:
        """One scored trial per configuration: a promoted trial's last (highest-budget) descendant.

        Hyperband's parents and children share their values; counting both would weigh a
        promoted configuration twice, and at two budgets.
        """
        promoted = self.parents()
        return [t for t in self.scored() if t["id"] not in promoted]


def numeric_param(values: list[Any], spec: dict[str, Any]) -> bool:
    """Whether to draw a parameter on a number axis: numbers, not a choice, and not a handful of whole numbers
    (``num_layers`` 1..3 reads better as three boxes than as a scatter over 1, 1.5, 2, ...)."""
    present = [v for v in values if v is not None and v != ABSENT]
    if not present or spec.get("type") in ("choice", "boolean", "fixed") or not all(finite(v) for v in present):
        return False
    return not (all(float(v).is_integer() for v in present) and len(set(present)) <= 8)


def level_order(values: list[Any]) -> list[str]:
    """Category labels in a reading order: numbers by value, then the rest alphabetically, absent last."""
    distinct = {str(v): v for v in values}
    return sorted(distinct, key=lambda k: (k == ABSENT, not finite(distinct[k]),
                                           distinct[k] if finite(distinct[k]) else 0, k))


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_run(folder: str | Path) -> RunRecord:
    """Read ``<folder>/trials.db``; raises FileNotFoundError (StoreNotFoundError) when there is none and
    UnreadableStoreError when it is not a store."""
    folder = Path(folder)
    with TrialStore.open_read_only(folder / STORE_FILE) as store:
        meta, trials, records = store.meta(), store.rows(), store.epoch_records()
    epochs: dict[int, list[dict[str, Any]]] = {}
    times: dict[int, dict[int, float]] = {}
    for record in records:  # one read for both (TrialStore.epochs_by_trial's shape, and the times)
        trial_id, epoch = int(record["trial_id"]), int(record["epoch"])
        epochs.setdefault(trial_id, []).append({"epoch": epoch, **record["metrics"]})
        if finite(record.get("recorded_at")):
            times.setdefault(trial_id, {})[epoch] = float(record["recorded_at"])
    fingerprint = meta.get("fingerprint") or {}
    config = meta.get("config") or {}
    pareto = _pareto_objectives(fingerprint, config)
    objectives = [(o.name, o.direction) for o in pareto]
    objective, direction = objectives[0] if objectives else _objective(fingerprint, config, trials)
    tuner = fingerprint.get("oracle") or (config.get("tuner") or {}).get("name")
    space = fingerprint.get("space") or (config.get("model") or {}).get("space") or {}
    return RunRecord(folder, trials, epochs, objective, direction, tuner, dict(space), dict(config), objectives,
                     times, tuple(o.name for o in pareto if o.scale == LOG))


def _pareto_objectives(fingerprint: dict[str, Any], config: dict[str, Any]) -> list[Objective]:
    """A Pareto search's objectives: the fingerprint's ``["pareto", dir, [name, dir(, scale)], ...]``, else the
    config's ``objective`` list when its ``search.mode`` is pareto; [] for a single-objective search."""
    stored = fingerprint.get("objective")
    if isinstance(stored, list) and stored and stored[0] == PARETO:
        return [Objective(str(entry[0]), str(entry[1]), scale=entry[2] if len(entry) > 2 else LINEAR)
                for entry in stored[2:]]
    if str((config.get("search") or {}).get("mode", "")).lower() == PARETO and config.get("objective") is not None:
        return ParetoObjective.of(config["objective"]).objectives
    return []


def _objective(fingerprint: dict[str, Any], config: dict[str, Any], trials: list[dict[str, Any]]) -> tuple[str, str]:
    stored = fingerprint.get("objective")
    if isinstance(stored, list) and len(stored) >= 2:
        return str(stored[0]), str(stored[1])
    spec = config.get("objective")
    if isinstance(spec, dict) and spec.get("name"):
        return str(spec["name"]), str(spec.get("direction") or infer_direction(str(spec["name"])) or "max")
    if isinstance(spec, str):
        return spec, infer_direction(spec) or "max"
    return "objective", "max"

