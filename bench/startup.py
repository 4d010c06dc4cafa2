"""How long a user waits for the first sign of life: `sweep run`'s first line and `sweep ui`'s URL.

    python bench/startup.py [--runs 3] [--code PATH] [--quick]

Each run is a real subprocess of the `sweep` console script in a fresh folder on the embedded stores. `sweep run
--trials 2` (the built-in trainer's default config): seconds from the launch to its first line on stdout, and to
its exit. `sweep ui` on that finished sweep (a free port): seconds from the launch to the line with the URL (the
MLflow server started and answering, the sweep's shared view written through it), then Ctrl-C, and the seconds
until it has exited. Medians over `--runs`, each figure beside its target (issue 24: first line <= 1 s, URL <= 5 s).
`--code PATH` runs another checkout's `sweep` (the before figure); `--quick` (one run) checks that it runs.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # `python bench/startup.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

from bench.common import check_code, child_env, code_env, load, tool

RUNS = 3
TARGET_FIRST_LINE = 1.0
TARGET_URL = 5.0
WAIT_SECONDS = 300.0  # a bound for a broken run, never reached by a working one


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_line_of_run(folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds to `sweep run`'s first stdout line, seconds to its exit)."""
    started = time.perf_counter()
    process = subprocess.Popen([tool("sweep") or "sweep", "run", "--trials", "2"], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.readline()
    first = time.perf_counter() - started
    _, err = process.communicate(timeout=WAIT_SECONDS)
    if process.returncode != 0:
        raise SystemExit(f"sweep run failed (exit {process.returncode}): {err.strip()[-500:]}")
    return first, time.perf_counter() - started


def url_of_ui(folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds to `sweep ui`'s URL line, seconds from Ctrl-C to its exit)."""
    started = time.perf_counter()
    process = subprocess.Popen([tool("sweep") or "sweep", "ui", "--port", str(free_port())], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("MLflow UI: http"):
                break
        else:
            raise SystemExit(f"sweep ui printed no URL: {process.stderr.read() if process.stderr else ''}")
        url = time.perf_counter() - started
        process.send_signal(signal.SIGINT)
        stopping = time.perf_counter()
        process.wait(timeout=WAIT_SECONDS)
        return url, time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--code", type=Path, help="run this checkout's sweep (the before figure)")
    parser.add_argument("--quick", action="store_true", help="one run: a smoke test")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    print(f"start-up: `sweep run --trials 2` and `sweep ui`, {runs} run(s) each; {load()}")
    if args.code is not None:
        print(check_code(args.code))
    env = code_env(args.code) if args.code is not None else child_env()
    figures: dict[str, list[float]] = {"run first line": [], "run exit": [], "ui URL": [], "ui stop": []}
    for index in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="sweep-bench-startup-"))
        try:
            first, end = first_line_of_run(folder, env)
            url, stop = url_of_ui(folder, env)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for name, value in zip(figures, (first, end, url, stop), strict=True):
            figures[name].append(value)
        print(f"  run {index + 1}: first line {first:.2f} s, exit {end:.2f} s; ui URL {url:.2f} s, "
              f"stopped {stop:.2f} s after Ctrl-C", flush=True)
    targets = {"run first line": TARGET_FIRST_LINE, "ui URL": TARGET_URL}
    print("SUMMARY")
    for name, values in figures.items():
        target = f" (target <= {targets[name]:.0f} s)" if name in targets else ""
        print(f"  {name}: median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"
              f"{target}")
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()
