"""A Pareto search killed with ``kill -9`` and resumed ends with the same front as one never interrupted.

The trials are a tiny deterministic program (``trial=command``): what is checked is the driver, the store,
the oracle's restore (ParEGO's weight draws included) and the front, not training.  The killed search is a
real ``python -m archsearch`` process; the uninterrupted one and the resume run in this process
(tests/cli_inprocess.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from archsearch.core.objective import ParetoObjective
from archsearch.core.pareto import front
from archsearch.core.store import TrialStore

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

# Each epoch waits TRADE_OFF_SECONDS (set for the search that is killed, so the kill lands mid-trial); what it prints
# does not depend on it.
TRADE_OFF = """
import argparse, os, time
p = argparse.ArgumentParser(); p.add_argument('--x', type=float); p.add_argument('--w', type=int)
a = p.parse_args()
for epoch in range(1, 4):
    time.sleep(float(os.environ.get('TRADE_OFF_SECONDS', 0)))
    print(f'epoch={epoch} acc={1 - (a.x - 0.6) ** 2 - 0.1 / epoch + 0.02 * a.w} size={a.w * (1 + a.x)}', flush=True)
"""


def _args(program: Path, run: Path) -> list[str]:
    return ["trial=command", f"trial.command='{PY} {program}'", "executor=inline",
            "space={x: {type: float, min: 0, max: 1}, w: {type: int, min: 1, max: 8}}",
            "objective=[acc:max,size:min]", "search.mode=pareto", "tuner=bayesian", "tuner.max_trials=7",
            "tuner.num_initial_points=3", "tuner.seed=3", f"hydra.run.dir={run}"]


def _trials(run: Path) -> list:
    store = TrialStore.open_read_only(run / "trials.db")
    try:
        return store.trials()
    finally:
        store.close()


def _front(run: Path) -> list[tuple[int, dict, float, float]]:
    objective = ParetoObjective.of(["acc:max", "size:min"])
    return [(t.id, t.hparams, t.metrics["acc"], t.metrics["size"]) for t in front(_trials(run), objective)]


def test_a_pareto_search_killed_and_resumed_ends_with_the_front_of_an_uninterrupted_one(tmp_path, cli_inprocess):
    from test_reliability import wait_for_epoch

    program = tmp_path / "trade_off.py"
    program.write_text(TRADE_OFF)
    whole = tmp_path / "whole"
    result = cli_inprocess(_args(program, whole), whole)
    assert result.returncode == 0, result.stderr[-3000:]

    cut = tmp_path / "cut"
    env = {**os.environ, "ARCHSEARCH_REPORT": "false", "TRADE_OFF_SECONDS": "0.2"}
    proc = subprocess.Popen([PY, "-m", "archsearch", *_args(program, cut)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_epoch(cut / "trials.db", 4, 2, proc)  # a model proposal (after 3 initial points), mid-trial
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    resumed = cli_inprocess([f"resume={cut}"], cut)  # the kill is what needs a process of its own
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = _front(whole)
    assert len(expected) >= 2  # a real trade-off, not one best trial
    assert _front(cut) == expected
    # every trial, the model's proposals after the restore included: the same values, all completed
    assert [(t.id, t.hparams, t.status) for t in _trials(cut)] == [(t.id, t.hparams, t.status) for t in _trials(whole)]
    assert len(_trials(cut)) == 7
