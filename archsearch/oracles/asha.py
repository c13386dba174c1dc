"""ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020).

Past 400 lines, most of them this docstring: the rule, its Pareto form, restore and the checkpoint bound
are one piece of bookkeeping (the rungs), and the learning-curve models it asks live in their own modules.

Asynchronous successive halving: the rungs of successive halving without its
synchronisation.  Synchronous Hyperband (:mod:`archsearch.oracles.hyperband`)
decides a round only when every trial of it is done, so parallel workers wait
for the slowest trial of a round; ASHA decides every time a worker is free
(every :meth:`~archsearch.oracles.base.Oracle.ask`), so no worker waits while a
new configuration can still be started, and the best configurations reach
``max_epochs`` early instead of at the end of a bracket.

Rungs
    ``min_epochs * factor**k`` epochs for ``k = 0 .. s_max - 1``, then
    ``max_epochs`` (the top rung), where ``s_max`` is the largest ``s`` with
    ``min_epochs * factor**s <= max_epochs``: ``max_epochs=9, factor=3`` gives
    1, 3, 9; ``max_epochs=10`` gives 1, 3, 10 (never a 9 -> 10 step); when
    ``min_epochs * factor > max_epochs`` the only rung is ``max_epochs`` (plain
    random search, as Hyperband's single bracket would be).  A trial
    belongs to the rung of its ``budget``; only done trials (completed, failed,
    pruned) are counted in a rung, running ones join it when they report.

The rule, at every ``ask()``
    For ``k`` from the rung below the top down to 0: the candidates of rung
    ``k`` are its best ``floor(n_k / factor)`` trials (``n_k`` done trials
    there, the paper's rule; failed and pruned ones rank last and are never
    candidates) that were never promoted.  The best candidate of the highest
    rung that has one is promoted: a *new* trial with the parent's values,
    ``resume_from`` = the parent's id, ``initial_budget`` = the parent's budget
    and ``budget`` = the next rung, so the runner continues from the parent's
    checkpoint (weights and optimizer state) and trains only the extra epochs,
    exactly like a Hyperband promotion.  Without a candidate, a new
    configuration starts at rung 0 (``budget = min_epochs``).  Ties go to the
    older trial, so a search is deterministic given its seed.  A trial is
    promoted at most once: as soon as a trial names it in ``resume_from``
    (running, done or failed) it is out.  ``info`` holds ``bracket`` (always 0:
    ASHA is one bracket with minimum early-stopping rate 0), ``round`` and
    ``rung`` (both the rung index) and ``parent``.

    "Best" in a rung below the top is, by default (``promotion="curve"``), the predicted score at
    ``max_epochs`` of :class:`~archsearch.oracles.learning_curves.CurveModel` (a Gaussian process over
    configuration and epoch fitted on every trial's curve), once 3 configurations went past the rung;
    until then, and for trials without a score, the current score, as ``promotion="rank"`` (the
    paper's rule) always does.  In a Pareto search, the predicted final cost *vectors* in MO-ASHA's
    order (see below).  Where curves cross (fast starters that end
    poorly) this keeps the slow configurations that end best; since the model's order can change with
    every result, a rung may promote more than its ``1/factor`` over a search, and the checkpoint
    bound below keeps every completed, never-promoted trial below the top until the search ends.

    New configurations: a ``random_fraction`` share (default 1/3) is drawn as ``sampler`` says; the rest
    are the best of 64 random draws by the model's upper confidence bound on the final score, once a
    configuration reached ``max_epochs`` (random draws before that; ``random_fraction=1`` is the paper's
    ASHA).  In a Pareto search, the best of 256 random draws by the expected hypervolume improvement of
    their predicted final costs over the front of the trials trained to ``max_epochs``, once two did
    (:mod:`archsearch.oracles.pareto_curves`).  :attr:`num_model_configurations` counts them.

    Ray Tune's ``ASHAScheduler`` only *stops* trials at the rungs and never
    resumes a stopped one; this oracle promotes, as the paper describes: a
    trial is trained to a rung, stops, and may later continue from its
    checkpoint when it turns out to be in the top ``1/factor``.

The end
    ``max_trials`` counts *new configurations* (as a Hyperband user thinks of
    a search's size), promotions do not count; ``max_epochs_total`` caps the
    epochs trained, each promotion counting only its extra epochs.  Whichever
    comes first stops new configurations; promotions still go on while any
    remain.  ``max_epochs_total`` is a hard cap: no trial starts whose epochs
    do not fit into what is left (a running trial is charged its whole budget
    from the moment it starts, a pruned one only the epochs it trained, a
    failed one its whole budget), so a search never trains more than it
    allows; a promotion that no longer fits gives way to the next candidate
    that does.  ``finished`` is true when nothing is running and nothing can
    start.  With neither limit the search runs until the space is used up
    (sensible only for small spaces).  :attr:`total_epochs` is
    ``max_epochs_total`` (or None), for the "spent/total" progress line.
    Because ``max_trials`` does not count every trial here, the base class's
    ``self.max_trials`` (which does) stays None; the limit is
    :attr:`max_configurations`.  An interrupted trial still counts (it is
    continued, not replaced).  How many promotions a search makes depends on
    the order of results: usually about ``n_k / factor`` per rung, more when
    later configurations keep beating earlier ones.

Pareto search (MO-ASHA, Schmucker et al. 2021)
    With a :class:`~archsearch.core.objective.ParetoObjective` "best" in a rung is NSGA-II's order
    (:func:`archsearch.core.pareto.ranked_trials`): non-dominated rank, then crowding distance within
    the rank (the most isolated first: the ends of a front are infinitely isolated), then the older
    trial.  The candidates are still the top ``floor(n_k / factor)``, so a rung goes on with its
    front first, spread along it, and a dominated trial is never promoted ahead of a non-dominated
    one.  A trial's vector at a rung is what it was told with after the rung's budget: every
    objective, the measures taken after training (``latency_ms``) included, since each rung is a
    trial's end.  With ``promotion="curve"`` (the default) the order is taken on the *predicted final*
    vectors once the curve models can say (:class:`~archsearch.oracles.pareto_curves.ParetoCurves`:
    a curve model per objective that moves with epochs, a model measure such as ``params`` as it is),
    so a fast starter is not promoted ahead of the slow configurations that end better; with
    ``promotion="rank"`` (the paper's MO-ASHA) on the vectors the trials have now, and the checkpoint
    bound counts the trials that *dominate* a trial instead of those ranked above it (a later trial
    can change crowding and ranks, never dominance).  New configurations come from the same models
    (above).  On ``bench/pareto_mf_bench.py`` they raise the hypervolume at 2700 epochs from 0.4566 to
    0.4763 (held-out median; the model's new configurations do most of it: ``bench/RESULTS.md``,
    "MO-ASHA with curve models").

Restore
    All bookkeeping (rungs, who was promoted, epochs charged, configurations
    started) is recomputed from ``self.trials`` at each ask; the only other
    state is the seeded random stream of new configurations.  Replaying the
    store's asks and tells (:meth:`Oracle.restore`) therefore rebuilds the
    search exactly, trials that were running when it stopped included (they
    stay running and are continued first by the driver), and it stays right
    even where a replayed proposal was overruled by the stored trial.

Checkpoints
    :meth:`checkpoints_to_keep` names the trials a promotion may still resume
    from: running trials below the top rung, the parents of running
    promotions (a crash before the child's first checkpoint resumes from the
    parent again), and every completed, never-promoted trial below the top
    whose rank in its rung can still make the top ``1/factor``, given the most
    trials that rung can ever hold (bounded through ``max_trials`` and
    ``max_epochs_total``; without either limit every such trial is kept).
    Trials ranked above a trial stay above it, so a trial with ``r`` completed
    trials above it can only be promoted if ``r < floor(n_final / factor)``.
    Rung 0 holds at most its trials plus the configurations that may still
    start; rung ``k + 1`` at most its trials plus the promotions rung ``k`` can
    still make: its current candidates once nothing more can reach rung ``k``,
    else ``n_k - (factor - 1)`` less those already made (not ``n_k / factor``:
    a promoted trial can drop out of the top as better ones arrive, freeing
    its slot; but a trial in the top always has ``factor - 1`` trials below).

Like every oracle this module knows nothing of Keras (numpy only): oracles
only see numbers, so the algorithm can be tested and benchmarked on
simulated learning curves with simulated parallel workers in milliseconds
(``tests/test_asha.py``), and a future parallel executor can drive it as is.
"""

from __future__ import annotations

import math
from typing import Any

from archsearch.errors import ConfigError
from archsearch.oracles.base import (
    COMPLETED,
    INTERRUPTED,
    PRUNED,
    RUNNING,
    Oracle,
    Proposal,
    Trial,
    register_oracle,
)
from archsearch.oracles.learning_curves import CANDIDATES, CurveModel, check_promotion, check_random_fraction
from archsearch.oracles.random import MAX_DRAWS_PER_ASK
from archsearch.oracles.successive_halving import check_settings, max_bracket
from archsearch.oracles.unit_points import UnitPoints

ACTIVE = (RUNNING, INTERRUPTED)  # an interrupted trial is continued first when the search resumes


def rung_budgets(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[int]:
    """``[min_epochs * factor**k for k < s_max] + [max_epochs]``: the epochs of each rung, bottom first."""
    max_epochs, factor, min_epochs = check_settings(max_epochs, factor, min_epochs)
    s_max = max_bracket(max_epochs, factor, min_epochs)
    return [min_epochs * factor**k for k in range(s_max)] + [max_epochs]


@register_oracle("asha")
class ASHAOracle(Oracle):
    """Asynchronous successive halving with promotions; see the module docstring for the rules."""

    def __init__(
        self,
        hyperparameters=None,
        objective=None,
        max_epochs: int = 100,  # as kt.Hyperband's; conf/tuner/asha.yaml's 9 and 27 trials fit a CPU
        factor: int = 3,
        min_epochs: int = 1,
        max_trials: int | None = None,
        max_epochs_total: int | None = None,
        sampler: str = "random",
        promotion: str = "curve",
        random_fraction: float = 1 / 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(hyperparameters, objective, max_trials=None, **kwargs)
        self.promotion = check_promotion(promotion)
        self.random_fraction = check_random_fraction(random_fraction)
        self.points = UnitPoints(sampler, self.seed, self.rng)
        self.max_epochs, self.factor, self.min_epochs = check_settings(max_epochs, factor, min_epochs)
        self.rungs: list[int] = rung_budgets(self.max_epochs, self.factor, self.min_epochs)
        self.max_configurations = _limit(max_trials, "tuner.max_trials", 1)
        self.max_epochs_total = _limit(max_epochs_total, "tuner.max_epochs_total", self.min_epochs)
        self._space_exhausted = False
        self.num_model_configurations = 0  # new configurations the curve model chose
        self.curves = CurveModel(self.hyperparameters, self.objective, self.rungs, self.max_epochs)
        self.pareto_curves = self._pareto_curves() if self.objective.is_pareto else None

    def _pareto_curves(self):
        from archsearch.oracles.pareto_curves import ParetoCurves  # moocore: loaded by Pareto searches only

        return ParetoCurves(self.hyperparameters, self.objective, self.rungs, self.max_epochs)

    # ------------------------------------------------------------ the plan
    @property
    def total_epochs(self) -> int | None:
        """The epoch budget (``max_epochs_total``), or None without one."""
        return self.max_epochs_total

    @property
    def top(self) -> int:
        """Index of the top rung (``max_epochs``)."""
        return len(self.rungs) - 1

    def rung_of(self, trial: Trial) -> int | None:
        """The rung a trial is trained to, or None if its budget is not a rung of this search."""
        try:
            return self.rungs.index(int(trial.budget))
        except (TypeError, ValueError):
            return None

    # ------------------------------------------------------------ accounting
    def epochs_charged(self, trial: Trial) -> int:
        """Epochs a trial counts against ``max_epochs_total``: its whole budget unless it was pruned."""
        planned = max(0, int(trial.budget or 0) - int(trial.initial_budget))
        if trial.status == PRUNED and trial.intermediate:
            return min(planned, max(0, max(trial.intermediate) - int(trial.initial_budget)))
        return planned

    def epochs_committed(self) -> int:
        """Epochs trained or being trained (running trials count their whole budget)."""
        return sum(self.epochs_charged(t) for t in self.trials.values())

    def num_configurations(self) -> int:
        """New configurations started so far (promotions excluded)."""
        return sum(1 for t in self.trials.values() if t.resume_from is None)

    def _epochs_left(self) -> float:
        if self.max_epochs_total is None:
            return math.inf
        return self.max_epochs_total - self.epochs_committed()

    def _may_start_new(self, epochs_left: float) -> bool:
        if self._space_exhausted:
            return False
        if self.max_configurations is not None and self.num_configurations() >= self.max_configurations:
            return False
        return self.min_epochs <= epochs_left

    # ------------------------------------------------------------ rungs and candidates
    def _ranked(self, trials: list[Trial]) -> list[Trial]:
        """Best first; failed and pruned (and value-less) trials last; ties: older first.

        In a Pareto search, best first is MO-ASHA's order (:func:`~archsearch.core.pareto.ranked_trials`):
        non-dominated rank, then crowding distance within the rank.
        """
        if self.objective.is_pareto:
            from archsearch.core.pareto import ranked_trials  # moocore: loaded by Pareto searches only

            ranked = ranked_trials(trials, self.objective)
            ids = {t.id for t in ranked}
            return ranked + sorted((t for t in trials if t.id not in ids), key=lambda t: t.id)
        sign = self.objective.sign

        def key(t: Trial):
            scored = t.status == COMPLETED and t.value is not None
            return (0, -sign * t.value, t.id) if scored else (1, 0.0, t.id)

        return sorted(trials, key=key)

    def _rung_members(self) -> tuple[list[list[Trial]], list[int], set[int]]:
        """Done trials of each rung (ranked), running trials per rung, and the ids already promoted."""
        done: list[list[Trial]] = [[] for _ in self.rungs]
        active = [0 for _ in self.rungs]
        promoted: set[int] = set()
        for t in self.trials.values():
            if t.resume_from is not None:
                promoted.add(int(t.resume_from))
            k = self.rung_of(t)
            if k is None:
                continue
            if t.status in ACTIVE:
                active[k] += 1
            elif t.done:
                done[k].append(t)
        return [self._rung_ranked(k, members) for k, members in enumerate(done)], active, promoted

    @property
    def by_curves(self) -> bool:
        """Whether rungs below the top are ranked by the learning-curve models (``promotion="curve"``)."""
        return self.promotion == "curve"

    def _rung_ranked(self, k: int, members: list[Trial]) -> list[Trial]:
        """A rung's done trials, best first: by predicted final score below the top when the model can say."""
        ranked = self._ranked(members)
        if k < self.top and self.by_curves and len(members) >= self.factor:  # else the rung promotes no one
            model = self.pareto_curves or self.curves
            return model.rank(self.trials, ranked, self.rungs[k])
        return ranked

    @staticmethod
    def _promotable(t: Trial, promoted: set[int]) -> bool:
        return t.status == COMPLETED and t.value is not None and t.id not in promoted

    def _candidates(self) -> list[tuple[int, Trial]]:
        """Promotion candidates in the order the rule takes them: highest rung first, best first."""
        done, _, promoted = self._rung_members()
        out: list[tuple[int, Trial]] = []
        for k in range(self.top - 1, -1, -1):
            members = done[k]
            for t in members[: len(members) // self.factor]:
                if self._promotable(t, promoted):
                    out.append((k, t))
        return out

    def _promotion(self, epochs_left: float) -> tuple[int, Trial] | None:
        for k, parent in self._candidates():
            if self.rungs[k + 1] - int(parent.budget) <= epochs_left:
                return k, parent
        return None

    # ------------------------------------------------------------ proposing
    def _new_configuration(self) -> dict[str, Any] | None:
        """Values never tried before; None when none can be found.

        Outside the ``random_fraction`` share, and once the curve model knows enough full-budget results,
        the candidate with the best upper confidence bound on its final score among :data:`CANDIDATES`
        random draws (in a Pareto search: the largest expected hypervolume improvement of its predicted
        final costs); otherwise drawn like RandomSearchOracle draws them (Sobol or random).
        """
        # The model is asked only once it can choose, so until then the draws are the paper's ASHA's.
        model = self.pareto_curves or self.curves
        if (self.random_fraction < 1.0 and model.can_propose(self.trials)
                and self.rng.random() >= self.random_fraction):
            values = self._model_configuration()
            if values is not None:
                self.num_model_configurations += 1
                return values
        return self._drawn_configuration()

    def _model_configuration(self) -> dict[str, Any] | None:
        count = CANDIDATES if self.pareto_curves is None else self.pareto_curves.candidates
        candidates = [v for v in (self.hyperparameters.sample(self.rng) for _ in range(count)) if self.is_new(v)]
        if self.pareto_curves is not None:
            best = self.pareto_curves.best_candidate(self.trials, candidates, self.reference_costs)
        else:
            best = self.curves.best_candidate(self.trials, candidates)
        return None if best is None else candidates[best]

    def _drawn_configuration(self) -> dict[str, Any] | None:
        for _ in range(MAX_DRAWS_PER_ASK):
            values = self.hyperparameters.sample(self.rng, unit=self.points.next(len(self.hyperparameters.space)))
            if self.is_new(values):
                return values
        return None

    def _propose(self) -> Proposal | None:
        left = self._epochs_left()
        chosen = self._promotion(left)
        if chosen is not None:
            k, parent = chosen
            return Proposal(
                dict(parent.hparams),
                budget=self.rungs[k + 1],
                resume_from=parent.id,
                initial_budget=int(parent.budget),
                info=self._info(k + 1, parent.id),
            )
        if self._may_start_new(left):
            values = self._new_configuration()
            if values is not None:
                return Proposal(values, budget=self.rungs[0], initial_budget=0, info=self._info(0, None))
            self._space_exhausted = True
        return None

    @staticmethod
    def _info(rung: int, parent: int | None) -> dict[str, Any]:
        return {"bracket": 0, "round": rung, "rung": rung, "parent": parent}

    def _algorithm_finished(self) -> bool:
        """Called only when nothing runs: finished when no promotion and no new configuration can start."""
        left = self._epochs_left()
        return self._promotion(left) is None and not self._may_start_new(left)

    # ------------------------------------------------------------ checkpoints
    def checkpoints_to_keep(self) -> set[int]:
        """Trials whose checkpoints a promotion may still resume from (see the module docstring)."""
        done, active, promoted = self._rung_members()
        running = [t for t in self.trials.values() if t.status in ACTIVE]
        if self.by_curves and not running and self._algorithm_finished():
            return set()  # the model's ranking only moves with new results: none will come
        keep: set[int] = set()
        for t in running:
            if t.resume_from is not None:
                keep.add(int(t.resume_from))
            k = self.rung_of(t)
            if k is not None and k < self.top:
                keep.add(t.id)
        # Epochs a running trial may still give back (if it is pruned): an optimistic budget.
        left = self._epochs_left() + sum(self.epochs_charged(t) for t in running)
        # The most done trials each rung can ever hold.
        if self._space_exhausted:
            future_new = 0.0
        else:
            future_new = math.inf
            if self.max_configurations is not None:
                future_new = max(0, self.max_configurations - self.num_configurations())
            if self.max_epochs_total is not None:
                future_new = min(future_new, max(0, left) // self.min_epochs)
        most = len(done[0]) + active[0] + future_new  # the most done trials rung k can ever hold
        for k in range(self.top):
            slots = most // self.factor if math.isfinite(most) else math.inf
            closed = most == len(done[k])  # nothing runs there and nothing more can arrive
            completed = 0  # completed trials ranked above, which stay above whatever comes later
            promoted_here = 0
            candidates = 0
            above = self._dominated_by(done[k]) if self.objective.is_pareto else None
            for t in done[k]:
                if t.status != COMPLETED or t.value is None:
                    continue
                ahead = completed if above is None else above[t.id]
                if t.id in promoted:
                    promoted_here += 1
                elif (ahead < slots or self.by_curves) and self.rungs[k + 1] - int(t.budget) <= left:
                    keep.add(t.id)
                    candidates += 1
                completed += 1
            if closed:  # exactly the current candidates (kept above) can still go up
                future = candidates
            else:
                # Promotions out of rung k can exceed its slots (a promoted trial may drop out of the top
                # as better ones arrive), but never reach its factor - 1 worst trials: a trial in the top
                # floor(n / factor) always has at least factor - 1 trials below it.
                future = max(0, most - (self.factor - 1) - promoted_here)
            most = len(done[k + 1]) + active[k + 1] + future
        return keep

    def _dominated_by(self, members: list[Trial]) -> dict[int, int]:
        """For each completed trial of a rung, how many of the rung's completed trials dominate it.

        In a Pareto search a later trial can change a trial's place (crowding, or a rank that moves
        when a dominating trial arrives), but never make a dominating trial stop dominating it: a trial
        dominated by ``d`` trials is always behind at least ``d``, the bound the checkpoints keep to.
        """
        from archsearch.core.pareto import dominates, scored_trials

        kept, costs = scored_trials(members, self.objective)
        return {t.id: sum(dominates(other, costs[i]) for other in costs) for i, t in enumerate(kept)}

    def promotable(self, trial_id: int) -> bool:
        """Whether ``trial_id``'s checkpoint may still be resumed from."""
        return int(trial_id) in self.checkpoints_to_keep()


def _limit(value: Any, field: str, minimum: int) -> int | None:
    """A whole-number limit of at least ``minimum``, or None."""
    if value is None:
        return None
    try:
        ok = not isinstance(value, bool) and float(value).is_integer()
    except (TypeError, ValueError):
        ok = False
    if not ok or int(float(value)) < minimum:
        raise ConfigError(field, f"must be a whole number >= {minimum} or null, got {value!r}")
    return int(float(value))
