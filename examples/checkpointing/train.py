"""A training loop that saves its state every epoch and continues from it: what makes ASHA, Hyperband and
BOHB cheap with a command trial, and what makes a crash lose at most one epoch.

Under a multi-fidelity tuner (``tuner=asha trial.budget_arg=--epochs``) a trial first runs a few epochs; a
promising one is *promoted*: archsearch starts the program again with a larger ``--epochs`` and the same
``$ARCHSEARCH_CHECKPOINT_DIR``. A program that reloads its state from there continues where it stopped
(it prints ``resumed from epoch N``) instead of training from scratch. The pattern is two lines, marked
``(1)`` and ``(2)`` below; the same holds for PyTorch (``torch.save``/``torch.load`` of the model's and
optimizer's ``state_dict``) and Keras (``model.save``/``keras.saving.load_model``), see examples/README.md.

The model: linear regression with an L2 penalty, trained by mini-batch SGD on synthetic data made with a
fixed seed; the validation loss falls fast, then slowly (diminishing returns, as a real learning curve).
A small ``--lr`` needs many epochs, a large ``--l2`` settles on a worse floor. Each epoch prints
``epoch=N val_loss=V``. The run is deterministic: continued from a checkpoint, it prints what an unbroken
run prints. By hand:

    python examples/checkpointing/train.py --lr=0.03 --epochs 3 --checkpoint-dir /tmp/ckpt
    python examples/checkpointing/train.py --lr=0.03 --epochs 6 --checkpoint-dir /tmp/ckpt   # resumed from epoch 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

FEATURES, TRAIN, VAL, BATCH = 8, 192, 64, 32


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same data in every run (fixed seed): y = X w* + noise, split into training and validation.
    The features' scales span 1 to 0.1, so the small ones are learnt slowly: a long tail of small gains."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(TRAIN + VAL, FEATURES)) * np.geomspace(1.0, 0.1, FEATURES)
    y = x @ rng.normal(size=FEATURES) + 0.5 * rng.normal(size=TRAIN + VAL)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def train_one_epoch(w: np.ndarray, x: np.ndarray, y: np.ndarray, epoch: int, lr: float, l2: float) -> np.ndarray:
    """One pass of mini-batch SGD; the shuffle is seeded by the epoch, so a resumed run repeats an unbroken one."""
    order = np.random.default_rng(epoch).permutation(len(x))
    for start in range(0, len(x), BATCH):
        xb, yb = x[order[start:start + BATCH]], y[order[start:start + BATCH]]
        grad = 2.0 * xb.T @ (xb @ w - yb) / len(xb) + 2.0 * l2 * w
        w = w - lr * grad
    return w


def save_state(path: Path, epoch: int, w: np.ndarray) -> None:
    """Write the whole state to a temporary file, then rename it over the old one: a kill at any moment
    leaves either the previous state or the new one, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:  # a file object: np.savez would otherwise append ".npz" to the name
        np.savez(file, epoch=epoch, w=w)
    os.replace(tmp, path)


def stop_requested() -> bool:
    """Optional, cooperative: archsearch creates $ARCHSEARCH_STOP_FILE just before it sends SIGTERM (pruned,
    timeout, Ctrl-C). A program that checks it between epochs stops at a clean point; one that does not is
    simply terminated, which is fine here since the state is saved every epoch."""
    stop_file = os.environ.get("ARCHSEARCH_STOP_FILE")
    return bool(stop_file) and os.path.exists(stop_file)


def warn_if_state_lost(state_file: Path | None) -> None:
    """archsearch says how many epochs a continued trial has done ($ARCHSEARCH_INITIAL_EPOCH); with no state
    to reload, they are trained again: say so rather than quietly spend the time."""
    done = int(os.environ.get("ARCHSEARCH_INITIAL_EPOCH", 0))
    if done > 0:
        where = f"no checkpoint at {state_file}" if state_file else "no checkpoint folder (--checkpoint-dir)"
        print(f"warning: archsearch continues this trial after epoch {done} but there is {where}, "
              "so it trains from epoch 1", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.03, help="SGD's learning rate (sensible from 1e-3 to 0.3)")
    parser.add_argument("--l2", type=float, default=1e-4, help="L2 penalty on the weights")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("ARCHSEARCH_BUDGET", 10)),
                        help="train until this epoch (the budget; default: $ARCHSEARCH_BUDGET, else 10)")
    parser.add_argument("--seconds", type=float, default=0.0, help="seconds to sleep per epoch (a slower program)")
    parser.add_argument("--checkpoint-dir", type=Path, default=os.environ.get("ARCHSEARCH_CHECKPOINT_DIR"),
                        help="where state.npz is saved and reloaded (default: $ARCHSEARCH_CHECKPOINT_DIR; "
                             "neither: no checkpoint)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if not args.lr > 0 or not args.l2 >= 0:
        parser.error(f"--lr must be > 0 and --l2 >= 0, got --lr={args.lr} --l2={args.l2}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    x_train, y_train, x_val, y_val = make_data()
    state_file = Path(args.checkpoint_dir, "state.npz") if args.checkpoint_dir else None
    if state_file:
        state_file.parent.mkdir(parents=True, exist_ok=True)

    done, w = 0, np.zeros(FEATURES)
    # (1) The pattern, part one: at start, reload the state if there is one.
    if state_file and state_file.exists():
        with np.load(state_file) as state:
            done, w = int(state["epoch"]), state["w"]
        print(f"resumed from epoch {done}", flush=True)
    else:
        warn_if_state_lost(state_file)

    if done >= args.epochs:  # nothing left to train (e.g. restarted after its last epoch): say where it stands
        print(f"epoch={done} val_loss={np.mean((x_val @ w - y_val) ** 2):.10g}", flush=True)
        return
    for epoch in range(done + 1, args.epochs + 1):
        time.sleep(args.seconds)
        w = train_one_epoch(w, x_train, y_train, epoch, args.lr, args.l2)
        # flush: piped to a file, stdout is block-buffered and the metrics would arrive only at exit.
        print(f"epoch={epoch} val_loss={np.mean((x_val @ w - y_val) ** 2):.10g}", flush=True)
        # (2) The pattern, part two: after each epoch, save the state (atomically).
        if state_file:
            save_state(state_file, epoch, w)
        if stop_requested() and epoch < args.epochs:
            print(f"stopping early as archsearch asked; state saved at epoch {epoch}", flush=True)
            sys.exit(0)


if __name__ == "__main__":
    main()
