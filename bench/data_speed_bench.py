"""How fast the built-in data is made and checked: the speed checks that were tests until issue 24.

    python bench/data_speed_bench.py

Prints the best of three wall times of: generating the default ``shapes`` data (1200 images of
28x28, 4 classes), generating 96 ``documents`` pages of 128x128, and the data checks
(``check_splits``) on 20,000 MNIST-sized images.  Tests no longer assert times: on a busy
2-core machine they failed only on the clock (1.35 s against a 1 s limit for the shapes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from archsearch.datasets import DataSplits, documents, shapes
from archsearch.datasets.checks import check_splits


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs (the least disturbed by other work on the machine), in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    x = np.random.default_rng(0).random((20000, 28, 28, 1), dtype=np.float32)
    y = np.arange(20000) % 10
    mnist_like = DataSplits("mnist", "classification", x[:16000], y[:16000], x[16000:], y[16000:], 10)
    rows = [
        ("shapes: 1200 images 28x28, 4 classes", lambda: shapes.generate(1200, 28, 4, seed=0)),
        ("documents: 96 pages 128x128", lambda: documents.make_pages(96, (128, 128), seed=1)),
        ("check_splits: 20,000 images 28x28", lambda: check_splits(mnist_like)),
    ]
    for name, work in rows:
        print(f"{name:40s} {best_of(3, work):6.2f} s (best of 3)", flush=True)


if __name__ == "__main__":
    main()
