"""bench/overhead.py --quick runs end to end and prints its SUMMARY block (figures are printed, never asserted)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "overhead.py"

SUMMARY_LINES = [
    r"^one training \(bundled corpus, median of \d+\): smallest \d+\.\d ms",
    r"^\(s\) sweep, run_sweep in-process, 10 trials: total wall \d+\.\d+ s, trainer \d+\.\d+ s, "
    r"overhead \d+\.\d ms/trial incl\. start-up, steady \d+\.\d ms/trial",
    r"^\(a\) MLflow guide: nested start_run loop, 10 trials: total wall .* steady \d+\.\d ms/trial",
    r"^\(a\) MLflow guide: nested start_run loop: ratio a/\(s\) overhead: \d+\.\d+x incl\. start-up, \d+\.\d+x steady",
    r"^\(b\) optuna-integration MLflowCallback(, 10 trials: total wall .*|: skipped: .*)$",
    r"^\(c\) mlflow\.optuna\.MlflowStorage(, 10 trials: total wall .*|: skipped: .*)$",
    r"^\(s\) trainer time \d+\.\d ms/trial vs \(a\) \d+\.\d ms/trial",
    r"^\(s\) steady overhead at 10 trials: \d+\.\d ms/trial \(target <= 10 ms at 50 trials\)",
    r"^\(s\) `sweep run --trials 10 --config FILE` as a subprocess: wall \d+\.\d+ s",
    r"^`sweep best` on the 10-trial sweep: median wall \d+\.\d+ s of 5 subprocess runs \(target <= 0\.5 s\)$",
    r"^`optuna best-trial .*",
    r"^`mlflow runs list --experiment-id \S+` \(reference, once\): wall \d+\.\d+ s",
    r"^pruning saving: skipped$",
    r"^\(f\) sweep, fit\(trial\) function trainer, 10 trials: total wall \d+\.\d+ s, .* steady \d+\.\d ms/trial",
    r"^\(f\) with mlflow: active, 10 trials: total wall \d+\.\d+ s, .* steady \d+\.\d ms/trial",
    r"^per-trial steady overhead, built-in vs function trainer: \(s\) \d+\.\d ms, \(f\) \d+\.\d ms: "
    r"\(f\)/\(s\) \d+\.\d+x \(target within 10%",
    r"^\(b\) MLflowCallback / \(f\) function trainer(, steady overhead: \d+\.\d+x \(target >= 3x|: skipped)",
    r"^mlflow: active adds -?\d+\.\d ms/trial steady to \(f\)",
]


@pytest.mark.slow
def test_overhead_quick_prints_the_summary(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    # (c) MlflowStorage is the slowest contender and the one least likely to break: the smoke test skips it
    quick = ["--quick", "--skip-mlflow-storage", "--command-trials", "2"]
    done = subprocess.run([sys.executable, str(BENCH), *quick], capture_output=True, text=True, timeout=240,
                          cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "\nSUMMARY\n" in done.stdout, done.stdout
    summary = done.stdout.split("\nSUMMARY\n", 1)[1]
    for line in SUMMARY_LINES:
        assert re.search(line, summary, flags=re.MULTILINE), f"missing {line!r} in:\n{summary}"
    assert "FAILED" not in summary, summary
    assert list(tmp_path.iterdir()) == [], "the benchmark left files in its working folder"
