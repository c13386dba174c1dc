"""A program that crashes after its first epoch: a trial archsearch must report as *failed*, with the exit
status and the last lines of its output (the traceback), not as a trial with a poor metric.

It prints one metric line, then raises, so Python prints a traceback on stderr and exits with status 1.
Arguments (``--name=value``) are accepted and ignored, so it runs under any search space.
"""

import sys


def load_batch(step: int) -> None:
    raise RuntimeError(f"corrupt record in shard {step} (simulated failure)")


if __name__ == "__main__":
    print(f"got {len(sys.argv) - 1} arguments", flush=True)
    print("epoch=1 loss=0.5", flush=True)
    load_batch(2)
