"""bench/parallel.py --sleeping --quick runs end to end and prints every figure (no asserts on the figures: they are
printed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "parallel.py"

NUMBER = r"-?\d+(?:\.\d+)?"
FIGURES = [
    rf"^load average {NUMBER} at the start, \d+ cores; trials sleep 0\.2 s ",
    *(rf"^--jobs {jobs}: {trials} trials, wall {NUMBER} s, CPU {NUMBER} s \(({NUMBER}|nan) s per trial while trials "
      rf"ran\), first trial {NUMBER} s after the launch$" for jobs, trials in ((1, 4), (2, 8))),
    r"^jobs \| trials \| +wall \| +ideal \| overhead \| +CPU \| +CPU/trial \| steady CPU/trial \| first trial "
    r"\| worker start$",
    rf"^ +1 \| +4 \| +{NUMBER} s \| +0\.8 s \| +{NUMBER}% \| +{NUMBER} s \| +{NUMBER} s \| +({NUMBER}|nan) s \| "
    rf"+{NUMBER} s \| +-$",
    rf"^ +2 \| +8 \| +{NUMBER} s \| +0\.8 s \| +{NUMBER}% \| +{NUMBER} s \| +{NUMBER} s \| +({NUMBER}|nan) s \| "
    rf"+{NUMBER} s \| +{NUMBER} s$",
    r"^load average .* at the end; targets: overhead <= 20% at --jobs 4 over 200 trials",
]


@pytest.mark.slow
def test_bench_sleeping_quick_prints_every_figure(tmp_path):
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, str(BENCH), "--sleeping", "--quick"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    for figure in FIGURES:
        assert re.search(figure, done.stdout, flags=re.MULTILINE), f"missing {figure!r} in:\n{done.stdout}"
