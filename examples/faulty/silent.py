"""A program that runs to the end (exit status 0) but never reports a metric: archsearch must report the
trial as *metric-unavailable*, saying where it looked, not as completed nor hang waiting for a value.

Its lines hold no ``name=value`` or ``name: value`` pair, it writes no hypertune file, no TensorBoard event
and calls no client. Arguments are accepted and ignored, so it runs under any search space.
"""

import sys

if __name__ == "__main__":
    print(f"got {len(sys.argv) - 1} arguments", flush=True)
    for epoch in range(1, 4):
        print(f"epoch {epoch} of 3 done", flush=True)
    print("training finished, nothing reported", flush=True)
