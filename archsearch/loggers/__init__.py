"""Experiment trackers fed by the search's events: ``logger=[tensorboard,mlflow]`` (see ``base.Logger``)."""

from archsearch.loggers.base import Logger, Loggers
from archsearch.loggers.factory import available_loggers, create_loggers

__all__ = ["Logger", "Loggers", "available_loggers", "create_loggers"]
