"""How every trial compiles and fits: the trainer's settings, each Python default stated once.

The defaults are conf/trainer/default.yaml's and conf/model's (tests/test_defaults.py keeps the two
equal); where one differs on purpose, the field says why.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.space.hyperparameters import HyperParameters


@dataclass
class CompileSettings:
    """How to compile a model the builder returned uncompiled.

    Values named ``optimizer`` and ``learning_rate`` in the trial's
    hyperparameters win over these defaults, so either can be searched.
    """

    loss: Any = None
    metrics: Sequence[Any] = ()
    optimizer: Any = "adam"
    learning_rate: float | None = 1e-3
    loss_options: Mapping[str, Any] = field(default_factory=dict)
    # KerasTuner's Tuner(optimizer=, loss=, metrics=): these replace what the builder compiled with
    # (what is not given keeps the builder's own choice).
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def recompile(self, model, options: Mapping[str, Any] | None = None, source: Any = None) -> None:
        """Compile a model again with ``overrides`` in place of the builder's own arguments, and ``options``
        (the training policy's ``jit_compile``, ``steps_per_execution``); ``source``: the model whose compile
        arguments to keep (the builder's, when a new model casts its outputs to float32), else ``model``."""
        source = model if source is None else source
        config = dict(getattr(getattr(source, "_compile_config", None), "config", None) or {})
        given = {k: copy.deepcopy(v) if k == "optimizer" and not isinstance(v, str) else v
                 for k, v in self.overrides.items() if v is not None}
        if "optimizer" not in given and getattr(source, "optimizer", None) is not None:
            given["optimizer"] = type(source.optimizer).from_config(source.optimizer.get_config())
        kept = {k: v for k, v in config.items()
                if k in ("loss", "metrics", "loss_weights", "weighted_metrics", "run_eagerly", "jit_compile",
                         "steps_per_execution")}
        model.compile(**{**kept, **dict(options or {}), **given})

    def compile(self, model, hp: HyperParameters, options: Mapping[str, Any] | None = None) -> None:
        """Compile with the configured loss and metrics; ``options``: more ``compile`` arguments (the policy's)."""
        from archsearch.training import metrics as metric_lib
        from archsearch.training.optimizers import make_optimizer

        if self.loss is None:
            raise ArchsearchError(
                "the model builder returned an uncompiled model and no loss is configured: "
                "compile the model in the builder or set model.loss (e.g. loss=sparse_categorical_crossentropy)"
            )
        optimizer_name = hp.get("optimizer", self.optimizer)
        field_name = "hyperparameter 'optimizer'" if "optimizer" in hp else "trainer.optimizer"
        optimizer = make_optimizer(optimizer_name, hp.get("learning_rate", self.learning_rate), field=field_name)
        loss = metric_lib.get_loss(self.loss, **dict(self.loss_options)) if isinstance(self.loss, str) else self.loss
        metrics = [metric_lib.get_metric(m) if isinstance(m, str) else m for m in self.metrics]
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, **dict(options or {}))


DEFAULT_BATCH_SIZE = 32


@dataclass
class TrainerSettings:
    """What every trial's ``fit`` uses unless the trial's budget says otherwise.

    The defaults are conf/trainer/default.yaml's (tests/test_defaults.py keeps them equal); where one
    differs on purpose, the field says why.
    """

    epochs: int = 5  # search(epochs=...) sets it, as in KerasTuner; without it, conf's 5, not Keras fit's 1
    batch_size: int | None = DEFAULT_BATCH_SIZE
    verbose: int = 0
    early_stopping: bool = False
    patience: int = 3
    min_delta: float = 0.0
    executions_per_trial: int = 1
    checkpoints: bool = True
    # A configuration whose model has more parameters is not trained: it fails as "infeasible".
    max_model_size: int | None = None
    # Seeds weight initialisation and dropout of each fit (seed + 1000 * trial id + execution), so a
    # search can be repeated and two trials differ only by their values; None leaves them unseeded.
    # None on purpose (conf says 0): the Python API mirrors KerasTuner, whose weights are unseeded unless
    # Tuner(seed=...) is given (which then seeds them too); the command line is reproducible by default.
    seed: int | None = None
    # How fast each step runs (archsearch.training.policy has the rules per backend and device): auto is on
    # where it pays (a GPU), off on a CPU, so CPU results do not change.
    mixed_precision: str | bool = "auto"  # auto, true, false, mixed_float16, mixed_bfloat16
    jit_compile: str | bool = "auto"  # auto, true, false: Keras compile(jit_compile=...)
    steps_per_execution: str | int = "auto"  # auto or a whole number >= 1

    def __post_init__(self) -> None:
        """The speed settings checked and read now (``true``, ``"off"``...), so a typo fails before training."""
        from archsearch.training.policy import (jit_compile_setting, mixed_precision_setting,
                                                steps_per_execution_setting)

        self.mixed_precision = mixed_precision_setting(self.mixed_precision)
        self.jit_compile = jit_compile_setting(self.jit_compile)
        self.steps_per_execution = steps_per_execution_setting(self.steps_per_execution)
