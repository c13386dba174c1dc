"""The default search against its family's baseline: search, then ``mode=retrain``, over search seeds.

    python bench/default_search_bench.py --seeds 0 1 2 --repeats 3 -- tuner=random tuner.max_trials=6

runs ``python -m archsearch <overrides> tuner.seed=<s>`` for each seed, then ``mode=retrain
retrain.repeats=<repeats>`` on it, and prints one row per seed (the baseline's and the tuned model's
test scores, the paired difference, the retrain's verdict, the wall times) and the mean over seeds.
Runs are written under ``--out`` (default /tmp/default_search_bench); reports are off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str]) -> float:
    """One CLI run from the repository root; its wall time (a failure stops the bench)."""
    started = time.monotonic()
    env = {**os.environ, "ARCHSEARCH_REPORT": "false"}
    done = subprocess.run([sys.executable, "-m", "archsearch", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="tuner.seed of each search")
    parser.add_argument("--repeats", type=int, default=3, help="retrain.repeats")
    parser.add_argument("--out", default="/tmp/default_search_bench", help="folder of the runs")
    parser.add_argument("--name", default="default", help="sub-folder of this configuration")
    parser.add_argument("overrides", nargs="*", help="the search's overrides (after --)")
    options = parser.parse_args()
    rows = []
    for seed in options.seeds:
        run_dir = Path(options.out) / options.name / f"seed{seed}"
        search = run(["progress=false", *options.overrides, f"tuner.seed={seed}", f"hydra.run.dir={run_dir}",
                      "overwrite=true"])
        retrain = run(["mode=retrain", f"from_run={run_dir}", f"retrain.repeats={options.repeats}"])
        comparison = json.loads((run_dir / "retrain" / "comparison.json").read_text())
        base, tuned = comparison["baseline"], comparison["tuned"][0]
        sign = 1.0 if comparison["direction"] == "max" else -1.0  # a gain is positive for either direction
        rows.append((seed, base["mean"], tuned["mean"], sign * tuned["difference"]["mean"],
                     tuned.get("significance", {}).get("verdict", "?"), tuned.get("trial"), search, retrain))
        print(f"seed {seed}: baseline {base['mean']:.3f} {[round(s, 3) for s in base['test_scores']]} -> tuned "
              f"{tuned['mean']:.3f} {[round(s, 3) for s in tuned['test_scores']]} (trial {tuned.get('trial')}, "
              f"{tuned['difference']['mean']:+.3f}, {rows[-1][4]}); search {search:.0f} s, retrain {retrain:.0f} s",
              flush=True)
    differences = [r[3] for r in rows]
    print(f"{options.name}: mean gain {sum(differences) / len(differences):+.3f} over {len(rows)} searches; "
          f"ahead on {sum(d > 0 for d in differences)}/{len(rows)}, better beyond noise on "
          f"{sum(r[4] == 'better' for r in rows)}/{len(rows)}; mean search {sum(r[6] for r in rows) / len(rows):.0f} s")


if __name__ == "__main__":
    main()
