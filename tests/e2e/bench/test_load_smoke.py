"""bench/load.py --quick runs end to end and prints its SUMMARY block (figures are printed, never asserted)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "load.py"

MS = r"\d+\.\d ms"
SUMMARY_LINES = [
    r"^machine: \d+ CPUs; at the start: load average",
    rf"^\[tpe\] 200 trials: total wall \d+\.\d s, trainer \d+\.\d s, overhead {MS}/trial incl\. start-up "
    r"\(\d+\.\d\d s until sweep_started\) and end \(\d+\.\d\d s after the last trial, of which plots here "
    r"\d+\.\d\d s; then the background publisher's plots, model and parent end: \d+\.\d\d s more\)$",
    # every part of the overhead timed (a wrapper whose target left sweep/ makes the bench exit with its name)
    rf"^\[tpe\] trials 1-10: wall {MS}/trial, trainer {MS}/trial -> overhead -?{MS}/trial = sampler {MS}, "
    rf"census {MS}, dead workers {MS}, run-id wait {MS}, journal writes {MS}, other -?{MS}$",
    rf"^\[tpe\] trials 191-200: wall {MS}/trial, trainer {MS}/trial -> overhead -?{MS}/trial = sampler {MS}, ",
    r"^\[tpe\] overhead per trial, trials 191-200 / trials 1-10: -?\d+\.\d\dx \(target <= 1\.3x\); "
    r"without the sampler's time: -?\d+\.\d\dx$",
    r"^\[tpe\] peak RSS, main process: \d+ MiB during this sweep .*ru_maxrss \d+ MiB",
    r"^\[tpe\] peak RSS, tracking process: \d+ MiB .*RUSAGE_CHILDREN\)\.ru_maxrss \d+ MiB after join\(\)",
    r"^\[tpe\] RSS while it ran \(VmRSS after trial n\): main \d+ MiB @10 -> .* @200; tracking \d+ MiB @10 ",
    r"^\[tpe\] stores at the end: sweep\.journal \d+\.\d MB, mlflow\.db \d+\.\d MB, mlruns/ \d+\.\d MB$",
    r"^`sweep best` on the 200-trial sweep: median wall \d+\.\d\d s of 5 subprocess runs .*\(target <= 0\.5 s\)$",
    r"^`sweep ls` on the 200-trial sweep: median wall \d+\.\d\d s of 5 subprocess runs",
    r"^reading it, in-process: .*opening the journal \(replaying [\d,]+ lines\) \d+\.\d\d s",
    r"^at the end: load average",
]


@pytest.mark.slow
def test_load_quick_prints_the_summary(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "SWEEP_STORAGE")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=240,
                          cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "\nSUMMARY\n" in done.stdout, done.stdout
    summary = done.stdout.split("\nSUMMARY\n", 1)[1]
    for line in SUMMARY_LINES:
        assert re.search(line, summary, flags=re.MULTILINE), f"missing {line!r} in:\n{summary}"
    assert "FAILED" not in summary, summary
    assert list(tmp_path.iterdir()) == [], "the benchmark left files in its working folder"
