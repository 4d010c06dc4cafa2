"""`sweep run --jobs 2` with `resources: {gpus: 1}` and a fake device list: each worker saw its own device."""

from __future__ import annotations

import collections
import subprocess
from pathlib import Path

import pytest

from tests.support import e2e

TRAINER = '''
import os
import time
from pathlib import Path


def fit(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    Path(trial.params["meeting"], str(os.getpid())).touch()  # both workers run trials, whichever starts first
    deadline = time.monotonic() + 120
    while len(list(Path(trial.params["meeting"]).iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"score": x, "gpu": float(os.environ["CUDA_VISIBLE_DEVICES"])}
'''


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_two_jobs_each_get_their_own_gpu_from_cuda_visible_devices(tmp_path: Path):
    (tmp_path / "train.py").write_text(TRAINER, encoding="utf-8")
    (tmp_path / "meeting").mkdir()
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                               f"trials: 4\nresources: {{gpus: 1}}\nfixed: {{meeting: {tmp_path / 'meeting'}}}\n")
    result = subprocess.run([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "gpus", "--jobs", "2"],
                            cwd=tmp_path, env={**e2e.env(), "CUDA_VISIBLE_DEVICES": "3,7"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    seen: dict[str, set[float]] = collections.defaultdict(set)
    for trial in e2e.study(tmp_path, "gpus").trials:
        seen[trial.user_attrs["sweep.worker"]].add(trial.user_attrs["sweep.metrics"]["gpu"])
    assert sorted(seen.values(), key=min) == [{3.0}, {7.0}], seen
