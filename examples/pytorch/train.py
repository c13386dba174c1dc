"""A PyTorch training script tuned by archsearch: one line reports the objective,
``archsearch.report(step=epoch, val_loss=...)``, and two blocks save and reload a checkpoint.

A small MLP regresses a non-linear function of 8 inputs (synthetic data, fixed seed, CPU, a few seconds).
The searched values arrive as arguments (``--lr=0.01 --hidden=32 --optimizer=sgd --momentum=0.9``); the
spec next to this file (hptuning_config.yaml, the cloud service's studySpec form) searches them, with
``momentum`` only for ``optimizer: sgd``. By hand (the report then does nothing):

    python examples/pytorch/train.py --lr=0.01 --hidden=32 --optimizer=adam --epochs 5

``archsearch.report`` is archsearch's client: it imports nothing heavy and, outside a search, does nothing.
The checkpoint (marked (1) and (2)) is what lets ASHA continue a promoted trial instead of restarting it:
``$ARCHSEARCH_CHECKPOINT_DIR/state.pt`` holds the epoch, the model's and the optimizer's state.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch import nn

import archsearch

INPUTS, TRAIN, VAL, BATCH = 8, 768, 256, 64


def make_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same data in every run: y = sin(2 x0) + x1 x2 / 2 + noise, split into training and validation."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(TRAIN + VAL, INPUTS, generator=gen)
    y = torch.sin(2 * x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3] + 0.1 * torch.randn(TRAIN + VAL, 1, generator=gen)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def build_model(hidden: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(INPUTS, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


def build_optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum or 0.0)
    return torch.optim.Adam(model.parameters(), lr=args.lr)


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                    epoch: int) -> None:
    """One pass in mini-batches; the shuffle is seeded by the epoch, so a resumed run repeats an unbroken one."""
    model.train()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
    for start in range(0, len(x), BATCH):
        batch = order[start:start + BATCH]
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x[batch]), y[batch]).backward()
        optimizer.step()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float(nn.functional.mse_loss(model(x), y))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--hidden", type=int, default=32, help="units of each of the two hidden layers")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    parser.add_argument("--momentum", type=float, default=None, help="SGD's momentum (only with --optimizer=sgd)")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("ARCHSEARCH_BUDGET", 5)),
                        help="train until this epoch (default: $ARCHSEARCH_BUDGET, else 5)")
    parser.add_argument("--checkpoint-dir", type=Path, default=os.environ.get("ARCHSEARCH_CHECKPOINT_DIR"),
                        help="where state.pt is saved and reloaded (default: $ARCHSEARCH_CHECKPOINT_DIR; "
                             "neither: no checkpoint)")
    args = parser.parse_args(argv)
    if args.momentum is not None and args.optimizer != "sgd":
        parser.error(f"--momentum applies to --optimizer=sgd only, got --optimizer={args.optimizer}")
    if args.epochs < 1 or args.hidden < 1 or not args.lr > 0:
        parser.error(f"--epochs and --hidden must be at least 1 and --lr > 0, got --epochs={args.epochs} "
                     f"--hidden={args.hidden} --lr={args.lr}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    x_train, y_train, x_val, y_val = make_data()
    model = build_model(args.hidden)
    optimizer = build_optimizer(model, args)
    state_file = Path(args.checkpoint_dir, "state.pt") if args.checkpoint_dir else None

    done = 0
    # (1) At start, reload the checkpoint if there is one.
    if state_file and state_file.exists():
        state = torch.load(state_file, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        done = int(state["epoch"])
        print(f"resumed from epoch {done}", flush=True)

    if done >= args.epochs:  # nothing left to train (e.g. restarted after its last epoch): say where it stands
        val_loss = evaluate(model, x_val, y_val)
        archsearch.report(step=done, val_loss=val_loss)
        print(f"nothing left to train, validation loss {val_loss:.4f}", flush=True)
        return
    for epoch in range(done + 1, args.epochs + 1):
        train_one_epoch(model, optimizer, x_train, y_train, epoch)
        val_loss = evaluate(model, x_val, y_val)
        archsearch.report(step=epoch, val_loss=val_loss)  # the objective, to archsearch (a no-op by hand)
        print(f"epoch {epoch} of {args.epochs}, validation loss {val_loss:.4f}", flush=True)
        # (2) After each epoch, save the checkpoint: to a temporary file, then renamed over the old one, so a
        # kill at any moment leaves a whole checkpoint.
        if state_file:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
                       state_file.with_name("state.pt.tmp"))
            os.replace(state_file.with_name("state.pt.tmp"), state_file)


if __name__ == "__main__":
    main()
