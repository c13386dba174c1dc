"""The ``archsearch`` console script's command line, for people who never used Hydra.

``archsearch --spec hptuning_config.yaml -- python train.py --data d/`` runs the cloud service's spec over
the program after ``--``; it composes the same config as ``python -m archsearch spec=hptuning_config.yaml
trial=command trial.command='python train.py --data d/'``, and any ``key=value`` override may come before
``--``.  Without ``--`` it is ``python -m archsearch`` itself (``archsearch --help`` is its help).  The
entry point is ``archsearch.__main__:console_main``, which hands these arguments to the same ``main``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

USAGE = """usage: archsearch [key=value ...] [--spec FILE] [--space FILE] [-- PROGRAM [ARG ...]]

  --spec FILE    the cloud tuning service's spec (trainingInput.hyperparameters or studySpec)
  --space FILE   a YAML file of parameters (archsearch's declarative space)
  -- PROGRAM ... the training program each trial runs, with the trial's values added as --name=value
  key=value      any archsearch/Hydra override (tuner=asha, tuner.max_trials=20, objective=val_loss, ...)
  python -m archsearch --help lists the config groups and keys."""


def hydra_quoted(text: str) -> str:
    """``text`` as one quoted value of Hydra's override grammar."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def hydra_arguments(argv: Sequence[str]) -> list[str]:
    """This script's arguments as ``python -m archsearch``'s."""
    args = list(argv)
    program: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, program = args[:cut], args[cut + 1:]
    out: list[str] = []
    options = {"--spec": "spec", "--space": "space"}
    i = 0
    while i < len(args):
        arg = args[i]
        name, _, value = arg.partition("=")
        if name in options:
            if not value:
                if i + 1 >= len(args):
                    raise SystemExit(f"archsearch: error: {name} needs a file\n{USAGE}")
                i += 1
                value = args[i]
            out.append(f"{options[name]}={value}")
        else:
            out.append(arg)
        i += 1
    if program:
        out = ["trial=command", f"trial.command={hydra_quoted(shlex.join(program))}", *out]
    elif "--" in argv:
        raise SystemExit(f"archsearch: error: no program after --\n{USAGE}")
    return out
