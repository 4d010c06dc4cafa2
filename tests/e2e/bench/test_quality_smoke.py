"""bench/quality.py --quick runs end to end and prints every figure (no asserts on the figures: they are printed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "quality.py"

NUMBER = r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"
FIGURES = [
    r"^sweep quality: 12 trials, TPE seeds 0-1, --jobs 1,2, no pruner$",
    r"^code: \S+ \(.+\); sweep imported from \S+/sweep/__init__\.py$",
    r"^objective: rotated quadratic over x, y, z in \[-5, 5\] \(float\), minimum 0 at \(1\.3, -2\.1, 0\.7\)$",
    *(rf"^--jobs {jobs} seed {seed}: regret {NUMBER}, distinct \d+/12 \({NUMBER}%\)(, \d+ not complete)?, "
      rf"{NUMBER} s$" for jobs in (1, 2) for seed in (0, 1)),
    r"^jobs \| median regret \| regret min-max over seeds \| median distinct \| median wall$",
    *(rf"^ +{jobs} \| +{NUMBER} \| +{NUMBER} - {NUMBER} \| +{NUMBER}% \| +{NUMBER} s$" for jobs in (1, 2)),
    rf"^--jobs 2: median regret {NUMBER} within the --jobs 1 spread {NUMBER} - {NUMBER}: (yes|no, (below|above) it "
    r"\((better|worse)\)); distinct 100% in every seed: (yes|no) \(fewest \d+/12, seed [01]\) \(target: yes and yes\)$",
]


@pytest.mark.slow
def test_bench_quick_prints_every_figure(tmp_path):
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    for figure in FIGURES:
        assert re.search(figure, done.stdout, flags=re.MULTILINE), f"missing {figure!r} in:\n{done.stdout}"
