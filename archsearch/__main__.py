"""``python -m archsearch``: the Hydra entry point, kept thin.

Compose the config, run the search, and report user errors as one clear line
(exit status 2) instead of a traceback; Ctrl-C stops cleanly (exit 130).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from archsearch.errors import ArchsearchError  # noqa: E402


def _config_dir() -> str:
    """conf/ ships inside the wheel as archsearch/conf; in a checkout it is the repository's conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


def _stop_on_sigterm(signum, frame):  # pragma: no cover - exercised by the reliability tests
    raise KeyboardInterrupt


@hydra.main(version_base=None, config_path=_config_dir(), config_name="config")
def _main(cfg: DictConfig) -> None:
    from archsearch.app import run

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        run(cfg)
    except ArchsearchError as exc:
        print(f"archsearch: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("archsearch: interrupted; finished trials are kept (continue with resume=<run folder>)",
              file=sys.stderr, flush=True)
        sys.exit(130)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
