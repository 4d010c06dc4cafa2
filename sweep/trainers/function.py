"""`trainer: {function: module:fit}`: the user's own Python function, called once per trial in the worker's process."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import math
import sys
import sysconfig
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

from sweep.errors import SweepConfigError
from sweep.provenance import git_commit
from sweep.records import TRIAL_LOGGED_MODEL, ModelPublishing
from sweep.trainers.base import TrialOutcome
from sweep.trainers.spec import TrainerSpec
from sweep.trial import Trial, metric_name, number

# what a function trainer's trial runs under (its MLflow active run, or nothing), given how to get its child run's
# id: asking waits for the tracking process to create the run, so only a scope that needs the id asks. It yields
# what reads the seconds the trial's code spent inside MLflow, or None when it does not clock them
RunScope = Callable[[Callable[[], str | None]], AbstractContextManager[Callable[[], float] | None]]


def load_function(spec: TrainerSpec, *, key: str = "trainer.function") -> Callable[[Trial], Any]:
    """Import ``spec.function``; every way it can fail is one line naming the reference (``key``) and the fix."""
    assert spec.function is not None
    where, name = spec.function.rsplit(":", 1)
    shown = spec.function
    try:
        module = import_file(Path(where)) if spec.file is not None else import_module(where)
    except SweepConfigError:
        raise
    except SyntaxError as error:
        raise SweepConfigError(f"{key}: {error.filename}:{error.lineno}: syntax error ({error.msg}); "
                               f"fix the file") from None
    except SystemExit as error:  # argparse or sys.exit() at the module's top level: not the sweep's exit
        raise SweepConfigError(f"{key}: importing {where!r} called sys.exit({error.code!r})"
                               f"{user_frame(error)}; keep command-line parsing under "
                               f"`if __name__ == \"__main__\":`") from None
    except Exception as error:  # the module's own top-level code failed
        raise SweepConfigError(f"{key}: importing {where!r} failed: {type(error).__name__}: "
                               f"{first_line(error)}{user_frame(error)}") from None
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            defined = functions_in(module)
            listed = f"; it defines {', '.join(defined)}" if defined else "; it defines no function"
            raise SweepConfigError(f"{key}: {where!r} has no {name!r}{listed}; check the name after "
                                   f"':' in {shown!r}")
        target = getattr(target, part)
    if inspect.isclass(target):  # calling it would make an instance, never a trial's result
        raise SweepConfigError(f"{key}: {shown!r} is a class, not a function; point it at a function "
                               f"fit(trial) (or at a method: module:Class.method)")
    if not callable(target):
        raise SweepConfigError(f"{key}: {shown!r} is a {type(target).__name__}, not a function; "
                               f"point it at fit(trial)")
    return target


@functools.cache
def load_constraints_function(reference: str) -> Callable[[Any], Any]:
    """The config's ``constraints: {function: file.py:name}``: Optuna's constraints_func, imported once per process
    (the start checks it before any store is touched; the trial loop calls it)."""
    return load_function(TrainerSpec(function=reference), key="constraints.function")


def functions_in(module: ModuleType) -> list[str]:
    """The functions ``module`` defines itself (not those it imports), in the order written."""
    return [name for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")]


def import_module(name: str) -> ModuleType:
    """A module on sys.path; the working folder counts, as it does for `python -m`."""
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
            raise SweepConfigError(f"trainer.function: no module named {error.name!r}; check the name, or run "
                                   f"from the folder that holds it (or write path/to/file.py:fit)") from None
        raise


def import_file(path: Path) -> ModuleType:
    """A .py file as a module named after it; its folder goes on sys.path, so its own imports of
    sibling modules work as they do when the file is run directly."""
    if not path.is_file():
        raise SweepConfigError(f"trainer.function: no such file {str(path)!r}; check the path")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    if module_spec is None or module_spec.loader is None:
        raise SweepConfigError(f"trainer.function: {str(path)!r} cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module  # pickling, dataclasses and typing look modules up by name
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(path.stem, None)
        raise
    return module


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def user_frame(error: BaseException) -> str:
    """ ' (at file.py:12)': where in the user's code an import failed."""
    frames = traceback.extract_tb(error.__traceback__)
    installed = tuple(sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib"))  # argparse, numpy...
    own = [frame for frame in frames if "importlib" not in frame.filename and "/sweep/" not in frame.filename
           and not frame.filename.startswith(installed)]
    return f" (at {Path(own[-1].filename).name}:{own[-1].lineno})" if own else ""


def outcome_of(returned: Any, metric: str, logged: Mapping[str, float], more: Sequence[str] = ()) -> TrialOutcome:
    """What ``fit`` returned -> the trial's value and final metrics; anything else fails the trial, in one line.

    With several objectives (``metric`` and ``more``), a tuple or list of numbers is their values in order (an
    unchanged Optuna multi-objective objective), and a mapping names them."""
    names = (metric, *more)
    if isinstance(returned, Mapping):
        metrics = {metric_name("fit's returned mapping", name): number(f"fit's returned {name!r}", value)
                   for name, value in returned.items()}
        missing = [name for name in names if name not in metrics]
        if missing:
            shown = ", ".join(sorted(metrics)[:5]) or "nothing"
            raise ValueError(f"fit returned no {missing[0]!r} (it returned {shown}); return it, or set "
                             f"objective.metric to one of those")
    elif more and isinstance(returned, (tuple, list)):
        if len(returned) != len(names):
            raise ValueError(f"fit returned {len(returned)} values for {len(names)} objectives "
                             f"({', '.join(names)}); return one value per objective, in the config's order")
        metrics = {name: number(f"fit's returned {name!r}", value) for name, value in zip(names, returned)}
    elif isinstance(returned, (str, bytes, bool)) or returned is None:
        raise TypeError(f"fit returned {type(returned).__name__ if returned is not None else 'None'}; return "
                        f"{_expected(names)}")
    elif more:
        raise TypeError(f"fit returned one {type(returned).__name__}; this sweep has {len(names)} objectives: return "
                        f"{_expected(names)}")
    else:
        try:
            metrics = {metric: float(returned)}
        except (TypeError, ValueError):
            raise TypeError(f"fit returned a {type(returned).__name__}; return {_expected(names)}") from None
    for name in names:
        if not math.isfinite(metrics[name]):
            raise ValueError(f"the objective {name!r} is {metrics[name]}; a trial needs a finite value")
    return TrialOutcome(metrics[metric], {**logged, **metrics})


def _expected(names: Sequence[str]) -> str:
    if len(names) == 1:
        return f"a number (the objective) or a mapping of metrics holding {names[0]!r}"
    return f"a tuple of {len(names)} numbers ({', '.join(names)}) or a mapping holding them"


class FunctionTrainer:
    """Calls ``fit(trial)``; with ``mlflow: active`` or ``autolog`` inside the child run made active by
    ``run_scope`` (the tracking layer's, so this module never imports mlflow)."""

    def __init__(self, spec: TrainerSpec, fit: Callable[[Trial], Any], metric: str,
                 run_scope: RunScope | None = None, on_close: Callable[[], None] | None = None,
                 more_objectives: Sequence[str] = ()) -> None:
        self.spec, self.fit, self.metric, self.run_scope = spec, fit, metric, run_scope
        self.more_objectives = tuple(more_objectives)  # the metrics of the objectives after the first
        self.on_close = on_close  # the tracking layer's: puts MLflow's process-wide state back
        self.warnings = WarningsOnce()
        self.spent_in_mlflow: Callable[[], float] | None = None  # the last trial's clock, from its run scope

    def provenance(self) -> dict[str, str]:
        tags = {"trainer.function": self.spec.describe(), "trainer.mlflow": self.spec.mlflow}
        source = self.spec.file or module_file(self.fit)
        if source is not None and source.is_file():
            tags["trainer.file_sha256"] = hashlib.sha256(source.read_bytes()).hexdigest()
            commit = git_commit(source.parent)
            if commit:
                tags["trainer.git_commit"] = commit
        return tags

    @staticmethod
    def model_publishing() -> ModelPublishing:
        """The MLflow model the best trial's fit logged itself (autolog, log_model), if it logged one."""
        return TRIAL_LOGGED_MODEL

    def close(self) -> None:
        self.warnings.restore()
        if self.on_close is not None:
            self.on_close()

    def run(self, trial: Trial) -> TrialOutcome:
        self.warnings.install()
        self.spent_in_mlflow = None
        scope = self.run_scope(lambda: trial.run_id) if self.run_scope is not None else nullcontext()
        with scope as spent_in_mlflow:
            self.spent_in_mlflow = spent_in_mlflow  # kept before fit: a trial that fails or prunes spent it too
            returned = self.fit(trial)
        return outcome_of(returned, self.metric, trial.final_metrics, self.more_objectives)

    def mlflow_seconds(self) -> float | None:
        """The last trial's time inside MLflow (``mlflow: active | autolog``: clocked by its run scope)."""
        return self.spent_in_mlflow() if self.spent_in_mlflow is not None else None


class WarningsOnce:
    """Each warning the trials' code raises is shown once per sweep, not once per trial: libraries (MLflow's
    autologging among them) reset Python's record of warnings already shown, so its own once-per-place rule
    repeats the same lines after every trial. Installed on the first trial, put back when the trainer closes."""

    def __init__(self) -> None:
        self.seen: set[tuple[type[Warning], str, str, int]] = set()
        self.previous: Callable[..., None] | None = None

    def install(self) -> None:
        if self.previous is None:
            self.previous = warnings.showwarning
            warnings.showwarning = self.show

    def restore(self) -> None:
        if self.previous is not None and warnings.showwarning == self.show:
            warnings.showwarning = self.previous
        self.previous = None

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        key = (category, str(message), filename, lineno)
        if key in self.seen or self.previous is None:
            return
        self.seen.add(key)
        self.previous(message, category, filename, lineno, file, line)


def module_file(function: Callable[..., Any]) -> Path | None:
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    file = getattr(module, "__file__", None)
    return Path(file) if file else None
