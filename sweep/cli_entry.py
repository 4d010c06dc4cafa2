"""How `sweep` and `train` start: a bad flag or value is one `error:` line (exit 2), like every other error of
theirs, instead of click's usage block."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer


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
