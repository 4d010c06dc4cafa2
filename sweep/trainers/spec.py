"""The `trainer:` section of a sweep config: which code a trial runs, parsed and checked without importing it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.errors import SweepConfigError
from sweep.trainers.command_spec import CommandSpec, parse_command

BUILTIN = "sentiment"
MLFLOW_MODES = ("off", "active", "autolog")
# what `mlflow: {autolog: {...}}` may hand to mlflow.autolog(): its switches of what gets logged, each true or false
# (the rest of its arguments are the sweep's: silent, disable; extra_tags and exclude_flavors are not offered)
AUTOLOG_SETTINGS = ("disable_for_unsupported_versions", "exclusive", "log_datasets", "log_input_examples",
                    "log_model_signatures", "log_models", "log_traces")
FUNCTION_KEYS = {"function", "mlflow"}
# a dotted module path, or a file ending in .py; then ':' and a (dotted) attribute
FUNCTION_PATTERN = re.compile(r"^(?P<where>[^:]+):(?P<name>[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)\Z")
MODULE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


@dataclass(frozen=True)
class TrainerSpec:
    """The built-in sentiment trainer (``function`` None), or the user's ``fit(trial)`` function.

    ``function`` is ``module.path:name`` (a module on sys.path) or ``/absolute/file.py:name`` (a file
    named relative to its config is made absolute when the config is read, so workers find it too).
    """

    function: str | None = None
    mlflow: str = "off"  # off | active | autolog: how much of MLflow the trial's own code sees
    autolog: dict[str, bool] = field(default_factory=dict)  # `mlflow: {autolog: {...}}`: mlflow.autolog()'s switches
    command: CommandSpec | None = None  # `trainer: {command: ...}`: any program, one process per trial

    @property
    def builtin(self) -> bool:
        return self.function is None and self.command is None

    @property
    def logs_own_run(self) -> bool:
        """The trial's own code may write to its child run (MLflow active in fit, or a command given
        MLFLOW_RUN_ID): params it logged there are not logged again."""
        return self.mlflow != "off" or self.command is not None

    @property
    def logs_models(self) -> bool:
        """MLflow's autologging logs a model in every trial (autolog, unless log_models: false): its costly part."""
        return self.mlflow == "autolog" and self.autolog.get("log_models", True)

    @property
    def file(self) -> Path | None:
        """The function's file, for a ``file.py:name`` reference."""
        if self.function is None:
            return None
        where = self.function.rsplit(":", 1)[0]
        return Path(where) if is_file_reference(where) else None

    def describe(self) -> str:
        if self.command is not None:
            return self.command.describe()
        return BUILTIN if self.function is None else self.function

    def to_yaml(self) -> str | dict[str, Any]:
        if self.command is not None:
            return self.command.to_yaml()
        if self.function is None:
            return BUILTIN
        return {"function": self.function, "mlflow": {"autolog": dict(self.autolog)} if self.autolog else self.mlflow}


def is_file_reference(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def parse_trainer(value: Any, base: Path) -> TrainerSpec:
    """`trainer:` as written (absent, ``sentiment``, or a mapping) -> TrainerSpec; ``base`` is the folder a
    relative file is found from (the config file's). A file that does not exist is refused here."""
    if value is None or value == BUILTIN:
        return TrainerSpec()
    if isinstance(value, str):
        raise SweepConfigError(f"trainer: {value!r} is not a trainer; use sentiment (the built-in one), "
                               f"{{function: module:fit}} or {{command: ...}}")
    if not isinstance(value, Mapping):
        raise SweepConfigError(f"trainer: expected sentiment or a mapping like {{function: train.py:fit}}, "
                               f"got {value!r}")
    if "command" in value:
        return TrainerSpec(command=parse_command(value, base))
    unknown = sorted(str(key) for key in value if key not in FUNCTION_KEYS)
    if unknown:
        raise SweepConfigError(f"trainer: unknown key {unknown[0]!r}; a function trainer takes "
                               f"{', '.join(sorted(FUNCTION_KEYS))}; a command trainer takes command (and its "
                               f"settings: shell, timeout, env, kill_grace, keep_workdirs)")
    if "function" not in value:
        raise SweepConfigError("trainer: give function: module:fit (or file.py:fit), or command: ...")
    mode, settings = mlflow_mode(value.get("mlflow", "off"))
    return TrainerSpec(function=function_reference(value["function"], base), mlflow=mode, autolog=settings)


def mlflow_mode(value: Any) -> tuple[str, dict[str, bool]]:
    """`mlflow:` as written -> (mode, the settings given to mlflow.autolog()): ``off``, ``active``, ``autolog``, or
    ``{autolog: {log_models: false, ...}}``."""
    if value is False:  # YAML reads a bare `off` as false
        return "off", {}
    if isinstance(value, Mapping):
        if list(value) != ["autolog"]:
            raise SweepConfigError(f"trainer.mlflow: a mapping takes only autolog, as in {{autolog: {{log_models: "
                                   f"false}}}}, got {dict(value)!r}; or write one of {', '.join(MLFLOW_MODES)}")
        return "autolog", autolog_settings(value["autolog"])
    if value not in MLFLOW_MODES:
        raise SweepConfigError(f"trainer.mlflow: {value!r} is not a mode; use one of {', '.join(MLFLOW_MODES)}, "
                               f"or {{autolog: {{log_models: false}}}}")
    return value, {}


def autolog_settings(value: Any) -> dict[str, bool]:
    """`mlflow: {autolog: {...}}`'s settings, each a known switch of mlflow.autolog() set to true or false."""
    if value is None:  # `{autolog: }`: nothing changed
        return {}
    if not isinstance(value, Mapping):
        raise SweepConfigError(f"trainer.mlflow.autolog: expected a mapping like {{log_models: false}}, got {value!r}")
    settings = {}
    for key, setting in value.items():
        if key not in AUTOLOG_SETTINGS:
            raise SweepConfigError(f"trainer.mlflow.autolog: unknown setting {key!r}; use one of "
                                   f"{', '.join(AUTOLOG_SETTINGS)}")
        if not isinstance(setting, bool):
            raise SweepConfigError(f"trainer.mlflow.autolog.{key}: {setting!r} is not true or false; write "
                                   f"{key}: false or {key}: true")
        settings[key] = setting
    return settings


def function_reference(value: Any, base: Path, *, key: str = "trainer.function") -> str:
    """``module:name`` as given, or ``file.py:name`` with the file made absolute; checked for form and file."""
    text = value if isinstance(value, str) else ""
    match = FUNCTION_PATTERN.match(text.strip())
    if match is None:
        raise SweepConfigError(f"{key}: {value!r} is not a function reference; write module.path:fit "
                               f"or path/to/train.py:fit")
    where, name = match["where"], match["name"]
    if is_file_reference(where):
        path = Path(where).expanduser()
        path = (base / path if not path.is_absolute() else path).resolve()
        if not path.is_file():
            raise SweepConfigError(f"{key}: no such file {str(path)!r}; a relative path is read from "
                                   f"the config file's folder")
        return f"{path}:{name}"
    if not MODULE_PATTERN.match(where):
        raise SweepConfigError(f"{key}: {where!r} is not a module path; write module.path:fit or "
                               f"path/to/train.py:fit")
    return f"{where}:{name}"
