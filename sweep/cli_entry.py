"""How `sweep` and `train` start: a bad flag or value is one `error:` line (exit 2), like every other error of
theirs, instead of click's usage block."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer
import typer.core


def run_app(app: typer.Typer, prog_name: str) -> NoReturn:
    """Run ``app`` on sys.argv and exit with its code."""
    try:
        code = app(prog_name=prog_name, standalone_mode=False)
    except typer.Abort:  # end of input at a prompt
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except typer.TyperException as error:  # click's errors (typer vendors click): a bad flag, value or argument
        exit_code, message = getattr(error, "exit_code", 1), error.format_message()
        if message.startswith("Usage:"):  # a group called with nothing to do: its help is the answer
            typer.echo(message, err=True)
            sys.exit(exit_code)
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None and exit_code == 2 else ""
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)


# -- values of flags, coerced without pydantic ------------------------------------------------------------------
#
# typer coerces every flag's value (a default, an unset flag too) through a pydantic TypeAdapter it builds on first
# use, and importing pydantic costs `sweep best` on a small sweep about a third of its time. The values a command
# line gives are nearly always plain: text for a str flag, decimal digits for an int one. Those are taken here as
# typer takes them; any other value (and so every error) goes to typer's own coercion, so what it accepts and the
# messages it gives stay exactly typer's.

Param = typer.core.TyperOption | typer.core.TyperArgument


class QuickCoercion:
    """A parameter's value coercion: the plain cases here, the rest by typer's (``full``, built on first need)."""

    def __init__(self, param: Param, full: Callable[[], Any]) -> None:
        descriptor = getattr(param, "type_descriptor", None)
        info = getattr(descriptor, "parameter_info", None)
        plain = info is not None and info.parser is None and not getattr(info, "clamp", False)
        self._kind = getattr(descriptor, "annotation", None) if plain else None
        self._low, self._high = getattr(param, "min", None), getattr(param, "max", None)
        self._many = param.multiple or param.nargs == -1  # as typer tells a parameter of several values
        self._full = full

    def coerce(self, value: Any, param: Param, ctx: typer.Context) -> Any:
        if not self._many:
            if value is None:
                return None  # an unset flag: typer's coercion gives it back as it is too
            quick = self.quick(value)
            if quick is not None:
                return quick
        return self._full().coerce(value, param=param, ctx=ctx)

    def quick(self, value: Any) -> Any:
        """``value`` coerced when it is a plain case, else None."""
        if self._kind is str and type(value) is str and self._low is None and self._high is None:
            return value
        if self._kind is int:
            number = value if type(value) is int else _decimal(value)
            if number is not None and (self._low is None or number >= self._low) and \
                    (self._high is None or number <= self._high):
                return number
        return None


def _decimal(value: Any) -> int | None:
    """A text of plain decimal digits (no sign, space, underscore or leading zero) as an int, else None."""
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 18 and \
            (value == "0" or not value.startswith("0")):
        return int(value)
    return None


def coerce_quickly(params: list[Any]) -> list[Any]:
    """``params`` (a command's, as typer made them) made to coerce plain values without typer building (and
    importing) pydantic; returned for get_params to hand on."""
    for param in params:
        full = getattr(param, "get_runtime_param", None)  # typer's lazily built coercion; absent: not typer's
        if callable(full) and "get_runtime_param" not in vars(param):  # not made quick before
            quick = QuickCoercion(param, full)
            param.get_runtime_param = lambda quick=quick: quick
    return params
