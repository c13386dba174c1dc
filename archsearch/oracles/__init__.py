"""Search algorithms.  Importing this package registers every built-in oracle."""

from archsearch.oracles.base import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    PRUNED,
    RUNNING,
    Oracle,
    Proposal,
    Trial,
    available_oracles,
    create_oracle,
    oracle_options,
    register_oracle,
)
from archsearch.oracles import asha, bayesian, bohb, grid, hyperband, nsga2, random  # noqa: F401  (registration)
from archsearch.oracles.asha import ASHAOracle
from archsearch.oracles.bayesian import BayesianOptimizationOracle
from archsearch.oracles.bohb import BOHBOracle
from archsearch.oracles.grid import GridSearchOracle
from archsearch.oracles.hyperband import HyperbandOracle
from archsearch.oracles.nsga2 import NSGA2Oracle
from archsearch.oracles.random import RandomSearchOracle

__all__ = [
    "COMPLETED", "FAILED", "INTERRUPTED", "PRUNED", "RUNNING",
    "Oracle", "Proposal", "Trial", "available_oracles", "create_oracle", "oracle_options", "register_oracle",
    # KerasTuner's names: RandomSearchOracle(objective=..., max_trials=...) and so on.
    "ASHAOracle", "BayesianOptimizationOracle", "BOHBOracle", "GridSearchOracle", "HyperbandOracle",
    "NSGA2Oracle", "RandomSearchOracle",
]
