"""A program that says its configuration cannot work, e.g. a model too big for the device: archsearch
records the trial as *infeasible*, which is not a failure (it never counts towards maxFailedTrials) and
tells the tuner to avoid such values.

Two ways, as documented for any program:

* ``--via=exit`` (default): exit with status 77 (``archsearch.command.EXIT_INFEASIBLE``), the reason on stderr;
* ``--via=client``: call ``archsearch.report_infeasible(reason)`` and exit 0.

Other arguments are accepted and ignored, so it runs under any search space.
"""

import argparse
import sys

EXIT_INFEASIBLE = 77  # archsearch.command.EXIT_INFEASIBLE; a plain number, so this way needs no import
REASON = "the model needs more memory than the device has (simulated)"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--via", choices=["exit", "client"], default="exit")
    args, ignored = parser.parse_known_args()
    print(f"got {len(ignored)} other arguments", flush=True)
    if args.via == "client":
        import archsearch

        archsearch.report_infeasible(REASON)
        sys.exit(0)
    print(f"infeasible: {REASON}", file=sys.stderr, flush=True)
    sys.exit(EXIT_INFEASIBLE)
