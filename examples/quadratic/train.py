"""A training program as small as one can be: numpy-free maths, metrics printed to stdout.

The loss after each epoch is a known function of the arguments, so a search's result can be checked:

    loss(epoch) = (x - 0.3)**2 + (y - 0.7)**2 + (0 if kind == "good" else 1) + 0.5**epoch

(best: x=0.3, y=0.7, kind=good; the last term shrinks as epochs go by, like a real learning curve).
Each epoch prints one line ``epoch=N loss=V``: archsearch reads such ``name=value`` lines from stdout with
no code change (``trial.metrics.stdout``). Run by hand:

    python examples/quadratic/train.py --x=0.2 --y 0.5 --kind good --epochs 3

The epoch count is ``--epochs``; without it, ``$ARCHSEARCH_BUDGET`` (set by archsearch under ASHA,
Hyperband and BOHB), else 5.
"""

from __future__ import annotations

import argparse
import os
import time


def loss_at(x: float, y: float, kind: str, epoch: int) -> float:
    """The loss after ``epoch`` epochs (1-based)."""
    return (x - 0.3) ** 2 + (y - 0.7) ** 2 + (0.0 if kind == "good" else 1.0) + 0.5 ** epoch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``--name=value`` and ``--name value`` both work (argparse); an unknown argument is an error."""
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
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.seconds)
        # flush: piped to a file, stdout is block-buffered and the metrics would arrive only at exit.
        print(f"epoch={epoch} loss={loss_at(args.x, args.y, args.kind, epoch):.10g}", flush=True)


if __name__ == "__main__":
    main()
