"""`sweep`: run a hyperparameter sweep, then read its results; with train_cli.py, the only code that prints or exits."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
import typer.core

from sweep.cli_entry import coerce_quickly, run_app
from sweep.errors import SweepConfigError, exit_code, first_line
from sweep.states import TrialState


class QuickGroup(typer.core.TyperGroup):
    """`sweep` itself: its --version coerced without pydantic, as every command's flags (cli_entry.coerce_quickly)."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return coerce_quickly(super().get_params(ctx))


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  cls=QuickGroup, help="Hyperparameter sweeps: an Optuna study, every trial a nested MLflow run.")

StorageOption = Annotated[str | None, typer.Option(
    "--storage", envvar="SWEEP_STORAGE",
    help="Optuna storage: a journal file path, an RDB URL, redis://HOST:PORT[/DB] or grpc://HOST:PORT "
         "(sweep storage-proxy). [default: ./sweep.journal]")]
NameOption = Annotated[str | None, typer.Option("--name", help="The sweep (Optuna study) name. [default: latest]")]


class PlainUsage(typer.core.TyperCommand):
    """Usage lines as people write them (`sweep worker NAME`), not typer's `{name}` for a required argument; plain
    flag values coerced without pydantic (cli_entry.coerce_quickly)."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return coerce_quickly(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return [piece.replace("{", "").replace("}", "") for piece in super().collect_usage_pieces(ctx)]


def package_version() -> str:
    """The installed distribution's version (both `sweep --version` and `train --version` print it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sweep")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def print_version(value: bool) -> None:
    if value:
        typer.echo(package_version())
        raise typer.Exit()


VersionOption = Annotated[bool, typer.Option("--version", is_flag=True, is_eager=True, callback=print_version,
                                             help="Print the version and exit.")]


@app.callback()
def _before_any_command(version: VersionOption = False) -> None:
    """Only --version lives here: a command's own --help must not pay for importing Optuna."""


@app.command(cls=PlainUsage)
def run(
    trials: Annotated[int | None, typer.Option(metavar="N", help="Finished trials the sweep should hold; with "
                                               "--resume, a target above a sweep's count extends it. "
                                               "[default: the config's, else 50]")] = None,
    config: Annotated[Path | None, typer.Option(help="Sweep config YAML. [default: the built-in one]")] = None,
    name: Annotated[str | None, typer.Option(help="Sweep name. [default: generated; latest with --resume]")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else sqlite:///mlflow.db]")] = None,
    storage: StorageOption = None,
    sampler: Annotated[str | None, typer.Option(metavar="NAME", help="tpe | random | grid | cmaes | gp | qmc; gp needs "
                                                                     "pip install 'sweep[gp]' (torch). [default: tpe]")
                       ] = None,
    pruner: Annotated[str | None, typer.Option(metavar="NAME", help="median | hyperband | none. [default: median]")
                      ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler seed.")] = None,
    metric: Annotated[str | None, typer.Option(help="Objective: any metric the trainer reports (the built-in "
                                                    "one: val_accuracy or val_loss).")] = None,
    data: Annotated[str | None, typer.Option(help="CSV/TSV/JSONL file, or 'bundled'. [default: bundled]")] = None,
    text_column: Annotated[str | None, typer.Option(help="Data column holding the text. [default: text]")] = None,
    label_column: Annotated[str | None, typer.Option(help="Data column holding the 0/1 label. [default: label]")
                            ] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds, counted from "
                                                      "when the stores are ready and the first trial can start.")
                       ] = None,
    resume: Annotated[bool, typer.Option("--resume", is_flag=True,
                                         help="Continue a sweep (no --name: the latest unfinished one; with "
                                              "--trials, the latest one).")] = False,
    jobs: Annotated[int | None, typer.Option(min=1, help="Worker processes on this machine sharing the sweep; with "
                                                        "resources: {gpus: G} each gets its own CUDA_VISIBLE_DEVICES. "
                                                        "[default: 1]")] = None,
    on: Annotated[str | None, typer.Option("--on", metavar="WHERE", help="local | ray: run the workers as tasks on "
                                                                       "a Ray cluster (pip install 'sweep[ray]'). "
                                                                       "[default: the config's executor.on, else "
                                                                       "local]")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --on ray). [default: RAY_ADDRESS, "
                                                     "else a cluster started on this machine, else a new local "
                                                     "Ray]")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Ray tasks running trials (with --on ray). "
                                                            "[default: the config's executor.workers, else 1]")
                       ] = None,
    heartbeat: Annotated[int | None, typer.Option(help="Seconds between a trial's heartbeats (database storages).")
                         ] = None,
    register: Annotated[str | None, typer.Option(help="Register the best model as a new version of this "
                                                      "MLflow registered model (waits for it, as --wait).")] = None,
    wait: Annotated[bool | None, typer.Option("--wait/--no-wait",
                                              help="--wait: return once the plots, the best model and the parent "
                                                   "run's end are in MLflow, for a script that reads them next. "
                                                   "--no-wait: a background process writes them after the sweep "
                                                   "returns. [default: --no-wait; --wait in a batch or CI job or "
                                                   "as a container's main process, and with --register]")] = None,
) -> None:
    """Run a sweep: each trial runs the config's trainer in its own MLflow child run.

    The trainer is the built-in sentiment classifier, your Python function (trainer: {function: train.py:fit},
    an unchanged Optuna objective too) or any command (trainer: {command: "python train.py {params}"});
    docs/trainers.md has the details.
    """
    from sweep.config import check_sampler_packages, load_config, registered_model_name
    from sweep.executors import check_executor_packages
    from sweep.views import render_summary

    overrides = {"trials": trials, "name": name, "experiment": experiment, "tracking_uri": tracking_uri,
                 "storage": storage, "sampler": sampler, "pruner": pruner, "seed": seed, "metric": metric,
                 "data": data, "text_column": text_column, "label_column": label_column, "timeout": timeout,
                 "heartbeat": heartbeat, "on": on, "address": address, "workers": workers, "jobs": jobs}
    with study_command():
        sweep_config = load_config(config, overrides)
        check_sampler_packages(sweep_config.sampler)
        check_executor_packages(sweep_config.executor)
        registered_model_name(register)
        from sweep import provenance
        from sweep.engine import SweepInterrupted, WorkersFailed, run_sweep
        from sweep.processes import ends_with_its_job

        with sigterm_as_interrupt():  # only once the input is valid: nothing to interrupt before
            listener = RichProgress() if sys.stdout.isatty() else PlainProgress()
            try:
                summary = run_sweep(sweep_config, resume=resume, listener=listener, command_line=_command_line(),
                                    environment=provenance.collect(),
                                    flags=frozenset(key for key, value in overrides.items() if value is not None),
                                    register=register,
                                    publish_later=not (wait if wait is not None else ends_with_its_job()))
            except (SweepInterrupted, WorkersFailed) as stop:
                listener.close()
                OUTPUT.echo(render_summary(stop.summary))
                raise
            finally:
                listener.close()
            OUTPUT.echo(render_summary(summary))


@app.command(cls=PlainUsage)
def worker(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The sweep to join (its Optuna study name).")],
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else the sweep's own]")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Stop when the study holds this many trials. "
                                                           "[default: the sweep's target]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", is_flag=True, help="No progress lines.")] = False,
    finalize: Annotated[bool, typer.Option(" /--no-finalize", hidden=True)] = True,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="Die with this process (a Ray task's, or "
                                                                     "the `sweep run --jobs` that started it).")
                          ] = None,
    start_fd: Annotated[int | None, typer.Option(hidden=True, help="Wait for `sweep run --jobs` to release this "
                                                                   "worker through this pipe.")] = None,
) -> None:
    """Join an existing sweep from any machine: same study, same parent run."""
    from sweep.engine import SweepInterrupted, run_worker
    from sweep.views import render_summary

    if parent_pid is not None:
        from sweep.executors.lifetime import die_with_parent

        if not die_with_parent(parent_pid):
            fail("the process that started this worker (a Ray task, or `sweep run --jobs`) has ended", 1)
    if start_fd is not None:
        from sweep.workers import wait_for_release

        try:
            released = wait_for_release(start_fd)
        except KeyboardInterrupt:  # Ctrl-C while `sweep run` was starting: it stops too
            released = False
        if not released:  # the sweep's start failed: it says why
            return
    with study_command(), sigterm_as_interrupt():
        listener = QuietProgress() if quiet else PlainProgress()
        try:
            summary = run_worker(name, storage_url=storage, tracking_uri=tracking_uri, trials=trials,
                                 listener=listener, finalize=finalize, by_hand=parent_pid is None)
        except SweepInterrupted as stop:
            if not quiet:
                OUTPUT.echo(render_summary(stop.summary))
            raise
        if not quiet:
            OUTPUT.echo(render_summary(summary))


@app.command("set", cls=PlainUsage)
def set_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The sweep to change (its Optuna study name).")],
    storage: StorageOption = None,
    trials: Annotated[int | None, typer.Option(metavar="M", help="The new trial target. Its running workers read "
                                               "it before their next trial: lower, they start no trial past it "
                                               "(none is cut short); higher, they go on.")] = None,
) -> None:
    """Change a sweep's settings, running or not: its trial target."""
    from sweep.study.changing import set_target
    from sweep.views import render_target_change

    with study_command():
        if trials is None:
            raise SweepConfigError("give --trials M: the sweep's new trial target")
        typer.echo(render_target_change(set_target(storage, name, trials)))


@app.command(cls=PlainUsage)
def best(
    name: NameOption = None,
    storage: StorageOption = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json | yaml (a config re-running the winner: "
                                                      "sweep run --config best.yaml)")] = "text",
    pick: Annotated[str | None, typer.Option(help="Bounds such as \"model_bytes<=50000\" (comma-separated): the best "
                                                  "trial that meets them (of the Pareto front, with several "
                                                  "objectives).")] = None,
) -> None:
    """Print the winning config of a sweep (the latest when no --name); with several objectives, its Pareto front."""
    from sweep import queries
    from sweep.constraints import parse_pick

    with read_command():
        if fmt not in queries.FORMATS:
            raise SweepConfigError(f"--format must be one of {', '.join(queries.FORMATS)}, got {fmt!r}")
        bounds = parse_pick(pick) if pick is not None else ()
        result = queries.best_or_front(storage, name, bounds)
        if isinstance(result, queries.Front):
            typer.echo(queries.render_front(result, fmt))
        else:
            typer.echo(queries.render_best(result, fmt))


@app.command(cls=PlainUsage)
def enqueue(
    arguments: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME] PARAM=VALUE...", help="The sweep (default: the latest), then the trial's params.")] = None,
    from_file: Annotated[Path | None, typer.Option("--from", metavar="FILE", help="Params from a YAML file: "
                                                   "`sweep best --format yaml` output, or a mapping; PARAM=VALUE "
                                                   "arguments override it.")] = None,
    allow_outside: Annotated[bool, typer.Option("--allow-outside", is_flag=True, help="Run values outside their "
                                                "range in the space (never a choice the space lacks).")] = False,
    storage: StorageOption = None,
) -> None:
    """Queue a trial with these params into a sweep, running or stopped: the next free worker runs it, once, and
    it counts toward the target."""
    from sweep.engine import enqueue_trial
    from sweep.views import render_enqueued

    with study_command():
        typer.echo(render_enqueued(enqueue_trial(arguments or [], storage_url=storage, from_file=from_file,
                                                 allow_outside=allow_outside)))


@app.command("ls", cls=PlainUsage)
def list_command(storage: StorageOption = None) -> None:
    """List the sweeps: status, trials done / target, best value, start time."""
    from sweep import queries
    from sweep.views import render_sweeps

    with read_command():
        typer.echo(render_sweeps(queries.sweeps(storage)))


@app.command(cls=PlainUsage)
def show(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="The sweep. [default: the latest]")] = None,
    storage: StorageOption = None,
    top: Annotated[int, typer.Option(help="How many trials to show, best first.", min=1)] = 10,
) -> None:
    """The trials of a sweep sorted by the objective: params and metrics in a table."""
    from sweep import queries
    from sweep.views import render_trials

    with read_command():
        sweep_row, trials = queries.show(storage, name, top)
        typer.echo(render_trials(sweep_row, trials))


@app.command(cls=PlainUsage)
def sync(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="The sweep. [default: the latest]")] = None,
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else the sweep's own]")] = None,
) -> None:
    """Rebuild what MLflow is missing from the study (child runs, statuses, the parent's best)."""
    from sweep.engine import sync_sweep
    from sweep.views import render_sync, waiting_for_publisher

    with study_command():
        typer.echo(render_sync(sync_sweep(name, storage_url=storage, tracking_uri=tracking_uri,
                                          on_wait=lambda pid: typer.echo(waiting_for_publisher(pid)))))


@app.command(cls=PlainUsage)
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

    with study_command():
        target = mlflow_ui.ui_target(tracking_uri=tracking_uri, storage=storage, name=name)
        if target.remote:  # a tracking server is a UI already
            typer.echo(f"MLflow UI: {target.url(target.tracking_uri)}  (the tracking server's own)")
            return
        with sigterm_as_interrupt():
            typer.echo("starting the MLflow UI...")  # its server takes seconds to import and answer
            server = mlflow_ui.start_ui(target, host=host, port=port)
            try:
                typer.echo(f"MLflow UI: {server.url}  (Ctrl-C stops it)")
                server.wait()  # returns once a Ctrl-C or SIGTERM has stopped the server
            except KeyboardInterrupt:
                pass  # one that came just as the URL was printed, before the wait: a stop like any other
            finally:
                server.stop()  # the server runs in a session of its own: nothing may be left behind (twice is harmless)


@app.command(cls=PlainUsage)
def predict(
    texts: Annotated[list[str] | None, typer.Argument(metavar="TEXT", help="Texts to classify (built-in trainer).")
                     ] = None,
    file: Annotated[str | None, typer.Option(help="A function trainer's sweep: a CSV file with a header row, one "
                                                  "row per example. The built-in trainer's: one text per line. "
                                                  "- reads stdin.")] = None,
    name: NameOption = None,
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: the sweep's own]")] = None,
    pick: Annotated[str | None, typer.Option(help="Bounds such as \"model_bytes<=50000\": the model of the best trial "
                                                  "that meets them (as sweep best --pick).")] = None,
) -> None:
    """Predict with a sweep's best model: for the built-in trainer, label, probability of positive and text
    (tab-separated); for a function trainer's model, its predictions for the rows of --file as CSV."""
    from sweep.constraints import parse_pick
    from sweep.predict import check_texts, predict_file, read_texts
    from sweep.predict import predict as predict_texts
    from sweep.queries import best as best_of
    from sweep.views import render_predictions, render_table_predictions

    with study_command():
        if texts:
            check_texts(texts)  # bad input first: exit 2 whatever the stores hold
        bounds = parse_pick(pick) if pick is not None else ()
        winner = best_of(storage, name, bounds)
        if not winner.builtin:
            if texts or file is None:
                raise SweepConfigError("a function trainer's model predicts rows of a table: give --file data.csv "
                                       "(a header row naming the model's input columns)")
            typer.echo(render_table_predictions(predict_file(file, winner, tracking_uri=tracking_uri)))
            return
        given = [*(texts or []), *(read_texts(file) if file is not None else [])]
        typer.echo(render_predictions(predict_texts(given, storage=storage, name=name, tracking_uri=tracking_uri,
                                                    pick=bounds)))


@app.command(cls=PlainUsage)
def doctor(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="The sweep to join. [default: the latest]")] = None,
    storage: StorageOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLFLOW_TRACKING_URI, "
                                                          "else the sweep's own]")] = None,
) -> None:
    """Check from this host, before joining a sweep: the Optuna storage, the tracking server, the artifact
    store and the package versions. One line per check; exit 0 only when all pass."""
    from sweep.doctor import run_checks

    with study_command():
        checks = run_checks(storage=storage, tracking_uri=tracking_uri, name=name)
    for check in checks:
        typer.echo(f"{'✓' if check.passed else '✗'} {check.name}: {check.detail}")
    if not all(check.passed for check in checks):
        raise typer.Exit(1)


@app.command("storage-proxy", cls=PlainUsage)
def storage_proxy(
    storage: Annotated[str, typer.Option("--storage", envvar="SWEEP_STORAGE", help="The storage to serve: an RDB "
                                         "URL, redis://... or a journal file path.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 13000,
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 serves other machines.")] = "127.0.0.1",
    threads: Annotated[int, typer.Option(min=8, help="Server threads: above twice the number of workers.")] = 512,
) -> None:
    """Serve a storage to many workers through Optuna's gRPC storage proxy: they join with
    --storage grpc://HOST:PORT. Ctrl-C stops it."""
    from sweep.locations import StorageLocation
    from sweep.study import serve_storage

    def ready(url: str) -> None:
        OUTPUT.echo(f"storage proxy for {StorageLocation.parse(storage)} listening on {host}:{port}; "
                    f"workers use --storage {url}  (Ctrl-C stops it)")

    with study_command(), sigterm_as_interrupt(), contextlib.suppress(KeyboardInterrupt):
        serve_storage(StorageLocation.parse(storage), host=host, port=port, on_ready=ready, threads=threads)


class Output:
    """Standard output that its reader may close (`sweep run | head -2`): a closed pipe is not a crash.

    The sweep runs on to its end (its records are what matter); only its lines stop. Standard output
    then points at /dev/null, so nothing else (a flush at exit) meets the closed pipe again.
    """

    def __init__(self) -> None:
        self.closed = False

    def echo(self, text: str) -> None:
        if self.closed:
            return
        try:
            typer.echo(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


OUTPUT = Output()


class PlainProgress:
    """One line per trial: for logs, CI and pipes."""

    def sweep_opening(self, name: str, target: int, resumed: bool) -> None:
        from sweep.views import render_opening

        OUTPUT.echo(render_opening(name, target, resumed))

    def sweep_started(self, start: Any) -> None:
        from sweep.views import render_start

        OUTPUT.echo(render_start(start))

    def trial_finished(self, update: Any) -> None:
        from sweep.views import render_trial_line

        OUTPUT.echo(render_trial_line(update))

    publishing = False  # the trials are over: the end's plots and model are being written

    def finishing(self) -> None:
        from sweep.views import FINISHING

        self.publishing = True
        OUTPUT.echo(FINISHING)

    def waiting_for_publisher(self, pid: int) -> None:
        from sweep.views import waiting_for_publisher

        OUTPUT.echo(waiting_for_publisher(pid))

    def stopping(self) -> None:
        from sweep.views import STOPPING, STOPPING_WHILE_PUBLISHING

        with contextlib.suppress(OSError):
            message = STOPPING_WHILE_PUBLISHING if self.publishing else STOPPING
            os.write(sys.stderr.fileno(), (message + "\n").encode())

    def close(self) -> None:
        return None


class QuietProgress(PlainProgress):
    """Workers started by `sweep run --jobs`: the parent process reports progress."""

    def sweep_opening(self, name: str, target: int, resumed: bool) -> None:
        return None

    def sweep_started(self, start: Any) -> None:
        return None

    def trial_finished(self, update: Any) -> None:
        return None

    def finishing(self) -> None:
        return None

    def stopping(self) -> None:
        return None  # the `sweep run --jobs` process says it once


class RichProgress(PlainProgress):
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

        if update.state == TrialState.FAIL:
            self._progress.console.print(f"trial {update.number} failed: {first_error_line(update.error)}")
        self._progress.update(self._task, completed=update.counts.finished, best=render_best_so_far(update))

    def finishing(self) -> None:
        from sweep.views import FINISHING

        self.publishing = True
        self._progress.console.print(FINISHING)

    def close(self) -> None:
        self._progress.stop()


def first_error_line(error: str | None) -> str:
    """A failed trial's error in one line (a command's error goes on with its last stderr lines)."""
    return error.strip().splitlines()[0] if error and error.strip() else "unknown error"


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Errors either command reports on purpose become one `error:` line on stderr and the exit code
    sweep.errors.EXIT_CODES gives them; never a traceback. Anything else propagates: a bug shows."""
    try:
        yield
    except BaseException as error:
        code = exit_code(error)
        if code is None:
            raise
        fail("interrupted" if type(error) is KeyboardInterrupt else first_line(error), code)


@contextlib.contextmanager
def study_command() -> Iterator[None]:
    """The body of a `sweep` command: errors as in errors_to_exit, and Optuna's own log lines kept out of
    the output (every command reads or runs a study; set here, when it runs, never at import)."""
    with errors_to_exit():
        from sweep.study import configure_optuna

        configure_optuna()
        yield


def read_command() -> contextlib.AbstractContextManager[None]:
    """The body of `sweep best`, `ls`, `show`: errors as in errors_to_exit. They read most stores without
    importing Optuna, which they would pay for here; when they do replay a study, the reader quiets Optuna itself
    (sweep/study/reading.py)."""
    return errors_to_exit()


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt, so it ends runs exactly like Ctrl-C; the handler
    that was there before is put back on the way out."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _command_line() -> str:
    return " ".join(shlex.quote(arg) for arg in ["sweep", *sys.argv[1:]])


def main() -> None:
    show_warnings(sys.stderr)
    try:
        run_app(app, "sweep")
    except SystemExit as ended:
        # a sweep or a worker ran here: Optuna, MLflow, the trainer's libraries
        if "sweep.engine.run" in sys.modules:
            exit_without_teardown(ended.code if isinstance(ended.code, int) else 0 if ended.code is None else 1)
        raise


def exit_without_teardown(code: int) -> NoReturn:
    """End the process without the interpreter tearing down every module a sweep loaded (CPU the user waits for,
    that writes nothing); what that exit does which matters is done first: the tracking process joined, logs and
    output flushed."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.join()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            stream.flush()
    os._exit(code)


def show_warnings(stream: Any) -> logging.Handler:
    """What the sweep logs as a warning for the user (a torn journal line set aside) is one line on ``stream``;
    returns the handler (an in-process caller removes it from the "sweep" logger when done)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("sweep")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    return handler


if __name__ == "__main__":
    main()
