"""What a trial's program is given: its arguments (the trial's values, the budget) and its environment.

The cloud tuning service passes each value as ``--name=value`` and sets ``CLOUD_ML_TRIAL_ID`` and
``CLOUD_ML_HP_METRIC_FILE``; archsearch does the same (``trial.args`` chooses another style) and adds its
own ``ARCHSEARCH_*`` variables, which its client (:mod:`archsearch.command.client`) reads.  The names are
listed once, here, and in docs/command_trials.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archsearch.command.settings import CommandSettings

TRIAL_ID = "ARCHSEARCH_TRIAL_ID"
TRIAL_DIR = "ARCHSEARCH_TRIAL_DIR"
CHECKPOINT_DIR = "ARCHSEARCH_CHECKPOINT_DIR"
VALUES = "ARCHSEARCH_VALUES"
METRICS_FILE = "ARCHSEARCH_METRICS_FILE"
STOP_FILE = "ARCHSEARCH_STOP_FILE"
BUDGET = "ARCHSEARCH_BUDGET"
INITIAL_EPOCH = "ARCHSEARCH_INITIAL_EPOCH"
CLOUD_TRIAL_ID = "CLOUD_ML_TRIAL_ID"
CLOUD_METRIC_FILE = "CLOUD_ML_HP_METRIC_FILE"


def value_text(value: Any) -> str:
    """A value as a program reads it from its command line: ``true``/``false``, ints plain, floats exact."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _flag(name: str) -> str:
    return name if name.startswith("-") else f"--{name}"


def value_arguments(settings: CommandSettings, values: Mapping[str, Any], budget: int | None) -> list[str]:
    """The trial's values (and its epoch budget, when ``trial.budget_arg`` names one) in ``trial.args``' style."""
    pairs = [(name, value_text(value)) for name, value in values.items()]
    budget_pair = [] if budget is None or settings.budget_arg is None else [(settings.budget_arg, str(int(budget)))]
    if settings.args == "env":
        pairs = []
    words: list[str] = []
    for name, text in [*pairs, *budget_pair]:
        if settings.args == "flags_space":
            words += [_flag(name), text]
        elif settings.args == "hydra":
            words.append(f"{name.lstrip('-')}={text}")
        else:  # flags, and the budget in env style (it has no other way in but the environment)
            words.append(f"{_flag(name)}={text}")
    return words


def trial_environment(settings: CommandSettings, *, trial_id: int, trial_dir: Path, checkpoint_dir: Path,
                      values: Mapping[str, Any], metrics_file: Path, hypertune_file: Path, stop_file: Path,
                      budget: int | None, initial_epoch: int) -> dict[str, str]:
    """This process's environment, the user's ``trial.env``, the service's variables and archsearch's own."""
    env = {**os.environ, **settings.env}
    env.update({
        TRIAL_ID: str(trial_id),
        TRIAL_DIR: str(trial_dir.resolve()),
        CHECKPOINT_DIR: str(checkpoint_dir.resolve()),
        VALUES: json.dumps({k: v for k, v in values.items()}, default=str),
        METRICS_FILE: str(metrics_file.resolve()),
        STOP_FILE: str(stop_file.resolve()),
        INITIAL_EPOCH: str(int(initial_epoch)),
        CLOUD_TRIAL_ID: str(trial_id),
        CLOUD_METRIC_FILE: str(hypertune_file.resolve()),
        "PYTHONUNBUFFERED": "1",  # a Python program's prints arrive as it makes them, not at exit
    })
    if budget is not None:
        env[BUDGET] = str(int(budget))
    else:
        env.pop(BUDGET, None)
    return env
