"""A program that reports its metric the cloud tuning service's way: cloudml-hypertune's file.

A program written for the cloud service calls

    hpt = hypertune.HyperTune()
    hpt.report_hyperparameter_tuning_metric(hyperparameter_metric_tag="accuracy", metric_value=0.93,
                                            global_step=epoch)

which rewrites the file ``$CLOUD_ML_HP_METRIC_FILE`` (default ``/tmp/hypertune/output.metrics``). archsearch
sets that variable for each trial and reads the file while the program runs (``trial.metrics.hypertune``),
so such a program runs unchanged. This one uses the ``cloudml-hypertune`` package when it is installed,
else ``_HyperTuneFile`` below, which writes the same format.

The metric is an accuracy-like score to MAXIMIZE, ``1 / (1 + loss)`` with the loss of
examples/quadratic/train.py (best: x=0.3, y=0.7, kind=good). Run by hand:

    CLOUD_ML_HP_METRIC_FILE=/tmp/hp.metrics python examples/hypertune/train.py --x=0.2 --epochs 3
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from typing import Any

TAG = "accuracy"


class _HyperTuneFile:
    """cloudml-hypertune's format, for when the package is not installed.

    Each call appends an entry to the last 100 and rewrites the whole file, one JSON object a line with
    sorted keys; every value is a string except the timestamp: ``{"accuracy": "0.9", "checkpoint_path": "",
    "global_step": "3", "timestamp": 1700000000.0, "trial": "0"}``.
    """

    def __init__(self) -> None:
        self.metric_path = os.environ.get("CLOUD_ML_HP_METRIC_FILE", "/tmp/hypertune/output.metrics")
        os.makedirs(os.path.dirname(self.metric_path) or ".", exist_ok=True)
        self.trial = str(os.environ.get("CLOUD_ML_TRIAL_ID", 0))
        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)

    def report_hyperparameter_tuning_metric(self, hyperparameter_metric_tag: str, metric_value: float,
                                            global_step: int | None = None, checkpoint_path: str = "") -> None:
        self.entries.append({"timestamp": time.time(), "trial": self.trial,
                             hyperparameter_metric_tag or "training/hptuning/metric": str(float(metric_value)),
                             "global_step": str(int(global_step) if global_step else 0),
                             "checkpoint_path": checkpoint_path})
        with open(self.metric_path, "w") as file:
            file.write("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in self.entries))


def hypertune_reporter() -> Any:
    """The package's reporter when it imports, else the local copy of its format (both have ``metric_path``)."""
    try:
        import hypertune
    except ImportError:
        return _HyperTuneFile()
    return hypertune.HyperTune()


def accuracy_at(x: float, y: float, kind: str, epoch: int) -> float:
    """``1 / (1 + loss)``, the loss of examples/quadratic/train.py after ``epoch`` epochs."""
    loss = (x - 0.3) ** 2 + (y - 0.7) ** 2 + (0.0 if kind == "good" else 1.0) + 0.5 ** epoch
    return 1.0 / (1.0 + loss)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x", type=float, default=0.0)
    parser.add_argument("--y", type=float, default=0.0)
    parser.add_argument("--kind", choices=["good", "bad"], default="good")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("ARCHSEARCH_BUDGET", 5)),
                        help="epochs to run (default: $ARCHSEARCH_BUDGET, else 5)")
    parser.add_argument("--seconds", type=float, default=0.0, help="seconds to sleep per epoch (a slower program)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    hpt = hypertune_reporter()
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.seconds)
        hpt.report_hyperparameter_tuning_metric(hyperparameter_metric_tag=TAG, global_step=epoch,
                                                metric_value=accuracy_at(args.x, args.y, args.kind, epoch))
        # A progress line with no `name=value` pair: the metric reaches archsearch through the file only.
        print(f"epoch {epoch} of {args.epochs} reported to {hpt.metric_path}", flush=True)


if __name__ == "__main__":
    main()
