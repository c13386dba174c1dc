"""A plain Hydra app with an epoch loop, numpy only: what ``hydra/sweeper=archsearch`` tunes (issue 27).

The model is a small multi-layer perceptron (``model.depth`` hidden layers of ``model.width`` units, activation
``model.act``: relu, gelu or tanh) fitted by mini-batch SGD (``model.lr``) to a fixed-seed synthetic regression
problem; ``val_loss`` and ``train_loss`` are mean squared errors. Each epoch it

- calls ``archsearch.report(step=epoch, val_loss=..., train_loss=...)`` and ends early once
  ``archsearch.should_stop()`` says so (both do nothing outside a search: the app runs by hand unchanged);
- appends ``{"step": epoch, "metrics": {...}}`` to ``metrics.jsonl`` in the job's output folder, the metrics-file
  form a sweeper can read when an app does not call the client.

The task function returns ``{"val_loss": ..., "train_loss": ...}`` (the last epoch's), or, with
``optimized_metric`` set, that one metric as a number, as an app written for the Optuna sweeper does (the
lightning-hydra-template's ``optimized_metric``). It prints ``job started t=...`` and ``job ended t=...
status=...`` (wall clock, seconds since the epoch) and writes the same to ``job_times.json`` in its output folder:
bench/sweeper_bench.py measures idle slots from them. ``trainer.seconds_per_epoch`` makes each epoch last at least
that long; ``fail_when`` (a mapping of config keys to values, e.g. ``{model.act: gelu}``) makes a job whose config
matches all of them raise before training, a deliberate failure. With ``$ARCHSEARCH_CHECKPOINT_DIR`` set (a
promoted trial of ASHA or Hyperband) it saves its state there each epoch and continues from it.

    python examples/hydra_app/train.py                                   # one job
    python examples/hydra_app/train.py -m model.lr=0.01,0.1              # Hydra's basic sweeper
    python examples/hydra_app/train.py -m --config-name archsearch_sweep # the archsearch sweeper
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import archsearch

log = logging.getLogger(__name__)

FEATURES = 4
GELU_C = math.sqrt(2.0 / math.pi)
ACTIVATIONS = ("relu", "gelu", "tanh")
METRICS = ("val_loss", "train_loss")


class DeliberateFailure(RuntimeError):
    """The failure ``fail_when`` asks for: a job that crashes, for a sweeper's failed-trial handling."""


def make_data(samples: int, noise: float) -> tuple[np.ndarray, ...]:
    """The same data in every job (fixed seed): a non-linear target, so depth and activation matter; 80/20 split."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=(samples, FEATURES))
    y = np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 2] * x[:, 3] + noise * rng.normal(size=samples)
    cut = int(0.8 * samples)
    return x[:cut], y[:cut, None], x[cut:], y[cut:, None]


def activate(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The activation and its derivative at ``z`` (gelu: the tanh approximation)."""
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1.0 - t * t
    t = np.tanh(GELU_C * (z + 0.044715 * z ** 3))
    grad = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3 * 0.044715 * z * z)
    return 0.5 * z * (1.0 + t), grad


def init_weights(depth: int, width: int, seed: int) -> list[np.ndarray]:
    """He-initialised weights and zero biases, alternating: [W1, b1, ..., W_out, b_out]."""
    rng = np.random.default_rng(seed)
    sizes = [FEATURES] + [width] * depth + [1]
    params: list[np.ndarray] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(scale=math.sqrt(2.0 / fan_in), size=(fan_in, fan_out)), np.zeros(fan_out)]
    return params


def forward(params: list[np.ndarray], x: np.ndarray, act: str) -> tuple[np.ndarray, list]:
    """The prediction and what backprop needs: each layer's input and activation derivative."""
    cache = []
    h = x
    for i in range(0, len(params) - 2, 2):
        out, grad = activate(act, h @ params[i] + params[i + 1])
        cache.append((h, grad))
        h = out
    cache.append((h, None))
    return h @ params[-2] + params[-1], cache


def sgd_step(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, act: str, lr: float) -> None:
    """One step of SGD on the mean squared error, in place."""
    pred, cache = forward(params, x, act)
    delta = 2.0 * (pred - y) / len(x)
    for layer in range(len(cache) - 1, -1, -1):
        h, _ = cache[layer]
        w = params[2 * layer]
        grad_w, grad_b = h.T @ delta, delta.sum(axis=0)
        if layer > 0:
            delta = (delta @ w.T) * cache[layer - 1][1]
        params[2 * layer] -= lr * grad_w
        params[2 * layer + 1] -= lr * grad_b


def mse(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, act: str) -> float:
    with np.errstate(all="ignore"):  # a diverged run gives inf/nan, reported as such
        return float(np.mean((forward(params, x, act)[0] - y) ** 2))


def check_config(cfg: DictConfig) -> None:
    """Bad values fail at once, naming the key, rather than as a numpy error mid-training."""
    if cfg.model.act not in ACTIVATIONS:
        raise ValueError(f"model.act={cfg.model.act!r}: expected one of {', '.join(ACTIVATIONS)}")
    for key in ("model.depth", "model.width", "trainer.epochs", "trainer.batch_size"):
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "model.depth" else 1):
            raise ValueError(f"{key}={value!r}: expected a positive integer")
    if cfg.get("optimized_metric") not in (None, *METRICS):
        raise ValueError(f"optimized_metric={cfg.optimized_metric!r}: expected null or one of {', '.join(METRICS)}")


def check_fail_when(cfg: DictConfig) -> None:
    """Raise DeliberateFailure when every ``fail_when`` key has its value in ``cfg``; a key missing from the
    config is a mistake, not a silent never-match."""
    conditions = cfg.get("fail_when")
    if not conditions:
        return
    if not isinstance(conditions, DictConfig):
        raise ValueError(f"fail_when={conditions!r}: expected a mapping of config keys to values, "
                         "e.g. fail_when='{model.act: gelu}', or null")
    for key, wanted in conditions.items():
        if OmegaConf.select(cfg, str(key), default=KeyError) is KeyError:
            raise ValueError(f"fail_when: {key!r} is not a key of the config")
    if all(OmegaConf.select(cfg, str(key)) == wanted for key, wanted in conditions.items()):
        raise DeliberateFailure(f"deliberate failure: the config matches fail_when "
                                f"{OmegaConf.to_container(conditions)}")


class Checkpoint:
    """The state in ``$ARCHSEARCH_CHECKPOINT_DIR`` (when a search sets it): a promoted trial continues from it."""

    def __init__(self) -> None:
        folder = archsearch.checkpoint_dir()
        self.path = folder / "state.npz" if folder else None

    def load(self, params: list[np.ndarray]) -> int:
        """The epochs already trained (0 without a checkpoint); ``params`` restored in place."""
        if self.path is None or not self.path.exists():
            return 0
        with np.load(self.path) as state:
            for i in range(len(params)):
                params[i][...] = state[f"p{i}"]
            return int(state["epoch"])

    def save(self, params: list[np.ndarray], epoch: int) -> None:
        """Atomically: a kill leaves the previous state or the new one, never half a file."""
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as file:
            np.savez(file, epoch=epoch, **{f"p{i}": p for i, p in enumerate(params)})
        os.replace(tmp, self.path)


def train(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """The epoch loop: report each epoch, stop when asked; the last epoch's metrics."""
    x_train, y_train, x_val, y_val = make_data(cfg.data.samples, cfg.data.noise)
    params = init_weights(cfg.model.depth, cfg.model.width, cfg.seed)
    checkpoint = Checkpoint()
    start_epoch = checkpoint.load(params)
    if start_epoch:
        log.info("resumed from epoch %d", start_epoch)
    metrics = {"val_loss": mse(params, x_val, y_val, cfg.model.act),
               "train_loss": mse(params, x_train, y_train, cfg.model.act)}
    for epoch in range(start_epoch + 1, cfg.trainer.epochs + 1):
        began = time.monotonic()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x_train))
        with np.errstate(all="ignore"):
            for first in range(0, len(order), cfg.trainer.batch_size):
                batch = order[first:first + cfg.trainer.batch_size]
                sgd_step(params, x_train[batch], y_train[batch], cfg.model.act, cfg.model.lr)
        metrics = {"val_loss": mse(params, x_val, y_val, cfg.model.act),
                   "train_loss": mse(params, x_train, y_train, cfg.model.act)}
        time.sleep(max(0.0, cfg.trainer.seconds_per_epoch - (time.monotonic() - began)))
        checkpoint.save(params, epoch)
        archsearch.report(step=epoch, **metrics)
        with open(output_dir / "metrics.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps({"step": epoch, "metrics": metrics}) + "\n")
        log.info("epoch=%d val_loss=%.6g train_loss=%.6g", epoch, metrics["val_loss"], metrics["train_loss"])
        if not all(math.isfinite(v) for v in metrics.values()):
            log.warning("diverged at epoch %d (lr=%s too large?): stopping", epoch, cfg.model.lr)
            break
        if archsearch.should_stop():
            log.info("stopped after epoch %d: the search asked", epoch)
            break
    return metrics


def record_times(output_dir: Path, started: float, status: str) -> None:
    """The job's wall-clock span, printed and in ``job_times.json``: what the benchmark measures slots with."""
    ended = time.time()
    print(f"job ended t={ended:.6f} status={status}", flush=True)
    (output_dir / "job_times.json").write_text(json.dumps({"start": started, "end": ended, "status": status}))


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> Any:
    started = time.time()
    print(f"job started t={started:.6f}", flush=True)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    status = "failed"
    try:
        check_config(cfg)
        check_fail_when(cfg)
        metrics = train(cfg, output_dir)
        status = "stopped" if archsearch.should_stop() else "completed"
    finally:
        record_times(output_dir, started, status)
    metric = cfg.get("optimized_metric")
    return metrics if metric is None else metrics[metric]


if __name__ == "__main__":
    main()
