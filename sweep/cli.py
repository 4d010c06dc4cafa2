"""`sweep`: run a hyperparameter sweep, then read its results. The only module that prints or exits."""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from sweep.errors import SweepError
from trainer.errors import TrainerError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Hyperparameter sweeps: an Optuna study, every trial a nested MLflow run.")

StorageOption = Annotated[str | None, typer.Option(
    "--storage", envvar="SWEEP_STORAGE",
    help="Optuna storage: a journal file path or an RDB URL. [default: ./sweep.journal]")]
NameOption = Annotated[str | None, typer.Option("--name", help="The sweep (Optuna study) name. [default: latest]")]


@app.command()
def run(
    trials: Annotated[int | None, typer.Option(help="Finished trials the sweep should hold.")] = None,
    config: Annotated[Path | None, typer.Option(help="Sweep config YAML. [default: the built-in one]")] = None,
    name: Annotated[str | None, typer.Option(help="Sweep name. [default: generated; latest with --resume]")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else sqlite:///mlflow.db]")] = None,
    storage: StorageOption = None,
    sampler: Annotated[str | None, typer.Option(help="tpe | random | grid | cmaes | gp | qmc")] = None,
    pruner: Annotated[str | None, typer.Option(help="median | hyperband | none")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler seed.")] = None,
    metric: Annotated[str | None, typer.Option(help="Objective: val_accuracy or val_loss.")] = None,
    data: Annotated[str | None, typer.Option(help="CSV/TSV/JSONL file, or 'bundled'.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a sweep (no --name: latest unfinished).")] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes on this machine sharing the sweep.")] = 1,
    heartbeat: Annotated[int | None, typer.Option(help="Seconds between a trial's heartbeats (database storages).")
                         ] = None,
    register: Annotated[str | None, typer.Option(help="Register the best model as a new version of this "
                                                      "MLflow registered model.")] = None,
) -> None:
    """Run a sweep: each trial trains the classifier in its own MLflow child run."""
    from sweep.config import load_config, registered_model_name
    from sweep.views import render_summary

    overrides = {"trials": trials, "name": name, "experiment": experiment, "tracking_uri": tracking_uri,
                 "storage": storage, "sampler": sampler, "pruner": pruner, "seed": seed, "metric": metric,
                 "data": data, "timeout": timeout, "heartbeat": heartbeat}
    with _errors_to_exit():
        sweep_config = load_config(config, overrides)
        registered_model_name(register)
        from sweep import provenance
        from sweep.study import SweepInterrupted, run_sweep

        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        listener = _RichProgress() if sys.stdout.isatty() else _PlainProgress()
        try:
            summary = run_sweep(sweep_config, resume=resume, listener=listener, command_line=_command_line(),
                                environment=provenance.collect(),
                                flags=frozenset(key for key, value in overrides.items() if value is not None),
                                jobs=jobs, register=register)
        except SweepInterrupted as stop:
            listener.close()
            typer.echo(render_summary(stop.summary))
            raise
        finally:
            listener.close()
        typer.echo(render_summary(summary))


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help="The sweep to join (its Optuna study name).")],
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else the sweep's own]")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Stop when the study holds this many trials. "
                                                           "[default: the sweep's target]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
    finalize: Annotated[bool, typer.Option(" /--no-finalize", hidden=True)] = True,
) -> None:
    """Join an existing sweep from any machine: same study, same parent run."""
    from sweep.study import SweepInterrupted, run_worker
    from sweep.views import render_summary

    with _errors_to_exit():
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        listener = _QuietProgress() if quiet else _PlainProgress()
        try:
            summary = run_worker(name, storage_url=storage, tracking_uri=tracking_uri, trials=trials,
                                 listener=listener, finalize=finalize)
        except SweepInterrupted as stop:
            if not quiet:
                typer.echo(render_summary(stop.summary))
            raise
        if not quiet:
            typer.echo(render_summary(summary))


@app.command()
def best(
    name: NameOption = None,
    storage: StorageOption = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json | yaml (yaml fits `train --config`)")] = "text",
    experiment: Annotated[str | None, typer.Option(help="Accepted for symmetry; the study knows it.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="Accepted for symmetry; not needed.")] = None,
) -> None:
    """Print the winning config of a sweep (the latest when no --name)."""
    from sweep import report

    with _errors_to_exit():
        if fmt not in report.FORMATS:
            raise _UsageError(f"--format must be one of {', '.join(report.FORMATS)}, got {fmt!r}")
        typer.echo(report.render_best(report.best(storage, name), fmt))


@app.command("ls")
def list_command(storage: StorageOption = None) -> None:
    """List the sweeps: status, trials done / target, best value, start time."""
    from sweep import report
    from sweep.views import render_sweeps

    with _errors_to_exit():
        typer.echo(render_sweeps(report.sweeps(storage)))


@app.command()
def show(
    name: Annotated[str | None, typer.Argument(help="The sweep. [default: the latest]")] = None,
    storage: StorageOption = None,
    top: Annotated[int, typer.Option(help="How many trials to show, best first.", min=1)] = 10,
) -> None:
    """The trials of a sweep sorted by the objective: params and metrics in a table."""
    from sweep import report
    from sweep.views import render_trials

    with _errors_to_exit():
        sweep_row, trials = report.show(storage, name)
        typer.echo(render_trials(sweep_row, trials[:top]))


@app.command()
def sync(
    name: Annotated[str | None, typer.Argument(help="The sweep. [default: the latest]")] = None,
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else the sweep's own]")] = None,
) -> None:
    """Rebuild what MLflow is missing from the study (child runs, statuses, the parent's best)."""
    from sweep.study.sync import sync_sweep
    from sweep.views import render_sync

    with _errors_to_exit():
        typer.echo(render_sync(sync_sweep(name, storage_url=storage, tracking_uri=tracking_uri)))


@app.command()
def ui(
    name: NameOption = None,
    storage: StorageOption = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the UI server.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 exposes the runs to the network.")
                    ] = "127.0.0.1",
    tracking_uri: Annotated[str | None, typer.Option(
        help="MLflow tracking URI. [default: the sweep's own, else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db]")
    ] = None,
) -> None:
    """Start the MLflow UI on the sweep's tracking store and print the sweep's URL; Ctrl-C stops it."""
    from sweep import ui as mlflow_ui

    with _errors_to_exit():
        target = mlflow_ui.ui_target(tracking_uri=tracking_uri, storage=storage, name=name)
        if target.remote:  # a tracking server is a UI already
            typer.echo(f"MLflow UI: {target.url(target.tracking_uri)}  (the tracking server's own)")
            return
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        server = mlflow_ui.start_ui(target, host=host, port=port)
        typer.echo(f"MLflow UI: {server.url}  (Ctrl-C stops it)")
        server.wait()


@app.command()
def predict(
    texts: Annotated[list[str] | None, typer.Argument(metavar="TEXT...", help="Texts to classify.")] = None,
    file: Annotated[str | None, typer.Option(help="A UTF-8 file with one text per line; - reads stdin.")] = None,
    name: NameOption = None,
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: the sweep's own]")] = None,
) -> None:
    """Label texts with a sweep's best model: label, probability of positive, text (tab-separated)."""
    from sweep.predict import predict as predict_texts
    from sweep.predict import read_texts
    from sweep.views import render_predictions

    with _errors_to_exit():
        given = [*(texts or []), *(read_texts(file) if file is not None else [])]
        typer.echo(render_predictions(predict_texts(given, storage=storage, name=name, tracking_uri=tracking_uri)))


class _PlainProgress:
    """One line per trial: for logs, CI and pipes."""

    def sweep_started(self, start: Any) -> None:
        from sweep.views import render_start

        typer.echo(render_start(start))

    def trial_finished(self, update: Any) -> None:
        from sweep.views import render_trial_line

        typer.echo(render_trial_line(update))

    def close(self) -> None:
        return None


class _QuietProgress(_PlainProgress):
    """Workers started by `sweep run --jobs`: the parent process reports progress."""

    def sweep_started(self, start: Any) -> None:
        return None

    def trial_finished(self, update: Any) -> None:
        return None


class _RichProgress(_PlainProgress):
    """A progress bar: trials done / total, best so far, elapsed and remaining time."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[best]}"), TimeElapsedColumn(), TextColumn("eta"),
                                  TimeRemainingColumn(), transient=False)
        self._task: Any = None

    def sweep_started(self, start: Any) -> None:
        super().sweep_started(start)
        self._progress.start()
        self._task = self._progress.add_task(start.name, total=start.target, completed=start.already_finished,
                                             best="")

    def trial_finished(self, update: Any) -> None:
        from sweep.views import render_best_so_far

        if update.state == "FAIL":
            self._progress.console.print(f"trial {update.number} failed: {update.error}")
        self._progress.update(self._task, completed=update.counts.finished, best=render_best_so_far(update))

    def close(self) -> None:
        self._progress.stop()


class _UsageError(SweepError):
    exit_code = 2


class _errors_to_exit:
    """Domain errors become one line on stderr and the error's exit code; never a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any) -> bool:
        if error is None:
            return False
        if isinstance(error, SweepError):
            _fail(str(error), error.exit_code)
        if isinstance(error, TrainerError):
            _fail(str(error), 1 if isinstance(error, FileNotFoundError) else 2)
        if isinstance(error, KeyboardInterrupt):
            _fail("interrupted", 130)
        return False


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends runs exactly like Ctrl-C


def _command_line() -> str:
    return " ".join(shlex.quote(arg) for arg in ["sweep", *sys.argv[1:]])


def main() -> None:
    app(prog_name="sweep")


if __name__ == "__main__":
    main()
