"""A program that reports one metric and then never ends (a deadlocked data loader, a stuck collective):
archsearch must stop it at ``trial.timeout`` (status *timeout*) with SIGTERM, then SIGKILL after the grace
period, and keep the metric it saw.

It keeps Python's default SIGTERM handling, so it dies at once on SIGTERM. Arguments are accepted and
ignored, so it runs under any search space.
"""

import sys
import time

if __name__ == "__main__":
    print(f"got {len(sys.argv) - 1} arguments", flush=True)
    print("epoch=1 loss=0.5", flush=True)
    while True:
        time.sleep(3600)
