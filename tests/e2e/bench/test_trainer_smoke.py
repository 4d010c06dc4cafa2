"""bench/trainer.py --quick runs end to end and prints every figure (no timed asserts: figures are printed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "trainer.py"

FIGURES = [
    r"^synthetic corpus: 5,000 documents, 5,000-word vocabulary",
    r"^features: 3,500 x [\d,]+ train matrix, [\d,]+ non-zeros",
    r"^trainer seconds per epoch: \d+\.\d+ s",
    r"^trainer products: X\.w \d+\.\d+ s \+ X\^T\.g \d+\.\d+ s",
    r"^scipy CSR products: X\.w \d+\.\d+ s \+ X\^T\.g \d+\.\d+ s = \d+\.\d+ s",
    r"^ratio trainer epoch / scipy two products: \d+\.\d+x \(target <= 3x",
    r"^peak RSS: \d+ MiB \(target <= 1024 MiB\)",
    r"^best settings: lr=\S+ epochs=\d+ vocab_size=\d+ l2=\S+ ngrams=[12]$",
    r"^trainer: validation accuracy 0\.\d{3}, test accuracy 0\.\d{3}",
    r"^scikit-learn LogisticRegression \(C=\S+, same features\): validation accuracy 0\.\d{3}, test accuracy 0\.\d{3}",
    r"^test accuracy gap, scikit-learn minus trainer: [+-]\d+\.\d points",
]


@pytest.mark.slow
def test_bench_quick_prints_every_figure(tmp_path):
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    for figure in FIGURES:
        assert re.search(figure, done.stdout, flags=re.MULTILINE), f"missing {figure!r} in:\n{done.stdout}"
