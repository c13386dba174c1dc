"""A program that logs its metrics as TensorBoard event files, as Keras' TensorBoard callback, PyTorch's
SummaryWriter or ``tf.summary`` do: archsearch reads the scalars back by tag while it runs
(``trial.metrics.tensorboard``, every event file under the trial's folder), with no code change.

Each epoch writes two scalars, ``loss`` and ``val_loss`` (the objective; the tag is the spec's
hyperparameterMetricTag), with the epoch as the step, to ``--logdir`` (default ``$ARCHSEARCH_TRIAL_DIR/logs``,
else ``./logs``). ``val_loss`` is the loss of examples/quadratic/train.py (best: x=0.3, y=0.7, kind=good);
``loss``, the training loss, is 0.8 times it. Run by hand, then look at it:

    python examples/tensorboard/train.py --x=0.2 --epochs 3 --logdir /tmp/tb && tensorboard --logdir /tmp/tb

The events are written with the ``tensorboard`` package's protos and record writer (it comes with
TensorFlow; ``pip install tensorboard`` alone is enough): TensorBoard's ``EventFileWriter`` would import
TensorFlow, when installed, for its file I/O (seconds per trial). ``--summary tensor`` writes the scalars
as TF2's ``tf.summary.scalar`` does (a tensor with the scalars plugin's metadata) instead of the older
``simple_value`` that PyTorch's SummaryWriter writes.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter


class EventFile:
    """One ``events.out.tfevents.*`` file: TFRecord-framed ``Event`` protos, flushed after each epoch."""

    def __init__(self, logdir: Path) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.path = logdir / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        self._records = RecordWriter(open(self.path, "wb"))
        self._records.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())

    def scalars(self, step: int, values: dict[str, float], tensor: bool) -> None:
        summary = summary_pb2.Summary(value=[_scalar(tag, value, tensor) for tag, value in values.items()])
        self._records.write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())
        self._records.flush()

    def close(self) -> None:
        self._records.close()


def _scalar(tag: str, value: float, tensor: bool) -> summary_pb2.Summary.Value:
    if not tensor:
        return summary_pb2.Summary.Value(tag=tag, simple_value=value)
    from tensorboard.plugins.scalar import metadata  # TF2's form: a float32 scalar tensor, scalars plugin
    from tensorboard.util import tensor_util
    import numpy as np
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata("", ""),
                                     tensor=tensor_util.make_tensor_proto(np.float32(value)))


def val_loss_at(x: float, y: float, kind: str, epoch: int) -> float:
    """The loss of examples/quadratic/train.py after ``epoch`` epochs (1-based)."""
    return (x - 0.3) ** 2 + (y - 0.7) ** 2 + (0.0 if kind == "good" else 1.0) + 0.5 ** epoch


def default_logdir() -> Path:
    trial_dir = os.environ.get("ARCHSEARCH_TRIAL_DIR")
    return Path(trial_dir, "logs") if trial_dir else Path("logs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x", type=float, default=0.0)
    parser.add_argument("--y", type=float, default=0.0)
    parser.add_argument("--kind", choices=["good", "bad"], default="good")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("ARCHSEARCH_BUDGET", 5)),
                        help="epochs to run (default: $ARCHSEARCH_BUDGET, else 5)")
    parser.add_argument("--seconds", type=float, default=0.0, help="seconds to sleep per epoch (a slower program)")
    parser.add_argument("--logdir", type=Path, default=None,
                        help="where the event file goes (default: $ARCHSEARCH_TRIAL_DIR/logs, else ./logs)")
    parser.add_argument("--summary", choices=["simple_value", "tensor"], default="simple_value",
                        help="how scalars are stored: simple_value (PyTorch, TF1) or tensor (TF2, Keras)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    events = EventFile(args.logdir or default_logdir())
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.seconds)
        val_loss = val_loss_at(args.x, args.y, args.kind, epoch)
        events.scalars(epoch, {"loss": 0.8 * val_loss, "val_loss": val_loss}, tensor=args.summary == "tensor")
        # A progress line with no `name=value` pair: the metrics reach archsearch through the event file only.
        print(f"epoch {epoch} of {args.epochs} written to {events.path}", flush=True)
    events.close()


if __name__ == "__main__":
    main()
