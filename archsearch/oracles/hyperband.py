"""Hyperband (Li et al., JMLR 2018): many cheap trials, the best trained further.

Each bracket (see :mod:`archsearch.oracles.successive_halving`) starts ``n``
new configurations at a small budget, waits for the round to finish, keeps the
best ``1/factor`` and trains them to the next budget, until ``max_epochs``.
Brackets run from the most exploratory (many configurations, 1 epoch) to
plain random search at the full budget, ``hyperband_iterations`` times.

Two plans size the brackets (``schedule``): ``"keras_tuner"`` is KerasTuner's
``Hyperband`` (larger rounds, budgets rounded up: ``max_epochs=4, factor=3``
runs 10 trials and 26 epochs), the default of this class as KerasTuner code
builds it (``kt.oracles.HyperbandOracle(...)``, ``kt.Hyperband(...)``);
``"archsearch"`` is the paper's table (6 trials and 14 epochs there), the
default of :func:`archsearch.oracles.create_oracle`, of the command line
(``tuner.schedule``) and of BOHB.  See
:mod:`archsearch.oracles.successive_halving` for the arithmetic.  Under
KerasTuner's plan a trial's ``hyperparameters`` also hold KerasTuner's
``tuner/epochs``, ``tuner/initial_epoch``, ``tuner/bracket``, ``tuner/round``
and, for a continued trial, ``tuner/trial_id`` (its parent's id), as
KerasTuner's Hyperband puts them there (:meth:`HyperbandOracle.keras_tuner_values`).

A promotion is a *new* trial with the parent's values: ``budget`` is the next
round's epochs, ``resume_from`` the parent's id and ``initial_budget`` the
parent's budget, so the runner continues from the parent's checkpoint
(weights and optimizer state) and trains only the extra epochs.  Its ``info``
holds ``iteration``, ``bracket`` (the paper's ``s``), ``round`` and ``parent``.

Rules worth knowing:

* New configurations come from a scrambled Sobol sequence by default
  (``sampler="sobol"``): each bracket's first round is a batch, and a
  space-filling batch leaves fewer gaps than independent draws.  The gain is
  small (on ``bench/hyperband_bench.py``, over 600 seeds, +0.003 to +0.006
  in mean best score, mostly on unlucky seeds); ``sampler="random"`` gives plain
  pseudo-random draws.
* Only completed trials are promoted; failed and pruned ones rank last and
  never continue (their checkpoint is missing or stops early).  A round that
  ran fewer trials than planned (space exhausted, failures) promotes
  ``max(1, ran // factor)`` at most, never more than the plan.  Under
  KerasTuner's plan a round promotes its plan's number (fewer if fewer
  completed), and running out of new configurations ends the search once the
  running trials are done, as in KerasTuner (its ``populate_space`` answers
  ``STOPPED``): nothing more is promoted.
* ``ask()`` returns None while the current round waits for running trials.
  If *every* started bracket is waiting, the next bracket starts meanwhile, so
  parallel workers stay busy; a sequential search never hits that case and
  runs brackets strictly one after another.
* :meth:`checkpoints_to_keep` names the trials whose checkpoints a future
  promotion may still resume from; everything else can be deleted.
* ``promotion="curve"`` ranks a round by the learning-curve model's predicted score at ``max_epochs``
  (:mod:`archsearch.oracles.learning_curves`) instead of the current score (``"rank"``, the default:
  on the crossing curves of ``bench/quality_bench.py`` the model's order did not do better here).
* In a Pareto search a round keeps its best ``1/factor`` in MO-ASHA's order:
  non-dominated rank, then crowding distance (see :mod:`archsearch.oracles.asha`).

Subclassing (BOHB): override :meth:`HyperbandOracle._new_configuration` to
change how *new* configurations are proposed; brackets, promotions,
checkpoints and restore stay as they are.  An override may read
``self.trials`` (each with ``budget``, ``value``, ``status``, ``info``) and
``self._current_budget`` (the budget the new configuration will be trained
to), must return values not yet tried (``self.is_new``) and return None when
it cannot find any; ``super()._new_configuration()`` gives a Sobol/random
draw (e.g. for BOHB's random fraction).  If it keeps its own state from results, override
``_on_result`` and call ``super()._on_result(trial)`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ConfigError
from archsearch.oracles.base import COMPLETED, INTERRUPTED, RUNNING, Oracle, Proposal, Trial, register_oracle
from archsearch.oracles.learning_curves import CurveModel, check_promotion
from archsearch.oracles.random import MAX_DRAWS_PER_ASK
from archsearch.oracles.successive_halving import ARCHSEARCH, KERAS_TUNER, Bracket, check_schedule, check_settings
from archsearch.oracles.successive_halving import schedule_brackets
from archsearch.oracles.unit_points import UnitPoints


@dataclass
class BracketRun:
    """A bracket being run: which trials each round holds and who is still to be promoted."""

    iteration: int
    plan: Bracket
    members: list[list[int]]
    round: int = 0
    new_left: int = 0
    to_promote: list[int] = field(default_factory=list)
    done: bool = False

    @property
    def last_round(self) -> int:
        return len(self.plan.rounds) - 1


@register_oracle("hyperband")
class HyperbandOracle(Oracle):
    """Hyperband with checkpoint resume; see the module docstring for the rules."""

    # create_oracle (the command line, benchmarks) keeps archsearch's plan unless told otherwise, so
    # searches stored before the choice existed resume with the plan they started with.
    engine_defaults = {"schedule": ARCHSEARCH}

    def __init__(
        self,
        hyperparameters=None,
        objective=None,
        max_epochs: int = 100,  # kt.Hyperband's; conf/tuner/hyperband.yaml's 9 fits a CPU (tests/test_defaults.py)
        factor: int = 3,
        min_epochs: int = 1,
        hyperband_iterations: int = 1,
        sampler: str = "sobol",
        schedule: str = KERAS_TUNER,  # kt.Hyperband's plan in Python; the command line runs the paper's
        promotion: str = "rank",  # or "curve"; measured no better here (bench/RESULTS.md, issue 29)
        **kwargs: Any,
    ) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        self.schedule_name = check_schedule(schedule)
        self.promotion = check_promotion(promotion)
        self.points = UnitPoints(sampler, self.seed, self.rng)
        self.max_epochs, self.factor, self.min_epochs = check_settings(max_epochs, factor, min_epochs)
        if isinstance(hyperband_iterations, bool) or not _is_int(hyperband_iterations) or int(hyperband_iterations) < 1:
            raise ConfigError("tuner.hyperband_iterations", f"must be a whole number >= 1, got {hyperband_iterations!r}")
        self.hyperband_iterations = int(hyperband_iterations)
        self.schedule: list[Bracket] = schedule_brackets(self.schedule_name, self.max_epochs, self.factor,
                                                         self.min_epochs)
        self._plan: list[tuple[int, Bracket]] = [
            (it, b) for it in range(self.hyperband_iterations) for b in self.schedule
        ]
        self.brackets: list[BracketRun] = []  # started brackets, in order
        self._space_exhausted = False
        self._proposing: BracketRun | None = None
        self._current_budget: int | None = None
        budgets = sorted({r.budget for b in self.schedule for r in b.rounds})
        self.curves = CurveModel(self.hyperparameters, self.objective, budgets, self.max_epochs)

    # ------------------------------------------------------------ the plan
    @property
    def total_epochs(self) -> int:
        """Epochs the whole search will train (promotions train only their extra epochs)."""
        return self.hyperband_iterations * sum(b.epochs for b in self.schedule)

    @property
    def total_trials(self) -> int:
        """Trials the whole search will run, promotions included."""
        return self.hyperband_iterations * sum(b.num_trials for b in self.schedule)

    # ------------------------------------------------------------ proposing
    def _new_configuration(self) -> dict[str, Any] | None:
        """Values for a configuration never tried before, or None when none can be found.

        Hyperband draws from the Sobol sequence (or at random); BOHB overrides this with its model.
        """
        for _ in range(MAX_DRAWS_PER_ASK):
            values = self.hyperparameters.sample(self.rng, unit=self.points.next(len(self.hyperparameters.space)))
            if self.is_new(values):
                return values
        return None

    def _propose(self) -> Proposal | None:
        if self._stopped_as_keras_tuner():
            return None
        self._advance_all()
        for run in self.brackets:
            proposal = self._step(run)
            if proposal is not None:
                return proposal
        # Every started bracket is done or waiting for running trials: start the next one.
        while len(self.brackets) < len(self._plan) and not self._stopped_as_keras_tuner():
            iteration, plan = self._plan[len(self.brackets)]
            run = BracketRun(iteration, plan, [[] for _ in plan.rounds], new_left=plan.num_new_trials)
            self.brackets.append(run)
            proposal = self._step(run)
            if proposal is not None:
                return proposal
        return None

    def _step(self, run: BracketRun) -> Proposal | None:
        """The bracket's next trial; a second try follows when running out of new values decided a round."""
        for _ in range(2):
            if run.done or self._stopped_as_keras_tuner():
                return None
            proposal = self._next_from(run)
            if proposal is not None:
                return proposal
            self._advance(run)
        return None

    def _next_from(self, run: BracketRun) -> Proposal | None:
        """The bracket's next trial to hand out, or None while it waits (or is over)."""
        current = run.plan.rounds[run.round]
        if run.round == 0 and run.new_left > 0 and not self._space_exhausted:
            self._current_budget = current.budget
            values = self._new_configuration()
            self._current_budget = None
            if values is None:
                self._space_exhausted = True
                run.new_left = 0
                return None
            run.new_left -= 1
            self._proposing = run
            return Proposal(values, budget=current.budget, initial_budget=0, info=self._info(run, None))
        if run.to_promote:
            parent = self.trials[run.to_promote.pop(0)]
            self._proposing = run
            return Proposal(
                dict(parent.hparams),
                budget=current.budget,
                resume_from=parent.id,
                initial_budget=int(parent.budget if parent.budget is not None else 0),
                info=self._info(run, parent.id),
            )
        return None

    def _info(self, run: BracketRun, parent: int | None) -> dict[str, Any]:
        return {"iteration": run.iteration, "bracket": run.plan.s, "round": run.round, "parent": parent}

    def _on_ask(self, trial: Trial) -> None:
        run, self._proposing = self._proposing, None
        if run is not None:
            run.members[run.round].append(trial.id)

    # ------------------------------------------------------------ results
    def _on_result(self, trial: Trial) -> None:
        self._advance_all()

    def _advance_all(self) -> None:
        for run in self.brackets:
            self._advance(run)

    def _advance(self, run: BracketRun) -> None:
        """Decide every round whose trials are all done: promote the best, or close the bracket."""
        while not run.done:
            if run.round == 0 and run.new_left > 0 and not self._space_exhausted:
                return  # still starting configurations
            if run.to_promote:
                return  # still handing out promotions
            members = [self.trials[i] for i in run.members[run.round]]
            if any(not t.done for t in members):
                return  # waiting for running trials
            if run.round == run.last_round:
                run.done = True
                return
            ranked = self._ranked(members)
            if self.promotion == "curve" and not self.objective.is_pareto:
                ranked = self.curves.rank(self.trials, ranked, run.plan.rounds[run.round].budget)
            keep = self._num_promoted(run, len(members), len(ranked))
            if keep == 0:
                run.done = True
                return
            run.round += 1
            run.to_promote = [t.id for t in ranked[:keep]]

    def _num_promoted(self, run: BracketRun, ran: int, completed: int) -> int:
        """How many of the round's ``completed`` trials (of ``ran``) go on to the next round."""
        planned = run.plan.rounds[run.round + 1].num_trials
        if self.schedule_name == KERAS_TUNER:
            return min(planned, completed)
        return min(planned, max(1, ran // self.factor), completed)

    def _stopped_as_keras_tuner(self) -> bool:
        """KerasTuner's Hyperband stops for good when it cannot draw a new configuration."""
        return self.schedule_name == KERAS_TUNER and self._space_exhausted

    def _ranked(self, trials: list[Trial]) -> list[Trial]:
        """Completed trials, best first (ties: older first); failed and pruned ones are left out.

        In a Pareto search, best first is MO-ASHA's order (:func:`~archsearch.core.pareto.ranked_trials`):
        non-dominated rank, then crowding distance within the rank, so a round keeps the front first.
        """
        if self.objective.is_pareto:
            from archsearch.core.pareto import ranked_trials  # moocore: loaded by Pareto searches only

            return ranked_trials(trials, self.objective)
        scored = [t for t in trials if t.status == COMPLETED and t.value is not None]
        return sorted(scored, key=lambda t: (-self.objective.sign * t.value, t.id))

    def _algorithm_finished(self) -> bool:
        if self._stopped_as_keras_tuner():
            return True
        self._advance_all()
        if not all(run.done for run in self.brackets):
            return False
        return len(self.brackets) == len(self._plan) or self._space_exhausted

    # ------------------------------------------------------------ checkpoints
    def checkpoints_to_keep(self) -> set[int]:
        """Trials whose checkpoints a promotion may still resume from.

        That is, in every unfinished bracket: the trials of the current round
        (unless it is the last) that are running or completed, the parents
        chosen but not yet handed out, and the parents of promoted trials that
        are not done yet (a crash before the child's first checkpoint resumes
        from the parent again).  Trials of a decided round that were not
        promoted, failed and pruned trials, and finished brackets need nothing.
        """
        keep: set[int] = set()
        if self._stopped_as_keras_tuner():
            return keep  # nothing will be promoted again
        for run in self.brackets:
            if run.done:
                continue
            keep.update(run.to_promote)
            for trial_id in run.members[run.round]:
                trial = self.trials[trial_id]
                if run.round < run.last_round and trial.status in (RUNNING, INTERRUPTED, COMPLETED):
                    keep.add(trial_id)
                if trial.resume_from is not None and not trial.done:
                    keep.add(trial.resume_from)
        return keep

    # ------------------------------------------------------------ KerasTuner's view
    def keras_tuner_values(self, trial: Trial) -> dict[str, Any]:
        """What KerasTuner's Hyperband adds to a trial's values (under its plan; nothing under archsearch's).

        ``tuner/epochs`` is the epoch to train to, ``tuner/initial_epoch`` the one training starts
        from (the parent's budget, as planned), ``tuner/bracket`` and ``tuner/round`` where the trial sits and,
        for a continued trial, ``tuner/trial_id`` the id of the trial whose weights it continues.
        """
        if self.schedule_name != KERAS_TUNER or trial.budget is None or "bracket" not in trial.info:
            return {}
        values: dict[str, Any] = {}
        initial = 0
        if trial.resume_from is not None:
            values["tuner/trial_id"] = str(trial.resume_from)
            parent = self.trials.get(trial.resume_from)
            # The plan's, as KerasTuner gives it: a run_trial that keeps its own models continues from there.
            initial = int(parent.budget if parent is not None and parent.budget is not None else trial.initial_budget)
        values.update({"tuner/epochs": int(trial.budget), "tuner/initial_epoch": initial,
                       "tuner/bracket": int(trial.info["bracket"]), "tuner/round": int(trial.info["round"])})
        return values

    def promotable(self, trial_id: int) -> bool:
        """Whether ``trial_id``'s checkpoint may still be resumed from."""
        return int(trial_id) in self.checkpoints_to_keep()


def _is_int(value: Any) -> bool:
    try:
        return float(value).is_integer()
    except (TypeError, ValueError):
        return False
