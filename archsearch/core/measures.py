"""The model measures archsearch computes itself: their names, units and when they are known.

A Pareto search weighs a model's score against what it costs to run (``params``, ``flops``,
``model_size_mb``, ``latency_ms``); a constraint bounds one (``params <= 2e6``).  Their *names*
live here, at the bottom, because the CLI checks them before anything is built and the oracles,
the store and the report read them like any metric; *computing* them needs the built model, which
is the Keras trial runner's job (``archsearch/training/measures.py``).  A program run by
``trial=command`` computes nothing: it reports its own metrics under any of these names.
"""

from __future__ import annotations

# Known as soon as the model is built, before any training: a constraint on one of them refuses a
# trial without spending an epoch.
BEFORE_TRAINING: dict[str, str] = {
    "params": "parameters, trainable and not (model.count_params())",
    "trainable_params": "trainable parameters",
    "flops": "floating-point operations of one forward pass of one example (a multiply-add is 2)",
    "model_size_mb": "size of the weights in MiB (parameters x bytes of their dtype)",
}
# Measured on the trained model, on the device it trained on.
AFTER_TRAINING: dict[str, str] = {
    "latency_ms": "median batch-1 inference time in milliseconds, after warm-up",
    "latency_batch_ms": "median inference time of one batch of trainer.batch_size, in milliseconds",
}
MEASURES: dict[str, str] = {**BEFORE_TRAINING, **AFTER_TRAINING}
# The total violation of a search's constraints, stored with every trial a constraint was checked on
# (0.0 when all hold): what constraint-dominance ranks infeasible trials by.
VIOLATION = "constraint_violation"


# How fast a trial trains, recorded with each epoch of a Keras trial (archsearch/training/gpu_stats.py): shown in
# the live display, epochs.csv, the loggers and the report's GPU panel.  Facts about the machine, not the model:
# never an objective unless one is named explicitly (a Pareto search's main objective skips them too).
RUN_FIGURES: dict[str, str] = {
    "samples_per_second": "training samples per second of the epoch's wall time (validation included)",
    "gpu_utilization": "mean GPU utilisation during the epoch, percent (NVML; the whole device's)",
    "gpu_memory_mb": "peak memory used on the GPU during the epoch, MiB (NVML; the whole device's)",
    "gpu_index": "the NVML index (as nvidia-smi numbers them) of the GPU the epoch trained on",
}


def is_run_figure(name: str) -> bool:
    """Whether ``name`` is one of archsearch's speed and GPU figures rather than a metric of the model."""
    return name in RUN_FIGURES


def is_measure(name: str) -> bool:
    """Whether ``name`` is computed by archsearch rather than reported by training."""
    return name in MEASURES
