"""Where Hydra's plugin discovery finds ``hydra/sweeper=archsearch`` once archsearch is installed.

Hydra imports every module under the ``hydra_plugins`` namespace when an app starts, and accepts only a
sweeper class defined there: this module registers the sweeper's config (and the Optuna sweeper's sampler
options, so its configs compose) and holds Hydra's three methods; the work is in archsearch/sweeper.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from archsearch.sweeper.config import register_configs


class ArchsearchSweeper(Sweeper):
    """Hydra instantiates it with ``hydra.sweeper``'s keys (archsearch/sweeper/config.py)."""

    def __init__(self, **conf: Any) -> None:
        self.conf = conf  # read in sweep(), where a mistake is one line rather than Hydra's instantiation error
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from archsearch.sweeper.sweeper import sweep

        assert self.config is not None and self.launcher is not None
        loader = None if self.hydra_context is None else self.hydra_context.config_loader
        return sweep(self.conf, self.config, self.launcher, arguments, loader)


register_configs()
