"""bench/whole.py --quick runs end to end and prints every figure (no asserts on the figures: they are printed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "whole.py"

S = r"\d+\.\d+ s"
FIGURES = [
    rf"^  sweep       pair 1: wall +{S}  CPU +{S}  sweep \S+ finished: 6 trials",
    rf"^  handwritten pair 1: wall +{S}  CPU +{S}  best val_accuracy \d\.\d+ in trial \d+ \(\d+\.\ds training\)$",
    rf"^  median wall: sweep {S}, hand-written {S} -> \d+\.\d+x \(target <= 0.9x",
    rf"^  median CPU:  sweep {S}, hand-written {S} -> \d+\.\d+x \(target <= 1.1x\)$",
    r"^at the end: load average",
]


def test_bench_quick_prints_every_figure(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "SWEEP_STORAGE")}
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    for line in FIGURES:
        assert re.search(line, done.stdout, flags=re.MULTILINE), f"missing {line!r} in:\n{done.stdout}"
