"""Load test: one long sweep on the embedded stores, with a trainer setting fast enough that overhead shows.

    python bench/load.py                      # 2,000 trials, TPE; then `sweep best` and `sweep ls` latency
    python bench/load.py --trials 10000 --sampler random   # the issue-14 run: flat overhead at 10,000 trials
    python bench/load.py --sampler both       # the same with TPE, then with the random sampler
    python bench/load.py --quick              # 200 trials: the smoke test
    python bench/load.py --profile-last 200   # also cProfile the main process over the last 200 trials

run_sweep runs in-process (journal file + MLflow SQLite through the tracking process) in a fresh temporary
folder, with a small search space (lr, epochs 3..8, vocab_size 50..400) and no pruner, so one training takes
a few milliseconds and the sweep's own cost per trial is a large share of the wall time.

Per-trial overhead in a window of trials = (window wall time - trainer seconds inside it) / trials in it. The wall
time comes from a listener's trial_finished timestamps (the first window starts at sweep_started), the trainer
seconds from a timing wrapper around the train() the built-in trainer calls (as bench/overhead.py does). The window
is 1/20 of the trials: 1-100 and 1,901-2,000 of 2,000. The target: overhead at the end within 1.3x of the start
(with TPE: without the sampler's own time, which grows with the study by TPE's design). The overhead is split into
parts by more timing wrappers, put in place for the sweep's length only: the sampler's methods, the census
(Tally.look), the look for dead workers' trials, the wait for each child run id from the tracking process, and the
journal appends; "other" is the rest. TPE's cost grows with the study; the random sampler's does not, so a run with
it isolates the sweep's own orchestration.

Memory: the main process's peak RSS (VmHWM, reset before the sweep; and getrusage(RUSAGE_SELF)), the tracking
process's (its VmHWM from /proc at the last trial, or when run_sweep returns if it is still there; and
getrusage(RUSAGE_CHILDREN) once it has been joined),
and both processes' RSS at a few points during the sweep. At the end: `sweep best` and `sweep ls` latency as
subprocesses in the sweep's folder, and where a read's time goes.

Prints figures only, and a SUMMARY block at the end; it asserts nothing (targets are printed beside figures).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/load.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

from bench.common import (
    FIXED,
    METRIC,
    SAMPLER_SEED,
    TARGET_BEST_SECONDS,
    TRAINER_CALL,
    call_timer,
    child_env,
    describe_space,
    last_line,
    load,
    ms,
    replaced,
    resolve,
    sweep_yaml,
    timed_calls,
    tool,
    trainer_calls,
    versions,
    working_folder,
)

# The spawned tracking process re-imports this file as __mp_main__: only light imports at the top
# (sweep, optuna and mlflow are imported inside the functions that use them).

# -- settings ------------------------------------------------------------------------------------------------
TRIALS = 2000
QUICK_TRIALS = 200
WINDOW_SHARE = 20  # a window is trials / 20: 100 of 2,000, 10 of 200
CLI_RUNS = 5  # `sweep best` and `sweep ls` subprocess runs each; the median is reported
PROFILE_TOP = 25
SAMPLER_METHODS = ("infer_relative_search_space", "sample_relative", "sample_independent", "before_trial",
                   "after_trial")
SAMPLER_MEANING = "time inside the sampler's methods (its reads of the study included)"
SAMPLER_FACTORY = "sweep.study.starting:make_sampler"  # its samplers' methods are timed as the "sampler" part
PARTS = {  # the other timed parts of a trial's overhead: label -> (module:function or module:Class.method, meaning)
    "census": ("sweep.study.census:Tally.look", "Tally.look, the loop's census before each ask (reads only the "
               "unfinished and new trials)"),
    "dead workers": ("sweep.study.sweep_study:fail_dead_trials", "fail_dead_trials, looking for running trials of dead "
                     "workers before each trial"),
    "run-id wait": ("sweep.tracking.client:Recorder.run_id",
                    "waiting for the trial's child run id from the tracking process"),
    "journal writes": ("sweep.study.optuna_internals:JournalFileNoFsync.append_logs", "appends to the journal file"),
}
PLOTS = "sweep.study.sweep_study:study_plots"  # end-of-sweep plots drawn in this process (none: a publisher draws them)

TARGET_RATIO = 1.3  # overhead per trial at the end / at the start (issue 14; with TPE: without the sampler's time)
TARGET_RSS_RATIO = 1.2  # the main process's RSS after the last trial / after the first window: flat memory

SUMMARY: list[str] = []  # every figure, printed again at the end


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # the script's own process and the tracking process it spawns
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help=f"trials per sweep [default: {TRIALS}]")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRIALS} trials: the smoke test")
    parser.add_argument("--sampler", choices=("tpe", "random", "both"), default="tpe",
                        help="tpe (default), random (isolates the orchestration from TPE's growing cost), or both")
    parser.add_argument("--profile-last", type=int, default=0, metavar="N",
                        help="cProfile the main process over the last N trials (inflates the last window's figures)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (their path is printed)")
    args = parser.parse_args()
    trials = args.trials or (QUICK_TRIALS if args.quick else TRIALS)
    if trials < 2:
        parser.error("--trials must be >= 2")
    if not 0 <= args.profile_last <= trials:
        parser.error("--profile-last must be between 0 and --trials")
    samplers = ["tpe", "random"] if args.sampler == "both" else [args.sampler]

    root = Path(tempfile.mkdtemp(prefix="sweep-load-"))
    try:
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {versions()}; {load()}")
        print(f"space: {describe_space()}; fixed {FIXED}; sampler seed {SAMPLER_SEED}; no pruner; "
              f"objective {METRIC}; {trials:,} trials per sweep; stores: journal file + MLflow SQLite")
        SUMMARY.append(f"machine: {os.cpu_count()} CPUs; at the start: {load()}")
        folders = []
        for index, sampler in enumerate(samplers):
            folders.append(one_sweep(trials, sampler, root, profile_last=args.profile_last, first=index == 0))
        cli_latency(folders[0], trials, samplers[0])
        SUMMARY.append(f"at the end: {load()} (other processes on this machine add noise to every figure)")
        print("\nSUMMARY")
        for line in SUMMARY:
            print(line)
    finally:
        if args.keep:
            print(f"temporary folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


# -- memory ----------------------------------------------------------------------------------------------------


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"  # /proc unreadable: not Linux, or the process ended


def proc_status(pid: int | str, field_name: str) -> int | None:
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM), or None (no such process, a zombie, not Linux)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def tracking_process() -> Any:
    """The sweep's tracking process (a multiprocessing child named sweep-tracking), or None."""
    import multiprocessing

    for child in multiprocessing.active_children():
        if child.name == "sweep-tracking":
            return child
    return None


# -- timing wrappers -------------------------------------------------------------------------------------------


class TrialBins:
    """A part's seconds summed per trial (the calls that ended while it ran), as one double a trial: bin 0 holds
    the calls before sweep_started, bin n those that ended after trial n-1 finished and until trial n did, the
    last one those after the last trial. The listener moves to the next bin. Per-call records would grow the
    process this bench measures by a dozen entries a trial."""

    def __init__(self) -> None:
        self.bins = array("d", [0.0])

    def append(self, call: tuple[float, float]) -> None:
        self.bins[-1] += call[1]

    def next(self) -> None:
        self.bins.append(0.0)

    def trials(self, low: int, high: int) -> float:
        """Seconds in trials low+1..high (a window of the listener's trial_finished count)."""
        return sum(self.bins[1 + low:1 + high])

    @property
    def total(self) -> float:
        return sum(self.bins)


class Listener:
    """A no-op progress listener that keeps timestamps, samples RSS and can start/stop a profiler."""

    def __init__(self, samples: set[int], profile_from: int | None, total: int) -> None:
        self.bins: list[TrialBins] = []  # the timed parts: each moves to its next bin as a trial starts counting
        self.started: float | None = None
        self.ends = array("d")
        self.cpu_started: float | None = None  # this process's CPU time (all its threads), at the same moments
        self.cpu_ends = array("d")
        self.tracking: Any = None
        self.rss: dict[int, tuple[int | None, int | None]] = {}  # trial count -> (main, tracking) VmRSS kB
        self.samples = samples
        self.profile_from, self.total = profile_from, total
        self.profiler: Any = None
        self.main_hwm_trials: int | None = None  # this process's VmHWM at the last trial_finished: before the plots
        self.tracking_hwm_trials: int | None = None  # the tracking process's, at the same moment

    def sweep_opening(self, _name: str, _target: int, _resumed: bool) -> None:
        return None  # the stores' opening is timed from sweep_started

    def sweep_started(self, _start: Any) -> None:
        for part in self.bins:
            part.next()
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        self.tracking = tracking_process()

    def finishing(self) -> None:
        return None

    def stopping(self) -> None:
        return None

    def trial_finished(self, _update: Any) -> None:
        for part in self.bins:
            part.next()
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())
        done = len(self.ends)
        if done in self.samples:
            pid = self.tracking.pid if self.tracking is not None else None
            self.rss[done] = (proc_status("self", "VmRSS"), proc_status(pid, "VmRSS") if pid else None)
        if done == self.total:
            self.main_hwm_trials = proc_status("self", "VmHWM")
            if self.tracking is not None:
                self.tracking_hwm_trials = proc_status(self.tracking.pid, "VmHWM")
        if self.profile_from is not None:
            if done == self.profile_from:
                import cProfile

                self.profiler = cProfile.Profile()
                self.profiler.enable()
            elif done == self.total and self.profiler is not None:
                self.profiler.disable()


@contextlib.contextmanager
def part_calls() -> Iterator[dict[str, TrialBins]]:
    """Timing wrappers on the parts of a trial's overhead, each part's seconds per trial keyed by PARTS' label.

    "sampler" wraps the sampler's methods on the instance SAMPLER_FACTORY makes; the others replace a module
    function or a class method for the sweep's length. Every target is resolved before anything runs: one
    that left sweep/ raises MissingTarget with its name.
    """
    for target, _meaning in PARTS.values():
        resolve(target)
    sampler_calls = TrialBins()

    def timed_sampler(make_sampler: Any) -> Any:
        def make(config: Any) -> Any:
            sampler = make_sampler(config)
            for name in SAMPLER_METHODS:
                setattr(sampler, name, call_timer(sampler_calls, getattr(sampler, name)))
            return sampler

        return make

    with contextlib.ExitStack() as stack:
        stack.enter_context(replaced(SAMPLER_FACTORY, timed_sampler))
        found = {"sampler": sampler_calls}
        found.update({label: stack.enter_context(timed_calls(target, TrialBins())) for label, (target, _) in
                      PARTS.items()})
        yield found


# -- the sweep -------------------------------------------------------------------------------------------------


@dataclass
class Window:
    label: str
    trials: int
    wall: float
    trainer: float | None
    parts: dict[str, float]  # seconds inside each part of the overhead, in this window

    @property
    def overhead(self) -> float | None:
        return None if self.trainer is None else (self.wall - self.trainer) / self.trials

    def per_trial(self, part: str) -> float:
        return self.parts[part] / self.trials

    @property
    def without_sampler(self) -> float | None:
        return None if self.overhead is None else self.overhead - self.per_trial("sampler")

    def describe(self) -> str:
        text = f"trials {self.label}: wall {ms(self.wall / self.trials)}/trial"
        if self.trainer is None or self.overhead is None:  # the wrapper saw fewer calls than trials (warned)
            return text + ", trainer n/a (trainer calls and trials do not match)"
        text += f", trainer {ms(self.trainer / self.trials)}/trial -> overhead {ms(self.overhead)}/trial"
        shares = [f"{part} {ms(self.per_trial(part))}" for part in self.parts]
        shares.append(f"other {ms(self.overhead - sum(self.per_trial(part) for part in self.parts))}")
        return text + f" = {', '.join(shares)}"


def publisher_end(storage: str, name: str) -> float:
    """Seconds from now until the sweep's background publisher has written its end (0 when none runs)."""
    from sweep.locations import StorageLocation
    from sweep.publisher_lock import lock_path, wait_until_free

    started = time.perf_counter()
    wait_until_free(lock_path(StorageLocation.parse(storage), name))
    return time.perf_counter() - started


def one_sweep(trials: int, sampler: str, root: Path, *, profile_last: int, first: bool) -> Path:
    from sweep.config import load_config
    from sweep.engine import run_sweep

    tag = f"[{sampler}]"
    print(f"\n== {tag} {trials:,}-trial sweep, run_sweep in-process")
    folder = root / f"{sampler}-{trials}"
    folder.mkdir(parents=True)
    window = max(1, trials // WINDOW_SHARE)
    samples = {window, trials // 2, trials - window, trials}
    profile_from = trials - profile_last if profile_last else None
    listener = Listener(samples, profile_from, trials)
    config = load_config(sweep_yaml(trials, folder, sampler=sampler, experiment="load"), {"trials": trials})
    reset = reset_peak_rss()
    with working_folder(folder), trainer_calls() as trainer, trainer_cpu() as trainer_cpu_seconds, \
            part_calls() as parts, timed_calls(PLOTS) as plotted:
        listener.bins = list(parts.values())
        called = time.perf_counter()
        summary = run_sweep(config, resume=False, listener=listener, publish_later=True)  # as `sweep run` does
        returned = time.perf_counter()
    publisher_seconds = publisher_end(summary.storage, summary.name)
    main_hwm = proc_status("self", "VmHWM") if reset else None
    tracking = listener.tracking
    # it ends as soon as its last reply is through: when run_sweep returns it is usually gone already, so its
    # VmHWM is the larger of the figure at the last trial and the one now, when there still is one
    tracking_now = proc_status(tracking.pid, "VmHWM") if tracking is not None else None
    tracking_hwm = max((hwm for hwm in (listener.tracking_hwm_trials, tracking_now) if hwm is not None), default=None)
    reaped = False
    if tracking is not None:
        tracking.join(30)  # it exits by itself once it has written everything; join() waits for (reaps) it
        reaped = tracking.exitcode is not None
    children_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB on Linux
    self_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    ends = listener.ends
    counts = summary.counts
    print(f"{tag} status {summary.status}: {counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed; "
          f"best {METRIC} {summary.best.value if summary.best else float('nan'):.4f}")
    if len(ends) != trials:
        print(f"{tag} warning: the listener saw {len(ends)} trial_finished calls for {trials} trials; "
              f"window figures use the timestamps it has")
    trainer_total = summary.trainer_seconds or 0.0
    plots_seconds = sum(seconds for _end, seconds in plotted)
    wall = returned - called
    start_up = (listener.started or called) - called
    drain = returned - ends[-1]
    line = (f"{tag} {trials:,} trials: total wall {wall:.1f} s, trainer {trainer_total:.1f} s, overhead "
            f"{ms((wall - trainer_total) / trials)}/trial incl. start-up ({start_up:.2f} s until sweep_started) "
            f"and end ({drain:.2f} s after the last trial, of which plots here {plots_seconds:.2f} s; then the "
            f"background publisher's plots, model and parent end: {publisher_seconds:.2f} s more)")
    print(line)
    SUMMARY.append(line)
    sampler_total = parts["sampler"].total
    line = (f"{tag} the sampler's own time: {sampler_total:.1f} s in all, {ms(sampler_total / trials)}/trial on "
            f"average ({SAMPLER_MEANING})")
    print(line)
    SUMMARY.append(line)

    have_trainer = len(trainer) == len(ends)
    if not have_trainer:
        print(f"{tag} warning: {len(trainer)} trainer calls for {len(ends)} trials; trainer time per window n/a")

    count = len(ends)
    window = min(window, count // 2) or 1
    spans = [(f"1-{window:,}", listener.started if listener.started is not None else called, ends[window - 1],
              0, window),
             (f"{count - window + 1:,}-{count:,}", ends[count - window - 1], ends[-1], count - window, count)]
    windows = []
    for label, begin, end, low, high in spans:
        spent = sum(trainer[low:high]) if have_trainer else None
        windows.append(Window(label, high - low, end - begin, spent,
                              {part: bins.trials(low, high) for part, bins in parts.items()}))
    print(f"{tag} per window: wall from the listener's trial_finished timestamps (the first window starts at "
          f"sweep_started); trainer from a wrapper around sweep.trainers.sentiment.train; the overhead's parts from "
          f"timing wrappers: sampler = {SAMPLER_MEANING}; "
          + "; ".join(f"{part} = {meaning}" for part, (_, meaning) in PARTS.items())
          + "; other = the rest (Optuna's ask/tell bookkeeping and journal reads, the trial loop, queueing "
            "records to the tracking process)")
    profiled = f" (under cProfile from trial {profile_from + 1:,})" if profile_from is not None else ""
    for item in windows:
        line = f"{tag} {item.describe()}" + (profiled if item is windows[-1] else "")
        print(line)
        SUMMARY.append(line)
    start, end = windows
    if start.overhead and end.overhead is not None:
        line = (f"{tag} overhead per trial, trials {end.label} / trials {start.label}: "
                f"{end.overhead / start.overhead:.2f}x (target <= {TARGET_RATIO}x)")
        if start.without_sampler and end.without_sampler is not None:
            line += f"; without the sampler's time: {end.without_sampler / start.without_sampler:.2f}x"
        line += profiled
        print(line)
        SUMMARY.append(line)
    cpu = cpu_windows(listener, trainer_cpu_seconds, window)
    if cpu is not None:
        (first_label, first), (last_label, last) = cpu
        line = (f"{tag} main-process CPU overhead (its CPU time minus train()'s, per trial; moves less with the "
                f"machine's load than wall time; the tracking process is not in it): trials {first_label} "
                f"{ms(first)}/trial, trials {last_label} {ms(last)}/trial -> {last / first:.2f}x" + profiled)
        print(line)
        SUMMARY.append(line)

    how_main = ("VmHWM of /proc/self/status, reset just before run_sweep" if main_hwm is not None
                else "VmHWM reset unavailable")
    line = (f"{tag} peak RSS, main process: {mib(main_hwm)} during this sweep ({how_main}), "
            f"{mib(listener.main_hwm_trials if main_hwm is not None else None)} of it up to the last trial "
            f"(before the end-of-sweep plots); getrusage(RUSAGE_SELF).ru_maxrss {mib(self_maxrss)} "
            f"(whole process life)")
    print(line)
    SUMMARY.append(line)
    children_note = ("the largest child reaped so far" + ("" if first else ", earlier sweeps' tracking processes "
                                                          "included"))
    if not reaped:
        children_note += "; this sweep's tracking process was not reaped yet, so it is not counted"
    line = (f"{tag} peak RSS, tracking process: {mib(tracking_hwm)} (its VmHWM from /proc at the last trial, or when "
            f"run_sweep returned if it was still there); getrusage(RUSAGE_CHILDREN).ru_maxrss {mib(children_maxrss)} "
            f"after join() ({children_note})")
    print(line)
    SUMMARY.append(line)
    points = sorted(listener.rss)
    if points:
        main_rss = " -> ".join(f"{mib(listener.rss[n][0])} @{n:,}" for n in points)
        child_rss = " -> ".join(f"{mib(listener.rss[n][1])} @{n:,}" for n in points)
        line = f"{tag} RSS while it ran (VmRSS after trial n): main {main_rss}; tracking {child_rss}"
        print(line)
        SUMMARY.append(line)
        first, last = listener.rss[points[0]][0], listener.rss[points[-1]][0]
        if first and last:
            line = (f"{tag} main-process RSS after trial {points[-1]:,} / after trial {points[0]:,}: "
                    f"{last / first:.2f}x (target <= {TARGET_RSS_RATIO}x; the bench's own records in it: a few doubles "
                    f"a trial)")
            print(line)
            SUMMARY.append(line)
    sizes = {name: (folder / name).stat().st_size for name in ("sweep.journal", "mlflow.db")
             if (folder / name).exists()}
    artifacts = sum(path.stat().st_size for path in (folder / "mlruns").rglob("*") if path.is_file()) \
        if (folder / "mlruns").exists() else 0
    line = (f"{tag} stores at the end: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items())
            + f", mlruns/ {artifacts / 1e6:.1f} MB")
    print(line)
    SUMMARY.append(line)
    if listener.profiler is not None:
        print_profile(listener.profiler, tag, profile_last)
    return folder


@contextlib.contextmanager
def trainer_cpu() -> Iterator[array[float]]:
    """This process's CPU seconds inside every train() call, in order (beside trainer_calls' wall seconds)."""
    seconds = array("d")  # two doubles a trial here and in the listener: the bench's own share of the RSS stays small

    def wrap(original: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                seconds.append(time.process_time() - started)

        return timed

    with replaced(TRAINER_CALL, wrap):
        yield seconds


def cpu_windows(listener: Listener, trainer: array[float], window: int) -> tuple[tuple[str, float], ...] | None:
    """(label, main-process CPU seconds per trial outside train()) of the first and the last window."""
    ends, count = listener.cpu_ends, len(listener.cpu_ends)
    if listener.cpu_started is None or len(trainer) != count or count < 2:
        return None
    window = min(window, count // 2) or 1
    first = (ends[window - 1] - listener.cpu_started - sum(trainer[:window])) / window
    last = (ends[-1] - ends[count - window - 1] - sum(trainer[count - window:])) / window
    return (f"1-{window:,}", first), (f"{count - window + 1:,}-{count:,}", last)


def print_profile(profiler: Any, tag: str, last: int) -> None:
    import io
    import pstats

    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(PROFILE_TOP)
        text = out.getvalue()
        print(f"\n-- {tag} cProfile of the main process over the last {last:,} trials: top {PROFILE_TOP} by {order}")
        print(text[text.index("   ncalls"):].rstrip() if "   ncalls" in text else text.rstrip())


# -- reading the finished sweep --------------------------------------------------------------------------------


def cli_latency(folder: Path, trials: int, sampler: str) -> None:
    print(f"\n== reading the {trials:,}-trial {sampler} sweep: `sweep best` and `sweep ls` as subprocesses in its "
          f"folder, {CLI_RUNS} runs each")
    executable = tool("sweep")
    for command, target in ((["best"], TARGET_BEST_SECONDS), (["ls"], None)):
        label = f"`sweep {' '.join(command)}`"
        if executable is None:
            line = f"{label} latency: skipped (no `sweep` console script)"
        else:
            times, failure = [], None
            for _ in range(CLI_RUNS):
                started = time.perf_counter()
                done = subprocess.run([executable, *command], cwd=folder, env=child_env(), capture_output=True,
                                      text=True, check=False)
                times.append(time.perf_counter() - started)
                if done.returncode != 0:
                    failure = f"exit {done.returncode}: {last_line(done.stderr)}"
            line = (f"{label} on the {trials:,}-trial sweep: median wall {statistics.median(times):.2f} s of "
                    f"{CLI_RUNS} subprocess runs (min {min(times):.2f} s, max {max(times):.2f} s)")
            if target is not None:
                line += f" (target <= {target} s)"
            if failure:
                line += f" FAILED ({failure})"
        print(line)
        SUMMARY.append(line)
    read_breakdown(folder)


def read_breakdown(folder: Path) -> None:
    """Where a read of the finished sweep spends its time, timed in-process (once each, fresh objects)."""
    import optuna

    from sweep.study import open_storage

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import sweep.cli"], env=child_env(), capture_output=True,
                          check=False)
    start_up = time.perf_counter() - started
    journal = folder / "sweep.journal"
    lines = sum(1 for _ in journal.open("rb"))
    started = time.perf_counter()
    storage = open_storage(str(journal), create=False)
    replay = time.perf_counter() - started
    started = time.perf_counter()
    optuna.get_all_study_summaries(storage, include_best_trial=False)
    summaries = time.perf_counter() - started
    started = time.perf_counter()
    studies = storage.get_all_studies()
    plain = time.perf_counter() - started
    started = time.perf_counter()
    study = optuna.load_study(study_name=studies[0].study_name, storage=storage)
    study.get_trials(deepcopy=False)
    trials = time.perf_counter() - started
    line = (f"reading it, in-process: `python -c 'import sweep.cli'` {start_up:.2f} s as a subprocess"
            f"{'' if done.returncode == 0 else ' (FAILED)'}; opening the journal (replaying {lines:,} lines) "
            f"{replay:.2f} s; optuna.get_all_study_summaries {summaries:.2f} s (it deep-copies every trial); "
            f"storage.get_all_studies {ms(plain)}; load_study + get_trials(deepcopy=False) {ms(trials)}")
    print(line)
    SUMMARY.append(line)


if __name__ == "__main__":
    main()
