"""Executors by name: ``inline`` (this process), ``process`` (local worker processes), ``ray``; and
``threads`` (slots as threads of this process), which the Hydra sweeper uses for jobs its launcher runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.core.trial_runner import TrialRunner
from archsearch.errors import ConfigError
from archsearch.executors.base import Executor, ExecutorHandler
from archsearch.executors.inline import InlineExecutor

EXECUTORS = ("inline", "process", "ray")

__all__ = ["EXECUTORS", "Executor", "ExecutorHandler", "InlineExecutor", "create_executor"]


def create_executor(name: str, runner: TrialRunner, slots: int = 1, options: Mapping[str, Any] | None = None) -> Executor:
    """The executor ``name`` for ``runner`` (any :class:`~archsearch.core.trial_runner.TrialRunner`),
    running ``slots`` trials at a time."""
    options = dict(options or {})
    if name == "inline":
        if slots > 1:
            raise ConfigError("tuner.parallel_trials", f"{slots} trials at a time need worker processes",
                              "use executor=process (the default) or parallel_trials=1")
        _no_options("inline", options)
        return InlineExecutor(runner)
    if name == "process":
        from archsearch.executors.process import ProcessExecutor

        allowed = ("max_trials_per_worker", "threads", "gpus", "trials_per_gpu", "gpu_memory_fraction")
        _no_options("process", {k: v for k, v in options.items() if k not in allowed})
        return ProcessExecutor(runner, slots, **{k: v for k, v in options.items() if k in allowed and v is not None})
    if name == "threads":  # not a choice of executor.name: for runners that only wait (archsearch/sweeper)
        from archsearch.executors.threads import ThreadExecutor

        _no_options("threads", options)
        return ThreadExecutor(runner, slots)
    if name == "ray":
        from archsearch.executors.ray import RayExecutor

        return RayExecutor(runner, slots, **options)
    raise ConfigError("executor.name", f"unknown executor {name!r}", f"choose one of: {', '.join(EXECUTORS)}")


def _no_options(name: str, options: Mapping[str, Any]) -> None:
    if options:
        key = sorted(options)[0]
        raise ConfigError(f"executor.{key}", f"is not an option of the '{name}' executor")
