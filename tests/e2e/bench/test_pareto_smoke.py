"""bench/pareto.py --quick runs end to end and prints every figure (no asserts on the figures: they are printed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "pareto.py"

NUMBER = r"[\d,]+(?:\.\d+)?(?:e[+-]?\d+)?"
FIGURES = [
    r"^pruning on several curves: built-in trainer, 8 trials, TPE seeds 0\.\.0$",
    rf"^ +0 \| +{NUMBER} \| +{NUMBER} \| +-?{NUMBER}% \| +\d+ \| +{NUMBER} \| +{NUMBER} \| +({NUMBER}|nan) \| "
    rf"+{NUMBER} s / +{NUMBER} s$",
    rf"^median epochs saved: -?{NUMBER}%; median hypervolume ratio \(pruned / none\): ({NUMBER}|nan)",
    rf"^the front at 200 trials: \d+ members in {NUMBER} ms \(SweepStudy.front\); all plots {NUMBER} s, "
    r"pareto_front.svg made: True$",
]


@pytest.mark.slow
def test_bench_quick_prints_every_figure(tmp_path):
    figure = tmp_path / "fronts.png"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--figure", str(figure)], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    for line in FIGURES:
        assert re.search(line, done.stdout, flags=re.MULTILINE), f"missing {line!r} in:\n{done.stdout}"
    assert figure.read_bytes().startswith(b"\x89PNG")
