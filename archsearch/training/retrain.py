"""From a search to a measured claim: retrain the winner and the family's baseline, score both on test.

One piece though past 400 lines: choosing the candidates, retraining them with paired seeds and the
statistics that compare them are one claim, and splitting them would scatter its seed rules.

``python -m archsearch mode=retrain from_run=<run>`` (and :func:`retrain` for the Python API)
rebuilds the best values of a finished search (or ``trial_id=<id>``, ``hparams=<file>``,
``top_k=N``; a Pareto search's knee by default, ``trial_id=knee`` too, every objective scored)
and the model family's declared ``model.baseline`` (or ``baseline=<file>``),
trains each ``retrain.repeats`` times with different seeds, and scores them on the test split
that the search never saw.  What "tuned beats baseline" means is then a mean, a standard
deviation and a paired difference over the same seeds, not one lucky run.

Repeat ``r`` of a candidate keyed by trial id ``t`` trains exactly as the search trained trial
``t`` when ``r = 0``: weights seeded by ``trainer.seed + 1000 t``, dropout reseeded every epoch,
batches ordered by (``data.seed``, ``t``, epoch).  Repeat ``r`` adds ``r`` to both seeds.  So
``trial_id=<t> retrain.repeats=1 retrain.use_validation=false`` reproduces the trial's stored score,
and baseline and tuned see the same seeds and batch orders (the difference is paired).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from archsearch.core.console import say
from archsearch.engine.settings import RetrainOptions, check_alpha
from archsearch.errors import ConfigError
from archsearch.space.values import to_plain

RESULTS_DIR = "retrain"
COMPARISON_FILE = "comparison.json"
MODEL_FILE = "model.keras"
ALPHA = RetrainOptions.alpha  # the default significance level of the paired test over seeds
MAX_SEEDS_ADVISED = 50  # beyond this many seeds, a search budget is the advice, not more seeds


@dataclass
class Candidate:
    """One set of values to retrain: its label, values, epochs and the trial id that keys its seeds."""

    label: str
    values: dict[str, Any]
    epochs: int
    trial_id: int = 0
    search_score: float | None = None
    epochs_from: str = "trainer.epochs"  # where ``epochs`` came from, said in the output


@dataclass
class RetrainSettings:
    """How each candidate is retrained (``retrain.*`` and the run's ``trainer.*``)."""

    repeats: int = RetrainOptions.repeats
    use_validation: bool = RetrainOptions.use_validation
    seed: int | None = 0
    data_seed: int = 0
    batch_size: int | None = 32
    early_stopping: Mapping[str, Any] | None = None  # {patience, min_delta}; only without use_validation
    verbose: int = 0
    alpha: float = ALPHA  # significance level of the paired test
    # How the advice names the settings: the CLI's keys, or the Python API's arguments.
    repeats_name: str = "retrain.repeats"
    budget_names: str = "tuner.max_trials, trainer.epochs"


@dataclass
class Arrays:
    """Training, validation and test arrays; ``augment`` edits training batches (as in the search)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    augment: Callable | None = None


@dataclass
class Scores:
    """A candidate's per-seed results; ``model`` is the model of its first seed."""

    candidate: Candidate
    test: list[float] = field(default_factory=list)  # the (first) objective's test score of each seed
    objectives: dict[str, list[float]] = field(default_factory=dict)  # every objective's, by name (Pareto)
    validation: list[float] = field(default_factory=list)
    validation_metrics: list[dict[str, float]] = field(default_factory=list)
    model: Any = None


# ------------------------------------------------------------------ training one candidate


def scored_metric(objective) -> str:
    """The metric scored on test: the objective without its ``val_`` prefix (val_accuracy -> accuracy);
    a Pareto search's main objective's (the first one training produces)."""
    objective = main_objective(objective)
    return objective.name[4:] if objective.name.startswith("val_") else objective.name


def objective_parts(objective) -> list:
    """The objectives a retrain scores: a Pareto search's every one, else the objective itself."""
    return list(objective.components) if objective.is_pareto else [objective]


def main_objective(objective):
    """The objective that picks the best epoch and early-stops, and whose verdict leads: a Pareto search's main
    one (:attr:`ParetoObjective.main`, never a model measure, which no epoch changes)."""
    return objective.main if objective.is_pareto else objective


def scores_on_test(objective, result: Mapping[str, float], model, batch_size: int) -> dict[str, float]:
    """Each objective's value on the test split (``result``: ``model.evaluate``'s), by objective name; a model
    measure (params, flops, latency_ms, ...) is measured on the retrained model instead."""
    from archsearch.core.measures import MEASURES

    values = {}
    for part in objective_parts(objective):
        name = scored_metric(part)
        if name in result:
            values[part.name] = float(result[name])
        elif part.name in MEASURES:
            values[part.name] = measure(model, part.name, batch_size)
        else:
            raise ConfigError("objective", f"the model reports no {name!r} on the test split (it reports "
                              f"{', '.join(sorted(result))})",
                              "retrain a run whose objectives are the model's metrics or model measures")
    return values


def measure(model, name: str, batch_size: int) -> float:
    """A model measure of a retrained model, taken by the search's own measures (archsearch/training/measures.py),
    so a retrain reports it as the search recorded it (latency: on this device, after training)."""
    from archsearch.training.measures import measure_after_training, measure_before_training

    found = {**measure_before_training(model, [name]), **measure_after_training(model, [name], batch_size)}
    if name not in found:
        raise ConfigError("objective", f"{name} could not be measured on the retrained model (the warning above "
                          "says why)", "retrain a run whose objectives this backend can measure")
    return float(found[name])


def train_and_score(build: Callable, space, candidate: Candidate, arrays: Arrays, objective,
                    settings: RetrainSettings, repeat: int) -> tuple[dict[str, float], dict[str, float], Any]:
    """Train ``candidate`` once (seed ``repeat``); its test scores (each objective's, by name), the metrics of
    its best validation epoch (by the first objective; empty with ``use_validation``: nothing validates) and
    the trained model."""
    from archsearch.datasets.pipeline import epoch_batches, make_dataset
    from archsearch.training.settings import DEFAULT_BATCH_SIZE

    hp = space.with_values(candidate.values)
    seed = None if settings.seed is None else int(settings.seed) + repeat
    if seed is not None:
        keras.utils.set_random_seed(seed + 1000 * candidate.trial_id)  # the runner's seed for this trial
    model = build(hp)
    size = int(hp.get("batch_size", settings.batch_size) or DEFAULT_BATCH_SIZE)
    x, y = arrays.x_train, arrays.y_train
    if settings.use_validation:
        x, y = np.concatenate([x, arrays.x_val]), np.concatenate([y, arrays.y_val])
    train, steps = epoch_batches(x, y, batch_size=size, seed=settings.data_seed + repeat,
                                 trial_id=candidate.trial_id, initial_epoch=0, epochs=candidate.epochs,
                                 augment=arrays.augment, execution=0)
    callbacks: list[Any] = [_Reseed(seed, candidate.trial_id)] if seed is not None else []
    kwargs: dict[str, Any] = {}
    keeper = None
    if not settings.use_validation:
        kwargs["validation_data"] = make_dataset(arrays.x_val, arrays.y_val, batch_size=size, shuffle=False,
                                                 seed=settings.data_seed + repeat)
        keeper = _BestEpoch(objective)
        callbacks.append(keeper)
        if settings.early_stopping:
            main = main_objective(objective)
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=main.name, mode=main.direction, verbose=0,
                patience=int(settings.early_stopping.get("patience", 3)),
                min_delta=float(settings.early_stopping.get("min_delta", 0.0))))
    model.fit(train, epochs=candidate.epochs, steps_per_epoch=steps, shuffle=False, callbacks=callbacks,
              verbose=settings.verbose, **kwargs)
    if keeper is not None and keeper.weights is not None:
        model.set_weights(keeper.weights)  # the best epoch, as the search exported it
    test = make_dataset(arrays.x_test, arrays.y_test, batch_size=size, shuffle=False)
    result = model.evaluate(test, verbose=0, return_dict=True)
    return scores_on_test(objective, result, model, size), (keeper.metrics if keeper is not None else {}), model


class _Reseed(keras.callbacks.Callback):
    """Dropout and augmentation randomness of each epoch from (seed, trial, 0, epoch), as in the search."""

    def __init__(self, seed: int, trial_id: int) -> None:
        super().__init__()
        self.key = (int(seed), int(trial_id), 0)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        from archsearch.training.callbacks import reseed_layers

        reseed_layers(self.model, (*self.key, int(epoch)))


class _BestEpoch(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best objective, and that value (the search's score)."""

    def __init__(self, objective) -> None:
        super().__init__()
        self.objective = objective
        self.best: float | None = None
        self.metrics: dict[str, float] = {}
        self.weights = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        value = self.objective.value_from(metrics)
        if self.objective.better(value, self.best) or (self.best is None and value is not None
                                                       and math.isfinite(value)):
            self.best, self.metrics, self.weights = value, metrics, self.model.get_weights()


# ------------------------------------------------------------------ is the difference real?


def significance(tuned: Sequence[float], baseline: Sequence[float], direction: str, alpha: float = ALPHA,
                 repeats_name: str = "retrain.repeats",
                 budget_names: str = "tuner.max_trials, trainer.epochs") -> dict[str, Any]:
    """A paired t-test of the per-seed differences (tuned - baseline; the seeds are shared), two-sided.

    ``verdict`` is ``better``/``worse`` when the test rejects "no difference" at ``alpha``, else
    ``within noise`` (or ``untested`` with one seed); ``seeds_needed`` is the number of seeds at which
    a difference of the observed mean and spread would pass the test, and ``advice`` says what to do.
    """
    from scipy import stats

    differences = np.asarray(tuned, dtype=float) - np.asarray(baseline, dtype=float)
    n, mean = len(differences), _mean(differences)
    result: dict[str, Any] = {"test": "paired t-test over seeds (two-sided)", "alpha": float(alpha), "seeds": n,
                              "t": None, "p_value": None, "significant": False, "seeds_needed": None}
    if n < 2:
        result.update(verdict="untested", advice=f"one seed cannot tell a difference from noise: use {repeats_name}=3 "
                                                 "or more")
        return result
    spread = _std(differences)
    if spread == 0.0:  # the same difference on every seed: no noise to test against (t is infinite: null)
        t, p = (None, 0.0) if mean != 0.0 else (0.0, 1.0)
    else:
        t, p = (float(v) for v in stats.ttest_1samp(differences, 0.0))
    gain = mean if direction == "max" else -mean
    significant = p < alpha and gain != 0.0
    result.update(t=t, p_value=p, significant=significant)
    if significant:
        verdict = "better" if gain > 0 else "worse"
        advice = "" if gain > 0 else (f"the search found nothing better than the baseline: search with a bigger "
                                      f"budget ({budget_names}) or keep the baseline")
    else:
        verdict = "within noise"
        result["seeds_needed"] = needed = seeds_needed(mean, spread, alpha, n)
        advice = _noise_advice(gain, needed, repeats_name, budget_names)
    result.update(verdict=verdict, advice=advice)
    return result


def _noise_advice(gain: float, needed: int | None, repeats_name: str, budget_names: str) -> str:
    """What to do about a difference within noise: the seeds that would settle it, or a bigger search."""
    budget = f"a bigger search budget ({budget_names})"
    if gain == 0.0:
        return f"both scored the same on average; {budget} may find a model that beats the baseline"
    what = "a gain" if gain > 0 else "a loss"
    seeds = (f"about {needed} seeds ({repeats_name}={needed}) would tell whether {what} of this size is real"
             if needed else f"{what} this small would not stand out from noise even with {MAX_SEEDS_ADVISED} seeds")
    return f"{seeds}; {budget} may find " + ("a clearer winner" if gain > 0 else "a model that beats the baseline")


def seeds_needed(mean: float, spread: float, alpha: float, seen: int) -> int | None:
    """The fewest seeds (more than ``seen``) at which a mean difference ``mean`` with standard deviation
    ``spread`` passes the two-sided t-test at ``alpha``; None for none up to MAX_SEEDS_ADVISED."""
    from scipy import stats

    if mean == 0.0:
        return None
    for n in range(max(seen + 1, 2), MAX_SEEDS_ADVISED + 1):
        if abs(mean) / (spread / math.sqrt(n)) > stats.t.ppf(1.0 - alpha / 2.0, n - 1):
            return n
    return None


def verdict_text(result: Mapping[str, Any]) -> str:
    """The console's words for :func:`significance`: the verdict, the test and what to do next."""
    if result["verdict"] == "untested":
        return f"untested: {result['advice']}"
    p = result["p_value"]
    relation = "<" if result["significant"] else ">="
    text = (f"{result['verdict']} (paired t-test over {result['seeds']} seeds: p = {p:.3g} {relation} "
            f"{result['alpha']:g}, the significance level)")
    return text + (f"; {result['advice']}" if result["advice"] else "")


# ------------------------------------------------------------------ comparing candidates


def compare(build: Callable, space, tuned: Sequence[Candidate], baseline: Candidate, arrays: Arrays, objective,
            settings: RetrainSettings, out_dir: Path | None, notes: Sequence[str] = ()) -> dict[str, Any]:
    """Retrain the baseline and each tuned candidate over the same seeds; the comparison as a dict.

    With ``out_dir``, writes ``comparison.json``, ``model.keras`` (the first tuned candidate, first
    seed), ``baseline.keras`` and, for several candidates, ``trial_NNNN/model.keras``.
    """
    metric = scored_metric(objective)
    from archsearch.core.measures import MEASURES

    names = [scored_metric(p) for p in objective_parts(objective)]
    scored = ", ".join(n for n in names if n not in MEASURES) or metric
    measured = [n for n in names if n in MEASURES]
    say(f"Retraining on {'training + validation' if settings.use_validation else 'training'} data "
         f"({len(arrays.x_train) + (len(arrays.x_val) if settings.use_validation else 0)} samples), scoring "
         f"test {scored} on {len(arrays.x_test)} test samples"
         + (f" and measuring {', '.join(measured)} on the retrained models" if measured else "")
         + f", {settings.repeats} seed(s) each; "
         + ("a fixed number of epochs (no early stopping: the validation data trains)"
            if settings.use_validation else "the best validation epoch is kept, as in the search"))
    for note in notes:
        say(note)
    results = [_repeat(build, space, c, arrays, objective, settings) for c in (baseline, *tuned)]
    base, *others = results
    parts, main = objective_parts(objective), main_objective(objective)
    comparison = {
        "metric": metric,
        "direction": main.direction,
        "objective": main.name,
        "repeats": settings.repeats,
        "seeds": [None if settings.seed is None else settings.seed + r for r in range(settings.repeats)],
        "use_validation": settings.use_validation,
        "early_stopping": "none (fixed epochs)" if settings.use_validation else
                          ("on the validation split" if settings.early_stopping else "none (fixed epochs)"),
        "data": {"train": int(len(arrays.x_train)), "validation": int(len(arrays.x_val)),
                 "test": int(len(arrays.x_test))},
        "notes": list(notes),
        "baseline": _summary(base, baseline=True),
        "tuned": [],
    }
    if objective.is_pareto:  # every objective of the front, each with its spread over the seeds
        comparison["objectives"] = [{"name": p.name, "metric": scored_metric(p), "direction": p.direction}
                                    for p in parts]
        comparison["baseline"]["objectives"] = {p.name: _spread(base.objectives[p.name]) for p in parts}
    for scores in others:
        entry = _summary(scores)
        entry.update(_against(scores.test, base.test, main.direction, settings))
        comparison["tuned"].append(entry)
        label = "tuned" if scores is others[0] else scores.candidate.label
        say(_line(metric, base.test, entry, label, scores.candidate.label, settings.repeats))
        if objective.is_pareto:
            entry["objectives"] = {}
            for part in parts:
                mine, theirs = scores.objectives[part.name], base.objectives[part.name]
                entry["objectives"][part.name] = one = {**_spread(mine),
                                                        **_against(mine, theirs, part.direction, settings)}
                if part.name != main.name:
                    say(_line(scored_metric(part), theirs, one, label, scores.candidate.label, settings.repeats))
    if out_dir is not None:
        _write(out_dir, comparison, base, others)
        say(f"Comparison written to {out_dir / COMPARISON_FILE}; the retrained model to {out_dir / MODEL_FILE}")
    for scores in results:
        scores.model = None
    return comparison


def _against(mine: Sequence[float], theirs: Sequence[float], direction: str,
             settings: RetrainSettings) -> dict[str, Any]:
    """The paired difference of one objective's test scores against the baseline's, and its verdict."""
    differences = [t - b for t, b in zip(mine, theirs)]
    verdict = significance(mine, theirs, direction, settings.alpha, settings.repeats_name, settings.budget_names)
    return {"difference": {"per_seed": differences, "mean": _mean(differences), "std": _std(differences)},
            "significance": verdict, "verdict": verdict["verdict"]}


def _spread(values: Sequence[float]) -> dict[str, Any]:
    return {"test_scores": list(values), "mean": _mean(values), "std": _std(values)}


def _line(metric: str, base: Sequence[float], entry: Mapping[str, Any], label: str, name: str, repeats: int) -> str:
    """``test accuracy: baseline 0.812 ± 0.010 -> tuned 0.850 ± 0.008 (+0.038, 3 seeds) [trial 4]: better (...)``;
    a model measure by its name alone (``params: baseline ...``): it is measured, not scored on test."""
    return (f"{_named(metric)}: baseline {_fmt(_mean(base))} ± {_fmt(_std(base))} -> {label} "
            f"{_fmt(entry['mean'])} ± {_fmt(entry['std'])} ({_fmt(entry['difference']['mean'], '+')}, "
            f"{repeats} seed{'s' if repeats != 1 else ''})"
            + (f" [{name}]" if label == "tuned" else "") + f": {verdict_text(entry['significance'])}")


def _named(metric: str) -> str:
    from archsearch.core.measures import MEASURES

    return metric if metric in MEASURES else f"test {metric}"


def _fmt(value: float, sign: str = "") -> str:
    """Three decimals as before for scores; a measure in the thousands or millions (params) with 4 digits."""
    return f"{value:{sign}.3f}" if not math.isfinite(value) or abs(value) < 1000 else f"{value:{sign}.4g}"


def _repeat(build, space, candidate: Candidate, arrays: Arrays, objective, settings: RetrainSettings) -> Scores:
    scores = Scores(candidate)
    main = main_objective(objective)
    for r in range(settings.repeats):
        tests, metrics, model = train_and_score(build, space, candidate, arrays, objective, settings, r)
        test = tests[main.name]
        scores.test.append(test)
        for name, value in tests.items():
            scores.objectives.setdefault(name, []).append(value)
        validation = objective.value_from(metrics) if metrics else None
        if validation is not None:
            scores.validation.append(validation)
            scores.validation_metrics.append(metrics)
        if r == 0:
            scores.model = model
        else:
            del model
            keras.backend.clear_session(free_memory=False)
        shown = f", {main.name} {validation:.4f}" if validation is not None else ""
        others = "".join(f", {_named(scored_metric(p))} {_fmt(tests[p.name])}" for p in objective_parts(objective)
                         if p.name != main.name)
        say(f"  {candidate.label}: seed {r + 1}/{settings.repeats}, {candidate.epochs} epochs: "
             f"test {scored_metric(objective)} {test:.4f}{others}{shown}")
    return scores


def _summary(scores: Scores, baseline: bool = False) -> dict[str, Any]:
    """A candidate's entry of comparison.json: a tuned one by its trial id, the baseline as ``baseline``
    (its seeds are keyed by the first tuned trial's id, ``seeded_as_trial``, so the difference is paired)."""
    c = scores.candidate
    key = {"label": "baseline", "seeded_as_trial": c.trial_id} if baseline else {"label": c.label,
                                                                                "trial": c.trial_id}
    entry: dict[str, Any] = {**key, "values": to_plain(c.values), "epochs": c.epochs, "epochs_from": c.epochs_from,
                             "test_scores": scores.test, "mean": _mean(scores.test), "std": _std(scores.test)}
    if c.search_score is not None:
        entry["search_score"] = c.search_score
    if scores.validation:
        entry["validation_scores"] = scores.validation  # the best epoch's objective, as the search scores
        entry["validation_metrics"] = scores.validation_metrics
    return entry


def _write(out_dir: Path, comparison: dict[str, Any], base: Scores, others: list[Scores]) -> None:
    from archsearch.core.atomic import atomic_path, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    saved = [(out_dir / "baseline.keras", base.model)]
    if others:
        saved.append((out_dir / MODEL_FILE, others[0].model))
    if len(others) > 1:
        saved += [(out_dir / f"trial_{s.candidate.trial_id:04d}" / MODEL_FILE, s.model) for s in others]
    for path, model in saved:
        with atomic_path(path, 4 * model.count_params()) as tmp:
            model.save(tmp)
    write_text(out_dir / COMPARISON_FILE, json.dumps(comparison, indent=2) + "\n")


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _std(values: Sequence[float]) -> float:
    """The sample standard deviation (0 for one value)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


# ------------------------------------------------------------------ what to retrain


def ranked_trials(trials, objective) -> list:
    """Completed trials with a finite score, best first; a Pareto search's front from its knee outwards
    (the knee is what ``best/`` holds and what a retrain takes by default)."""
    if objective.is_pareto:
        from archsearch.core.pareto import FrontView

        return FrontView.of(trials, objective).knee_first()
    done = [t for t in trials if t.status == "completed" and t.value is not None and math.isfinite(t.value)]
    return sorted(done, key=lambda t: (-t.value if objective.direction == "max" else t.value, t.id))


def retrainable(trials, objective) -> list:
    """The trials ``trial_id=`` may name: completed with a finite score (a Pareto search's: every objective)."""
    if objective.is_pareto:
        from archsearch.core.pareto import scored_trials

        return scored_trials(trials, objective)[0]
    return [t for t in trials if t.status == "completed" and t.value is not None and math.isfinite(t.value)]


def trial_candidate(trial, epochs: int | None, default_epochs: int) -> Candidate:
    """A stored trial, trained for ``epochs`` or else for what it trained in the search (its budget)."""
    source = "retrain.epochs" if epochs else "its budget in the search" if trial.budget else "trainer.epochs"
    return Candidate(f"trial {trial.id}", dict(trial.hparams), int(epochs or trial.budget or default_epochs),
                     trial.id, float(trial.value), source)


def read_values(path: Any, field_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values from a YAML file: ``best/hparams.yaml`` (its ``values``) or a plain name: value mapping.

    Returns (values, the whole record) so ``epochs`` and ``trial`` of an exported record can be used.
    """
    import yaml

    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise ConfigError(field_name, f"{file} does not exist", "point it at a YAML file such as <run>/best/hparams.yaml")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(field_name, f"{file} is not valid YAML ({exc})") from None
    values = data.get("values", data) if isinstance(data, Mapping) else None
    if not isinstance(values, Mapping) or not values:
        raise ConfigError(field_name, f"{file} holds no hyperparameter values",
                          "write name: value lines, or pass a best/hparams.yaml")
    return dict(values), dict(data)


def check_names(candidate: Candidate, space, field_name: str) -> None:
    """Values the space does not declare would be silently dropped by the builder: refused by name."""
    unknown = sorted(set(candidate.values) - set(space.space.keys()))
    if unknown:
        raise ConfigError(field_name, f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
                          f"in the search space ({', '.join(space.space.keys())})", "fix or remove the name")


def baseline_candidate(declared: Mapping[str, Any] | None, baseline_file: Any, epochs: int,
                       trial_id: int) -> tuple[Candidate, str]:
    """The baseline (``baseline=<file>``, the family's ``model.baseline``, or the space's defaults) and a
    note saying which."""
    same = "those of the first tuned candidate"
    if baseline_file not in (None, ""):
        values, _ = read_values(baseline_file, "baseline")
        return Candidate("baseline", values, epochs, trial_id, epochs_from=same), \
            f"Baseline: the values in {baseline_file}"
    if declared:
        return Candidate("baseline", dict(declared), epochs, trial_id, epochs_from=same), \
            f"Baseline: the family's declared model.baseline {dict(declared)}"
    return Candidate("baseline", {}, epochs, trial_id, epochs_from=same), \
        "Baseline: the search space's default values (this model config declares no model.baseline)"


# ------------------------------------------------------------------ the Python API


def retrain(tuner, x, y, *, x_test, y_test, validation_data: tuple | None = None, baseline: Mapping | None = None,
            top_k: int = 1, repeats: int = RetrainOptions.repeats, epochs: int | None = RetrainOptions.epochs,
            use_validation: bool = RetrainOptions.use_validation, alpha: float = ALPHA, out_dir: str | Path | None = None
            ) -> dict[str, Any]:
    """Retrain a finished search's ``top_k`` best trials and ``baseline`` (default: the space's default
    values) on ``x``/``y`` (plus ``validation_data``), ``repeats`` seeds each; score on ``x_test``/``y_test``.
    A Pareto search's best trials are its front from the knee outwards, and every objective is scored.

    ``validation_data`` is needed with ``use_validation=False`` (for the best epoch); with
    ``use_validation=True`` it is trained on.  Writes ``<directory>/<project>/retrain/`` unless
    ``out_dir`` says elsewhere.  Each tuned entry says whether it beats the baseline beyond the noise of
    the seeds (a paired t-test at significance level ``alpha``).  Returns the comparison (as
    ``comparison.json``).
    """
    alpha = check_alpha(alpha, "alpha")
    x, y = np.asarray(x), np.asarray(y)
    x_val, y_val = (np.asarray(validation_data[0]), np.asarray(validation_data[1])) if validation_data else \
        (x[:0], y[:0])
    if not use_validation and not len(x_val):
        raise ConfigError("validation_data", "is needed with use_validation=False (the best epoch is chosen on it)",
                          "pass validation_data=(x_val, y_val) or use_validation=True")
    best = ranked_trials(tuner.oracle.trials.values(), tuner.objective)[: max(1, int(top_k))]
    if not best:
        raise ConfigError("tuner", "holds no completed trial to retrain", "run tuner.search(...) first")
    trainer = tuner.trainer
    tuned = [trial_candidate(t, epochs, trainer.epochs) for t in best]
    base = Candidate("baseline", dict(baseline or {}), tuned[0].epochs, tuned[0].trial_id,
                     epochs_from=f"those of {tuned[0].label}")
    check_names(base, tuner.oracle.hyperparameters, "baseline")
    settings = RetrainSettings(repeats=int(repeats), use_validation=bool(use_validation), seed=trainer.seed,
                               data_seed=int(trainer.seed or 0), batch_size=trainer.batch_size,
                               early_stopping=None, verbose=trainer.verbose, alpha=alpha,
                               repeats_name="repeats", budget_names="max_trials, epochs")
    arrays = Arrays(x, y, x_val, y_val, np.asarray(x_test), np.asarray(y_test))
    target = Path(out_dir) if out_dir is not None else tuner.project_dir / RESULTS_DIR
    return compare(tuner.runner.build, tuner.oracle.hyperparameters, tuned, base, arrays, tuner.objective, settings,
                   target)
