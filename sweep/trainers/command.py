"""`trainer: {command: ...}`: any program as a trial, in any language, with live reports and pruning.

One trial = one process group in the trial's own working folder. Its stdout is read as it comes: every
`sweep: ...` line (sweep/trainers/report_lines.py) is a curve point on the child run and goes to the pruner
at once; a prune, a timeout or a stop of the sweep ends the whole group (SIGTERM, then SIGKILL after
``kill_grace``), and a watchdog process ends it when the sweep itself is killed. The last MiB of stdout and
stderr become artifacts of the child run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sweep.errors import SweepConfigError
from sweep.provenance import git_commit
from sweep.records import TRIAL_LOGGED_MODEL, ModelPublishing
from sweep.trainers import launcher, teardown
from sweep.trainers.base import TrialOutcome, UnusableTrainer
from sweep.trainers.command_spec import CommandSpec
from sweep.trainers.report_lines import PREFIX, ReportLine, parse_report
from sweep.trial import Trial, TrialPruned
from sweep.urls import hide_secrets, secrets_in

LOG_BYTES = 1024 * 1024  # of stdout and of stderr, the last this many bytes are kept as artifacts
ERROR_LINES = 20  # the last lines of stderr in the error of a failed trial
MAX_LINE = 64 * 1024  # a longer line is not a report line (nor kept whole in memory)
POLL_SECONDS = 0.05  # how often a quiet command is checked for a stop of the sweep or its timeout
READ_BYTES = 256 * 1024
DRAIN_SECONDS = 2.0  # at most this long reading what a finished command left in its pipes
QUIET_SECONDS = 0.1  # a finished command's pipes silent this long: what is still open is held by leftovers
WATCHDOG_EXIT_SECONDS = 10.0  # the watchdog, its stdin closed with no command left, exits at once; a bound
STDOUT_FILE, STDERR_FILE = "command.stdout.txt", "command.stderr.txt"

# the objective read from the child run after the command exits (`objective.source: mlflow`): (run id, metric)
RunMetric = Callable[[str, str], "float | None"]


# what MLflow says when a script's set_experiment() conflicts with the run MLFLOW_RUN_ID names
EXPERIMENT_CONFLICT = "because active experiment ID does not match environment run ID"


class CommandFailed(Exception):
    """The command could not start, or exited with an error."""


class CommandTimeout(Exception):
    """The command ran longer than ``trainer.timeout``."""


class MissingObjective(Exception):
    """The command exited 0 without reporting the objective."""


class Tail:
    """The last LOG_BYTES of a stream, and how much of it there was."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * LOG_BYTES:
            del self.data[:-LOG_BYTES]

    def save(self, path: Path, secrets: Sequence[str] = ()) -> Path | None:
        """The kept bytes in ``path``, every secret hidden (other bytes kept as they were)."""
        if not self.total:
            return None
        kept = bytes(self.data[-LOG_BYTES:])
        cut = self.total - len(kept)
        text = hide_secrets(kept.decode("utf-8", errors="surrogateescape"), secrets)
        with open(path, "wb") as handle:
            if cut:
                handle.write(f"[the first {cut} bytes are not kept]\n".encode())
            handle.write(text.encode("utf-8", errors="surrogateescape"))
        return path

    def last_lines(self, count: int, secrets: Sequence[str] = ()) -> list[str]:
        text = hide_secrets(bytes(self.data[-16 * 1024:]).decode("utf-8", errors="replace"), secrets)
        return [line.rstrip() for line in text.splitlines() if line.strip()][-count:]


class ReportStream:
    """Splits stdout into lines; `sweep:` lines become reports, malformed ones are counted, never fatal."""

    def __init__(self) -> None:
        self.partial = bytearray()
        self.overlong = False
        self.final: dict[str, float] = {}
        self.malformed = 0
        self.first_malformed = ""

    def feed(self, chunk: bytes) -> list[ReportLine]:
        """The intermediate reports in ``chunk`` (final ones are merged into ``final``)."""
        if PREFIX not in chunk and not self.partial.startswith(PREFIX[:len(self.partial)]):
            end = chunk.rfind(b"\n")  # the common case: plain output, no report in it
            if end < 0:
                self._keep(chunk)
            else:
                self._line(bytes(self.partial))
                self.partial, self.overlong = bytearray(), False
                self._keep(chunk[end + 1:])
            return []
        data = bytes(self.partial) + chunk
        lines = data.split(b"\n")
        self.partial, overlong = bytearray(), self.overlong
        self.overlong = False
        self._keep(lines.pop())
        reports = []
        for index, line in enumerate(lines):
            report = self._line(line, overlong and index == 0)
            if report is not None:
                reports.append(report)
        return reports

    def close(self) -> list[ReportLine]:
        """A last line without a newline still counts."""
        line, self.partial = bytes(self.partial), bytearray()
        report = self._line(line, self.overlong)
        return [report] if report is not None else []

    def _keep(self, rest: bytes) -> None:
        room = MAX_LINE - len(self.partial)
        if len(rest) > room:
            self.overlong = True
        self.partial += rest[:max(room, 0)]

    def _line(self, line: bytes, overlong: bool = False) -> ReportLine | None:
        if not line.startswith(PREFIX):
            return None
        try:
            if overlong:
                raise ValueError(f"longer than {MAX_LINE} bytes")
            report = parse_report(line.rstrip(b"\r"))
        except ValueError as error:
            self.malformed += 1
            if not self.first_malformed:
                shown = line[:80].decode("utf-8", errors="replace")
                self.first_malformed = f"{shown!r}: {error}"
            return None
        if report.step is None:
            self.final.update(report.metrics)
            return None
        return report


class Watchdog:
    """The process that stops this process's commands if this process dies; started with the first command."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Started (by the first `tell`) before the first command, so the watchdog is there to read the
        `expect` line that leaves no window in which a killed sweep would leave an unknown command behind."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-I", teardown.__file__], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)  # not in the terminal's Ctrl-C group

    def tell(self, line: str) -> None:
        for _attempt in range(2):
            self.start()
            assert self.process is not None and self.process.stdin is not None
            try:
                self.process.stdin.write(line.encode() + b"\n")
                self.process.stdin.flush()
                return
            except (BrokenPipeError, OSError):
                self.process = None

    def close(self) -> None:
        """End the watchdog as the end of this process would: its stdin closes, and it stops whatever command
        is still known to it (none, after the last trial) and exits."""
        process, self.process = self.process, None
        if process is None or process.stdin is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=WATCHDOG_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class CommandTrainer:
    """Runs the command once per trial; see the module's docstring."""

    def __init__(self, spec: CommandSpec, metric: str, tracking_uri: str, run_metric: RunMetric | None = None) -> None:
        self.spec, self.metric, self.tracking_uri, self.run_metric = spec, metric, tracking_uri, run_metric
        self.watchdog = Watchdog()
        self.decision_seconds: list[float] = []  # report line read -> pruner's answer (bench/overhead.py)

    @staticmethod
    def mlflow_seconds() -> None:
        return None  # the command's own MLflow calls happen in its process, out of sight

    def provenance(self) -> dict[str, str]:
        tags = {"trainer.command": self.spec.describe()[:500]}
        files = [Path(word) for word in self.spec.words[1:] + self.spec.words[:1]
                 if Path(word).is_absolute() and Path(word).is_file()]
        if files:
            tags["trainer.file"] = str(files[0])
            tags["trainer.file_sha256"] = hashlib.sha256(files[0].read_bytes()).hexdigest()
            commit = git_commit(files[0].parent)
            if commit:
                tags["trainer.git_commit"] = commit
        return tags

    @staticmethod
    def model_publishing() -> ModelPublishing:
        """The MLflow model the best trial's command logged to its run (given MLFLOW_RUN_ID), if it logged one."""
        return TRIAL_LOGGED_MODEL

    def close(self) -> None:
        self.watchdog.close()

    def run(self, trial: Trial) -> TrialOutcome:
        try:
            workdir = trial.workdir
        except OSError as error:
            if error.strerror is None:  # refused by the trial itself (a symbolic link in its place): says why
                raise CommandFailed(str(error)) from None
            raise CommandFailed(f"cannot create the trial's working folder: {error.strerror} ({error.filename}); "
                                f"run the sweep from a writable folder") from None
        values = {**trial.params, "workdir": str(workdir), "trial": trial.number, "sweep": trial.sweep}
        arguments = self.spec.arguments(values, trial.params)
        argv = ["/bin/sh", "-c", arguments[0]] if self.spec.shell else arguments
        token = uuid.uuid4().hex
        run_id = trial.run_id
        environment = self.environment(trial, values, run_id, token)
        secrets = secrets_in(environment)  # what the command could print: hidden in all that is kept of it
        self.watchdog.tell(f"expect {token}")  # a kill before the `add` below still leaves the command known
        try:
            launched = start(argv, workdir, environment)
        except BaseException:
            self.watchdog.tell(f"remove 0 {token}")
            raise
        process = launched.process
        self.watchdog.tell(f"add {process.pid} {token}")
        stdout, stderr, reports = Tail(), Tail(), ReportStream()
        exited = False
        try:
            self.follow(process, trial, stdout, stderr, reports)
            exited = True
        finally:
            # a prune, a timeout, a stop: the whole group; after a plain exit, whatever it left running
            stopped = teardown.stop(process.pid, token, self.spec.kill_grace)
            self.watchdog.tell(f"remove {process.pid} {token}")
            drain(process, stdout, stderr, reports)
            process.wait()
            stopped += launched.escaped_count()  # what the launcher ended outside the group
            self.keep_logs(trial, workdir, stdout, stderr, reports, stopped if exited else 0, secrets)
        return self.outcome(process.returncode, trial, run_id, stderr, reports, secrets)

    def environment(self, trial: Trial, values: dict[str, object], run_id: str | None, token: str) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": os.environ.get("PYTHONUNBUFFERED", "1"), **self.spec.env,
               "MLFLOW_TRACKING_URI": self.tracking_uri, "SWEEP_TRIAL": str(trial.number),
               "SWEEP_SWEEP": trial.sweep, "SWEEP_WORKDIR": str(values["workdir"]),
               "SWEEP_PARAMS": json.dumps(trial.params, default=str), teardown.TOKEN_VARIABLE: token}
        if run_id is not None:
            env["MLFLOW_RUN_ID"] = run_id
        if trial.experiment_id is not None:
            env["MLFLOW_EXPERIMENT_ID"] = trial.experiment_id
        return env

    def follow(self, process: subprocess.Popen[bytes], trial: Trial, stdout: Tail, stderr: Tail,
               reports: ReportStream) -> None:
        """Read the command's output until it exits; raises TrialPruned, TrialInterrupted or CommandTimeout."""
        deadline = None if self.spec.timeout is None else time.monotonic() + self.spec.timeout
        assert process.stdout is not None and process.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ, stdout)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        step: int | None = None
        exited_at: float | None = None
        try:
            while True:
                if exited_at is None:
                    trial.checkpoint(step)  # Ctrl-C or SIGTERM reached the sweep: TrialInterrupted
                    if deadline is not None and time.monotonic() >= deadline:
                        raise CommandTimeout(f"ran longer than trainer.timeout ({self.spec.timeout:g} s) and was "
                                             f"stopped; raise timeout: or make the run shorter")
                elif time.monotonic() - exited_at > DRAIN_SECONDS:
                    return  # what it left running keeps writing: teardown ends it
                if not selector.get_map():
                    if exited_at is not None or wait_for(process, POLL_SECONDS):
                        return
                    continue
                events = selector.select(POLL_SECONDS if exited_at is None else QUIET_SECONDS)
                if exited_at is not None and not events:
                    return  # exited, and what it left running holds its pipes open: teardown ends it
                for key, _events in events:
                    chunk = os.read(key.fd, READ_BYTES)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    key.data.add(chunk)
                    if key.data is stdout:
                        read_at = time.perf_counter()
                        for report in reports.feed(chunk):
                            step = report.step
                            self.report(trial, report, read_at)
                if exited_at is None and process.poll() is not None:
                    exited_at = time.monotonic()  # its last lines may still be in the pipes: read on
        finally:
            selector.close()

    def report(self, trial: Trial, report: ReportLine, read_at: float) -> None:
        """A live report: a curve point on the child run, and the objective to the pruner."""
        assert report.step is not None
        trial.report(step=report.step, **report.metrics)
        objective = report.metrics.get(self.metric)
        if objective is not None and math.isfinite(objective):
            prune = trial.should_prune()
            self.decision_seconds.append(time.perf_counter() - read_at)
            if prune:
                raise TrialPruned(f"pruned at step {report.step}")

    def keep_logs(self, trial: Trial, workdir: Path, stdout: Tail, stderr: Tail, reports: ReportStream,
                  leftovers: int, secrets: Sequence[str]) -> None:
        """stdout and stderr as child-run artifacts; malformed reports and leftover processes as tags."""
        for tail, name in ((stdout, STDOUT_FILE), (stderr, STDERR_FILE)):
            try:
                saved = tail.save(workdir / name, secrets)
            except OSError:
                continue  # the folder went away (a full disk, a user's rm): the trial's result matters more
            if saved is not None:
                trial.log_artifact(saved)
        tags = {}
        if reports.malformed:
            tags["sweep.report_warning"] = (f"{reports.malformed} malformed report line(s) ignored; first: "
                                            f"{hide_secrets(reports.first_malformed, secrets)}")
        if leftovers:
            tags["sweep.leftover_processes"] = (f"{leftovers} process(es) still ran after the command exited; "
                                                f"they were stopped")
        if tags:
            trial.set_tags(tags)

    def outcome(self, code: int, trial: Trial, run_id: str | None, stderr: Tail,
                reports: ReportStream, secrets: Sequence[str] = ()) -> TrialOutcome:
        if code != 0:
            lines = stderr.last_lines(ERROR_LINES, secrets)
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            last = f": {lines[-1]}" if lines else " (nothing on stderr)"
            tail = ("\n" + "\n".join(lines)) if len(lines) > 1 else ""
            if any(EXPERIMENT_CONFLICT in line for line in lines):
                raise UnusableTrainer(f"{how}: the command calls mlflow.set_experiment(...), which cannot open the "
                                      f"trial's run (MLFLOW_RUN_ID) in another experiment: remove that call (the "
                                      f"sweep's runs go to its own experiment, `experiment:` in the config)")
            raise CommandFailed(f"{how}{last}{tail}")
        if self.run_metric is not None:
            value = self.run_metric(run_id, self.metric) if run_id is not None else None
            if value is None:
                raise MissingObjective(f"the command exited 0 but its run has no metric {self.metric!r}; log it "
                                       f"(mlflow.log_metric) or set objective.metric to one it logs")
            final = {self.metric: float(value)}
        else:
            final = reports.final
            if self.metric not in final:
                shown = ", ".join(sorted(final)) or "nothing"
                raise MissingObjective(f"the command exited 0 without reporting {self.metric!r} (its final "
                                       f"report had {shown}); print `sweep: {self.metric}=<value>` (no step=) "
                                       f"at its end")
        if not math.isfinite(final[self.metric]):
            raise ValueError(f"the objective {self.metric!r} is {final[self.metric]}; a trial needs a finite value")
        return TrialOutcome(final[self.metric], {**trial.final_metrics, **final})


@dataclass
class Launched:
    """A started command (its launcher's process) and the pipe its launcher reports on."""

    process: subprocess.Popen[bytes]
    report: int  # read end; closed by escaped_count()

    def escaped_count(self) -> int:
        """How many processes outside the command's group the launcher ended (read once it has exited)."""
        with os.fdopen(self.report, "rb") as pipe:
            text = pipe.read().decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0


def start(argv: list[str], workdir: Path, env: dict[str, str]) -> Launched:
    """The command in a session (and process group) of its own, in the trial's folder, under the launcher (which
    ends what the command leaves outside that group: see launcher.py); failures in one line."""
    try:
        check_runnable(argv[0], workdir, env)
        read, write = os.pipe()  # the launcher says on it how many escaped processes it ended
        try:
            process = subprocess.Popen([sys.executable, "-I", "-S", launcher.__file__, str(write), *argv], cwd=workdir,
                                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True, pass_fds=(write,))
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        return Launched(process, read)
    except FileNotFoundError:
        raise CommandFailed(f"cannot start {argv[0]!r}: no such program; check trainer.command") from None
    except PermissionError:
        raise CommandFailed(f"cannot start {argv[0]!r}: not executable; chmod +x it or run it through its "
                            f"interpreter") from None
    except OSError as error:
        raise CommandFailed(f"cannot start {argv[0]!r}: {error.strerror}; check trainer.command") from None


INTERPRETERS = re.compile(r"(python[\d.]*|pypy[\d.]*|Rscript|bash|sh|zsh|node|julia|ruby|perl|php)\Z")
SCRIPT_SUFFIXES = (".py", ".R", ".r", ".sh", ".js", ".mjs", ".jl", ".rb", ".pl", ".php")


def missing_script(words: Sequence[str]) -> str | None:
    """The script an interpreter is given (``python trian.py``) when it does not exist, else None. Files beside
    the config were made absolute when the config was read; one still relative was not found there. Options
    are skipped; ``-m`` / ``-c`` / ``-e`` (a module or code, not a file) end the look."""
    if len(words) < 2 or not INTERPRETERS.match(Path(words[0]).name):
        return None
    for word in words[1:]:
        if word in ("-m", "-c", "-e", "--eval") or "{" in word:
            return None
        if word.startswith("-"):
            continue
        looks_like_file = "/" in word or word.endswith(SCRIPT_SUFFIXES)
        found = Path(word).is_absolute() and Path(word).exists()  # the command runs in the trial's own folder
        return word if looks_like_file and not found else None
    return None


def program_problem(program: str, folder: Path, search_path: str | None) -> str | None:
    """Why ``program`` cannot be started from ``folder`` ("missing", "a folder", "not executable", or "not on
    PATH" for a bare name looked up in ``search_path``), None when it can: what check_command tells before the
    sweep, and check_runnable before each trial."""
    if "/" not in program:
        return "not on PATH" if shutil.which(program, path=search_path) is None else None
    path = folder / program  # a relative path is read from ``folder``; an absolute one stays as it is
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "a folder"
    return None if os.access(path, os.X_OK) else "not executable"


def check_runnable(program: str, workdir: Path, env: dict[str, str]) -> None:
    """FileNotFoundError or PermissionError, as starting ``program`` directly would raise them (the launcher,
    a Python program, always starts)."""
    problem = program_problem(program, workdir, env.get("PATH", os.defpath))
    if problem in ("missing", "not on PATH"):
        raise FileNotFoundError(program)
    if problem is not None:
        raise PermissionError(program)


def wait_for(process: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        process.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def drain(process: subprocess.Popen[bytes], stdout: Tail, stderr: Tail, reports: ReportStream) -> None:
    """What is left in the pipes of a stopped command (kept in the logs; a final report still counts), then
    close them."""
    deadline = time.monotonic() + DRAIN_SECONDS
    pipes: list[tuple[IO[bytes] | None, Tail]] = [(process.stdout, stdout), (process.stderr, stderr)]
    for pipe, tail in pipes:
        if pipe is None or pipe.closed:
            continue
        os.set_blocking(pipe.fileno(), False)
        while time.monotonic() < deadline:
            try:
                chunk = os.read(pipe.fileno(), READ_BYTES)
            except BlockingIOError:
                break  # a writer still holds it (a process that escaped teardown): stop reading
            if not chunk:
                break
            tail.add(chunk)
            if tail is stdout:
                reports.feed(chunk)
        pipe.close()
    reports.close()


def check_command(spec: CommandSpec, workdirs: Path) -> None:
    """What can be known before the sweep starts: the program exists and can run, and the trials' working
    folders can be made under ``workdirs``. Each problem is one line, before any store is touched."""
    program = "/bin/sh" if spec.shell else spec.words[0]
    if "{" not in program:
        if "/" in program and not Path(program).is_absolute():
            raise SweepConfigError(f"trainer.command: no such file {program!r} beside the config; a relative "
                                   f"path is read from the config file's folder")
        problem = program_problem(program, Path("/"), spec.env.get("PATH", os.environ.get("PATH")))
        name = Path(program).name
        messages = {
            "missing": f"no such file {program!r}; check the path",
            "a folder": f"{program!r} is a folder, not a program",
            "not executable": f"{program!r} is not executable; chmod +x it, or run it through its interpreter "
                              f"(e.g. sh {name}, python {name})",
            "not on PATH": f"program {program!r} not found on PATH; check its name or give its full path",
        }
        if problem is not None:
            raise SweepConfigError(f"trainer.command: {messages[problem]}")
        script = missing_script(spec.words)
        if script is not None:
            raise SweepConfigError(f"trainer.command: no such file {script!r} beside the config for {name} to run; "
                                   f"check its name (a relative path is read from the config file's folder)")
    existing = workdirs
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SweepConfigError(f"cannot create the trials' working folders under {str(workdirs)!r} ({str(existing)!r} "
                               f"is not a writable folder); run the sweep from a writable folder")
