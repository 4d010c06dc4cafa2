"""What the benchmark scripts share: the search space, folders and formatting, and timing wrappers that
fail loudly, naming the target, when what they time has left sweep/.

The timing wrappers replace a function or method named by a "module:Qualified.name" string for the length
of a `with` block. A name that no longer resolves raises MissingTarget before anything runs: a renamed
function must never turn a figure into a silent "n/a".
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

SPACE: dict[str, dict[str, Any]] = {  # the same space for every contender, in suggest order
    "lr": {"type": "float", "low": 0.05, "high": 5.0, "log": True},
    "epochs": {"type": "int", "low": 3, "high": 8},  # a few epochs: one training costs a few milliseconds
    "vocab_size": {"type": "int", "low": 50, "high": 400},
}
FIXED = {"seed": 0, "l2": 0.0001}  # trainer settings not tuned (seed = the train/validation/test split)
METRIC = "val_accuracy"  # maximized by every contender
SAMPLER_SEED = 0  # TPE seed of every contender
CODE_ENV = "SWEEP_BENCH_CODE"  # a bench's --code: the checkout its runs' processes must import sweep from
TARGET_BEST_SECONDS = 0.5  # `sweep best` on a finished sweep

TRAINER_CALL = "sweep.trainers.sentiment:train"  # the train() every trial of a sweep calls


class Calls:
    """(end timestamp, seconds) of every call, as two arrays of doubles. A bench runs in the process it measures:
    a list of tuples held over a hundred bytes a call, a dozen calls a trial, and grew the process's memory
    more than the sweep itself did; two doubles a call keep the bench's own share small."""

    def __init__(self) -> None:
        self.ends = array("d")
        self.seconds = array("d")

    def append(self, call: tuple[float, float]) -> None:
        end, seconds = call
        self.ends.append(end)
        self.seconds.append(seconds)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return zip(self.ends, self.seconds, strict=True)

    def __len__(self) -> int:
        return len(self.ends)


class MissingTarget(LookupError):
    """A benchmark times a function of sweep/ that no longer exists under the name it gives."""


# -- figures -------------------------------------------------------------------------------------------------


def versions(packages: tuple[str, ...] = ("optuna", "mlflow", "numpy")) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in packages:
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} (not installed)")
    return ", ".join(out)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def describe_space() -> str:
    parts = []
    for name, spec in SPACE.items():
        scale = " log" if spec.get("log") else ""
        parts.append(f"{name} {spec['type']}{scale} {spec['low']}..{spec['high']}")
    return ", ".join(parts)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# -- folders, stores and processes --------------------------------------------------------------------------


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def sweep_yaml(trials: int, folder: Path, *, sampler: str = "tpe", experiment: str = "bench",
               trainer: dict[str, str] | None = None) -> Path:
    """A sweep config with the shared space, no pruner, and the MLflow SQLite store in ``folder``; ``trainer``
    is a `trainer:` section (None: the built-in one)."""
    document: dict[str, Any] = {
        "experiment": experiment,
        "objective": {"metric": METRIC, "direction": "maximize"},
        "trials": trials,
        "sampler": {"name": sampler, "seed": SAMPLER_SEED},
        "pruner": {"name": "none"},
        "fixed": dict(FIXED),
        "space": SPACE,
        "tracking_uri": sqlite_uri(folder / "mlflow.db"),
    }
    if trainer is not None:
        document["trainer"] = trainer
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def working_folder(folder: Path) -> Iterator[None]:
    """cwd = folder: sweep's default journal, MLflow's ./mlruns artifacts and the tracking process all land there."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


# A function trainer that only sleeps, and its config: the orchestration's cost with no model's in it
# (bench/cluster.py, bench/parallel.py --sleeping)
SLEEPER_TRAINER = """
import time


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    time.sleep(trial.params["pause"])
    return x
"""
SLEEPER_CONFIG = """
trainer: {{function: sleeper.py:fit}}
objective: {{metric: value, direction: maximize}}
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
trials: {trials}
fixed: {{pause: {pause}}}
"""


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: no store chosen from outside, no telemetry."""
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "SWEEP_STORAGE")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def code_env(code: Path) -> dict[str, str]:
    """The subprocesses' environment: ``code`` first on PYTHONPATH, no store chosen from outside, no telemetry."""
    env = child_env(**{CODE_ENV: str(code)})
    env.pop("RAY_ADDRESS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def check_code(code: Path) -> str:
    """Where the runs' processes import sweep from (must be inside ``code``), and the checkout's commit."""
    if not (code / "sweep" / "__init__.py").is_file():
        raise SystemExit(f"--code {code}: no sweep package there")
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-check-"))
    try:
        done = subprocess.run([sys.executable, "-c", "import sweep; print(sweep.__file__)"], cwd=folder,
                              env=code_env(code), capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    imported = Path(done.stdout.strip()).resolve() if done.returncode == 0 else None
    if imported is None or not imported.is_relative_to(code.resolve()):
        raise SystemExit(f"--code {code}: the runs would import sweep from {imported or done.stderr.strip()}")
    commit = subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True, check=False).stdout.strip() or "not a git checkout"
    return f"code: {code} ({commit}); sweep imported from {imported}"


def tool(name: str) -> str | None:
    """A console script of this interpreter's environment (the venv), else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


# -- timing wrappers -----------------------------------------------------------------------------------------


def resolve(target: str) -> tuple[Any, str, Any]:
    """"module:Qualified.name" -> (the object holding it, the attribute name, its current value).

    Raises MissingTarget naming ``target`` when the module, a class on the way or the attribute is gone.
    """
    module_name, _, path = target.partition(":")
    if not module_name or not path:
        raise ValueError(f"{target!r}: write a timing target as 'module:function' or 'module:Class.method'")
    try:
        owner: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise MissingTarget(f"{target}: module {module_name} not found ({error}); point bench/ at its new name") \
            from None
    *outer, attribute = path.split(".")
    for name in outer:
        if not hasattr(owner, name):
            raise MissingTarget(f"{target}: {module_name} has no {name}; point bench/ at its new name")
        owner = getattr(owner, name)
    if not hasattr(owner, attribute):
        raise MissingTarget(f"{target}: no {attribute} there any more; point bench/ at its new name")
    return owner, attribute, getattr(owner, attribute)


@contextlib.contextmanager
def replaced(target: str, wrap: Callable[[Any], Any]) -> Iterator[None]:
    """Within the block, ``target`` is ``wrap(original)``; the original is put back on the way out."""
    owner, attribute, original = resolve(target)
    setattr(owner, attribute, wrap(original))
    try:
        yield
    finally:
        setattr(owner, attribute, original)


def call_timer(calls: Calls, function: Any) -> Any:
    """``function`` that appends (end, seconds) of each call to ``calls``; a call made from inside another
    timed call of the same list is counted once."""
    depth = [0]

    def timed(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                ended = time.perf_counter()
                calls.append((ended, ended - started))

    return timed


@contextlib.contextmanager
def timed_calls(target: str, calls: Any = None) -> Iterator[Any]:
    """(end, seconds) of every call of ``target`` ("module:function" or "module:Class.method") in the block, appended
    to ``calls`` (a Calls by default; anything with append)."""
    calls = Calls() if calls is None else calls
    with replaced(target, lambda original: call_timer(calls, original)):
        yield calls


@contextlib.contextmanager
def trainer_calls(target: str = TRAINER_CALL) -> Iterator[array[float]]:
    """Seconds of every train() call a sweep's trials make, in order: the listener cannot see trainer time.
    ``target``: the train() a function trainer calls instead of the built-in one's."""
    seconds = array("d")  # not a list: see Calls

    def wrap(original: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds.append(time.perf_counter() - started)

        return timed

    with replaced(target, wrap):
        yield seconds
