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
from archsearch.oracles import asha, bayesian, bohb, grid, hyperband, random  # noqa: F401  (registration)

__all__ = [
    "COMPLETED", "FAILED", "INTERRUPTED", "PRUNED", "RUNNING",
    "Oracle", "Proposal", "Trial", "available_oracles", "create_oracle", "oracle_options", "register_oracle",
]
