"""``python -m archsearch``: the Hydra entry point, kept thin.

Compose the config, run the search, and report user errors as one clear line
(exit status 2) instead of a traceback; Ctrl-C stops cleanly (exit 130).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
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


def _echo_to_console_and_log() -> Callable[[str], None]:
    """Print progress lines and copy them into Hydra's log file (the console already shows them once)."""
    file_log = logging.getLogger("archsearch.progress")
    file_log.propagate = False
    file_log.setLevel(logging.INFO)
    file_log.handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]

    def echo(line: str) -> None:
        print(line, flush=True)
        file_log.info(line)

    return echo


@hydra.main(version_base=None, config_path=_config_dir(), config_name="config")
def _main(cfg: DictConfig) -> None:
    from archsearch.app import run
    from archsearch.config import run_folder

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    echo = _echo_to_console_and_log()
    folder: object = "<run folder>"
    try:
        folder = run_folder(cfg)
        run(cfg, echo=echo)
    except ArchsearchError as exc:
        logging.getLogger("archsearch.progress").error("error: %s", exc)
        print(f"archsearch: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"archsearch: interrupted; finished trials are kept (continue with resume={folder})",
              file=sys.stderr, flush=True)
        sys.exit(130)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
