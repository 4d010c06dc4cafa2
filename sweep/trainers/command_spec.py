"""`trainer: {command: ...}`: any program as a trial, its settings parsed and checked before anything starts.

The command is a string (split like a shell would, but run without one) or a list of arguments; with
``shell: true`` a string run by ``/bin/sh -c``. ``{name}`` placeholders take the trial's params and
``{workdir}``, ``{trial}``, ``{sweep}``; ``{{`` and ``}}`` are literal braces. An argument naming a file
beside the config (``train.py``) is made absolute here, as ``function: train.py:fit`` is: the command runs
in the trial's own working folder, and workers rebuild the config from its stored form.
"""

from __future__ import annotations

import math
import re
import shlex
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.errors import SweepConfigError

KEYS = ("command", "shell", "timeout", "env", "kill_grace", "keep_workdirs")
ALL_PARAMS = "params"  # {params}: every param as --name=value, one argument each (W&B's ${args})
BUILT_IN_PLACEHOLDERS = ("workdir", "trial", "sweep", ALL_PARAMS)  # what every trial has besides its params
DEFAULT_KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL: time for a script to save a checkpoint
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class CommandSpec:
    """A command run once per trial, in its own working folder and process group."""

    command: str | tuple[str, ...]  # as given (files beside the config made absolute): a string or arguments
    shell: bool = False  # run the string through /bin/sh -c; otherwise never through a shell
    timeout: float | None = None  # seconds per trial; past it the trial fails and the sweep goes on
    env: dict[str, str] = field(default_factory=dict)  # added to the sweep's own environment
    kill_grace: float = DEFAULT_KILL_GRACE  # seconds from SIGTERM to SIGKILL when a trial is stopped
    keep_workdirs: bool = False  # keep every trial's working folder, not only the best trial's

    @property
    def words(self) -> tuple[str, ...]:
        """The arguments, placeholders not yet filled (for ``shell: true``: the whole string, one word)."""
        if isinstance(self.command, tuple):
            return self.command
        return (self.command,) if self.shell else tuple(shlex.split(self.command))

    @property
    def placeholders(self) -> list[str]:
        """Every ``{name}`` the command uses, in order of first use."""
        names: dict[str, None] = {}
        for word in self.words:
            for name, _spec in fields_of(word):
                names.setdefault(name, None)
        return list(names)

    def describe(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    def to_yaml(self) -> dict[str, Any]:
        return {"command": self.command if isinstance(self.command, str) else list(self.command),
                "shell": self.shell, "timeout": self.timeout, "env": dict(self.env),
                "kill_grace": self.kill_grace, "keep_workdirs": self.keep_workdirs}

    def check_placeholders(self, space: Iterable[str], fixed: Iterable[str]) -> None:
        """Every placeholder has a value and every tuned param reaches the command: a typo is refused here,
        not found after a night of trials that all ran the same command."""
        known = [*space, *fixed, *BUILT_IN_PLACEHOLDERS]
        used = self.placeholders
        for name in used:
            if name not in known:
                raise SweepConfigError(f"trainer.command: placeholder {{{name}}} has no value; use one of "
                                       f"{', '.join('{' + key + '}' for key in known)} (write {{{{ for a "
                                       f"literal brace)")
        if ALL_PARAMS in used or not [name for name in used if name not in BUILT_IN_PLACEHOLDERS]:
            return  # every param reaches the command: as --name=value, or in SWEEP_PARAMS when it names none
        for name in space:
            if name not in used:
                raise SweepConfigError(f"space.{name}: the command never uses it; add {{{name}}} (or {{params}} "
                                       f"for all) to trainer.command, or remove it from space:")

    def arguments(self, values: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> list[str]:
        """The command with its placeholders filled: a list of arguments (with ``shell``: [the string]).
        ``{params}`` is every one of ``params`` as ``--name=value``, an argument each (quoted, with ``shell``)."""
        flags = [f"--{name}={shown(value)}" for name, value in (params or {}).items()]
        if self.shell:
            return [fill(self.words[0], {**values, ALL_PARAMS: " ".join(shlex.quote(flag) for flag in flags)},
                         quote=True, quoted=(ALL_PARAMS,))]
        filled: list[str] = []
        for word in self.words:
            if word == "{" + ALL_PARAMS + "}":
                filled += flags
            else:
                filled.append(fill(word, values, quote=False))
        return filled


def fields_of(word: str) -> list[tuple[str, str]]:
    """The ``{name}`` / ``{name:format}`` fields of one word; a malformed brace is a one-line error."""
    try:
        parsed = list(string.Formatter().parse(word))
    except ValueError as error:
        raise SweepConfigError(f"trainer.command: {error} in {word!r}; write {{{{ and }}}} for literal "
                               f"braces") from None
    found = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or conversion:
            raise SweepConfigError(f"trainer.command: {{{name}{'!' + conversion if conversion else ''}}} in "
                                   f"{word!r} is not a placeholder; write {{param_name}}")
        found.append((name, spec or ""))
    return found


def fill(word: str, values: Mapping[str, Any], *, quote: bool, quoted: Iterable[str] = ()) -> str:
    """One word with its placeholders replaced by the trial's values (shell-quoted for a shell command, except
    the ``quoted`` ones, quoted already)."""
    out = []
    for literal, name, spec, _conversion in string.Formatter().parse(word):
        out.append(literal)
        if name is not None:
            text = format(values[name], spec or "") if spec else shown(values[name])
            out.append(shlex.quote(text) if quote and name not in quoted else text)
    return "".join(out)


def shown(value: Any) -> str:
    """A param as an argument: numbers as Python writes them, booleans lower-case, anything else as text."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_command(value: Mapping[str, Any], base: Path) -> CommandSpec:
    """The `trainer:` mapping holding ``command:``; ``base`` is the config file's folder."""
    unknown = sorted(str(key) for key in value if key not in KEYS)
    if unknown:
        raise SweepConfigError(f"trainer: unknown key {unknown[0]!r} for a command; allowed: {', '.join(KEYS)}")
    shell = value.get("shell", False)
    if not isinstance(shell, bool):
        raise SweepConfigError(f"trainer.shell: must be true or false, got {shell!r}")
    command = value["command"]
    if "\x00" in (command if isinstance(command, str) else "".join(map(str, command)) if isinstance(command, list)
                   else ""):
        raise SweepConfigError("trainer.command: holds a NUL byte, which no program argument can carry; remove it")
    if isinstance(command, str) and command.strip():
        if not shell:
            try:
                words = shlex.split(command)
            except ValueError as error:
                raise SweepConfigError(f"trainer.command: {error} in {command!r}; close the quote, or give the "
                                       f"command as a list of arguments") from None
            if not words:
                raise SweepConfigError("trainer.command: empty; give the program and its arguments")
        resolved: str | tuple[str, ...] = absolute_files_in_string(command, base)
    elif isinstance(command, list) and command and all(isinstance(word, (str, int, float)) for word in command):
        if shell:
            raise SweepConfigError("trainer.shell: true takes the command as one string; drop shell: or join "
                                   "the list into a string")
        resolved = tuple(absolute_file(str(word), base, first=index == 0) for index, word in enumerate(command))
    else:
        raise SweepConfigError(f"trainer.command: expected a string or a list of arguments, got {command!r}")
    spec = CommandSpec(resolved, shell, seconds("timeout", value.get("timeout"), optional=True),
                       environment(value.get("env")),
                       seconds("kill_grace", value.get("kill_grace", DEFAULT_KILL_GRACE), optional=False),
                       value.get("keep_workdirs", False))
    if not isinstance(spec.keep_workdirs, bool):
        raise SweepConfigError(f"trainer.keep_workdirs: must be true or false, got {spec.keep_workdirs!r}")
    spec.placeholders  # noqa: B018 - a malformed brace is refused now, not at the first trial
    if not spec.shell and any("{" + ALL_PARAMS + "}" in word and word != "{" + ALL_PARAMS + "}"
                              for word in spec.words):
        raise SweepConfigError("trainer.command: {params} stands for several arguments: give it as an argument of "
                               "its own (python train.py {params})")
    return spec


def seconds(key: str, value: Any, *, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SweepConfigError(f"trainer.{key}: must be a positive number of seconds, got {value!r}")
    return float(value)


def environment(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SweepConfigError(f"trainer.env: expected a mapping of variables, like {{OMP_NUM_THREADS: '1'}}, "
                               f"got {value!r}")
    out = {}
    for name, given in value.items():
        if not (isinstance(name, str) and ENV_NAME.match(name)):
            raise SweepConfigError(f"trainer.env: {name!r} is not a variable name; use letters, digits and '_'")
        if isinstance(given, (dict, list)) or given is None:
            raise SweepConfigError(f"trainer.env.{name}: must be a string or number, got {given!r}")
        out[name] = str(given).lower() if isinstance(given, bool) else str(given)
        if "\x00" in out[name]:
            raise SweepConfigError(f"trainer.env.{name}: holds a NUL byte, which no environment can carry; remove it")
    return out


def absolute_file(word: str, base: Path, *, first: bool) -> str:
    """``word`` made absolute when it names a file beside the config; a bare program name is left to PATH."""
    if not word or "{" in word or word.startswith("-") or Path(word).is_absolute() or (first and "/" not in word):
        return word
    candidate = base / word
    return str(candidate.resolve()) if candidate.is_file() else word


def absolute_files_in_string(command: str, base: Path) -> str:
    """The string with every word that names a file beside the config replaced by its absolute path."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command  # a shell string's own business; a plain one was refused already
    for index, word in enumerate(words):
        made = absolute_file(word, base, first=index == 0)
        if made != word:
            quoted = shlex.quote(made)
            command = re.sub(rf"(?<!\S){re.escape(word)}(?!\S)", lambda _match, text=quoted: text, command)
    return command
