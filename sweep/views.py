"""Text renderings of sweeps and trials; the CLI prints them."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from sweep.engine.progress import SweepStart, SweepSummary, TrialUpdate
from sweep.records import Counts, MlflowTime
from sweep.states import SweepStatus
from sweep.study import SweepRow, TrialRow

if TYPE_CHECKING:
    from sweep.engine.enqueue import Enqueued
    from sweep.predict import Prediction, TablePredictions
    from sweep.study.changing import TargetChange

SHOWN_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "train_accuracy")
MAX_SHOWN_METRICS = 4  # extra metric columns in `sweep show`: a row stays on one line


def shown_metrics(metric_sets: list[dict[str, float]], objective: str) -> list[str]:
    """The metrics worth a column besides the objective: the built-in trainer's usual ones when present, then
    a user trainer's own by name, at most MAX_SHOWN_METRICS."""
    present = {name for metrics in metric_sets for name in metrics} - {objective}
    known = [name for name in SHOWN_METRICS if name in present]
    return (known + sorted(present - set(SHOWN_METRICS)))[:MAX_SHOWN_METRICS]


def render_opening(name: str, target: int, resumed: bool) -> str:
    """The sweep's first line, before its stores are open."""
    return f"{'resuming' if resumed else 'starting'} sweep {name}: {target} trials"


def render_start(start: SweepStart) -> str:
    """The lines that follow the first once the stores are open: where the study and the runs are."""
    done = f"\n  done already:   {start.already_finished} trials" if start.resumed else ""
    # a new sweep's first trials start before MLflow has made its parent run: the summary names it
    parent = f", parent run {start.parent_run_id}" if start.parent_run_id is not None else ""
    return (f"  optuna storage: {start.storage}\n"
            f"  mlflow:         {start.tracking_uri}  (experiment {start.experiment!r}{parent}){done}")


def render_best_so_far(update: TrialUpdate) -> str:
    if update.best is None:
        return "best: -"
    return f"best {update.best.value:.4f} (trial {update.best.number})"


def render_trial_line(update: TrialUpdate) -> str:
    """One line per trial, its fields at fixed widths so the columns line up from the first trial to the last."""
    value = f"{update.value:.4f}" if update.value is not None else "-"
    width = len(str(update.target))
    line = (f"trial {update.number:>4} {update.state.lower():<8} value={value:<7}  "
            f"[{update.counts.finished:>{width}}/{update.target}]  {update.elapsed:7.1f}s  "
            f"{render_best_so_far(update):<24}")
    line = line.rstrip()
    if update.same_as is not None:
        line += f"  same settings as trial {update.same_as}: its result reused"
    if update.error:
        line += f"  error: {update.error.splitlines()[0]}"  # a command's error goes on with its stderr lines
    return line


FINISHING = "writing plots and the best model to the parent run..."
STOPPING = ("stopping: the running trial ends at its next report or epoch (Ctrl-C again stops it now); "
            "the sweep can be resumed")
STOPPING_WHILE_PUBLISHING = ("stopping: every trial has ended; the sweep ends once its plots and best model are "
                             "written to the parent run")


def waiting_for_publisher(pid: int) -> str:
    process = f" (pid {pid})" if pid else ""
    return f"waiting for the sweep's last end to be written to MLflow by its background publisher{process}..."


def _interrupted(counts: Counts) -> str:
    return f", {counts.interrupted} interrupted" if counts.interrupted else ""


def render_summary(summary: SweepSummary) -> str:
    counts = summary.counts
    lines = [f"note: {summary.note}"] if summary.note else []
    stopped = f" (stopped by {summary.stopped_by})" if summary.stopped_by is not None else ""
    lines += [f"sweep {summary.name} {summary.status}{stopped}: {counts.finished} trials "
              f"({counts.complete} complete{_reused(counts)}, {counts.pruned} pruned, {counts.failed} failed"
              f"{_interrupted(counts)}{_retried(counts, ', ')}) in {summary.elapsed:.1f}s"
             + (f" ({summary.trainer_seconds:.1f}s training)" if summary.trainer_seconds is not None else "")]
    if summary.mlflow_time is not None:
        lines.append(mlflow_time_line(summary.mlflow_time, models_autologged=summary.models_autologged))
    if counts.failed and counts.failed * 2 >= counts.finished:
        lines.append(f"warning: {counts.failed} of {counts.finished} trials failed; `sweep show` gives their errors")
    if summary.best is not None:
        best = summary.best
        if summary.front_size is not None:
            lines.append(f"Pareto front: {summary.front_size} trials (sweep best --name {summary.name} lists them); "
                         f"the best on the first objective:")
        lines.append(f"best trial {best.number}: value {best.value:.4f}")
        lines += [f"  {key} = {value}" for key, value in best.params.items()]
        lines += [f"  {key} = {best.metrics[key]:.4f}" for key in shown_metrics([best.metrics], "")]
    lines.append(f"parent run: {summary.parent_run_id} (experiment {summary.experiment!r})")
    if summary.tracking.failed_trials:
        lines.append(f"MLflow is behind: {len(summary.tracking.failed_trials)} trials were not logged "
                     f"({summary.tracking.errors[0] if summary.tracking.errors else 'unknown error'}); "
                     f"the study has them, `sweep sync {summary.name}` will repair MLflow")
    lines += _published_lines(summary)
    storage = "" if summary.storage.endswith("sweep.journal") else f" --storage {shlex.quote(summary.storage)}"
    lines.append(f"see the runs:   sweep ui --name {summary.name}{storage}")
    lines.append(f"print the best: sweep best --name {summary.name}{storage}")
    return "\n".join(lines)


def mlflow_time_line(time: MlflowTime, *, models_autologged: bool) -> str:
    """How much of the trials' time their own MLflow logging took (mlflow: active, autolog); with a model
    autologged in every trial, how to skip that."""
    share = f" ({time.seconds / time.trial_seconds:.0%})" if time.trial_seconds > 0 else ""
    line = f"MLflow logging inside fit: {time.seconds:.1f}s of {time.trial_seconds:.1f}s trial time{share}"
    if models_autologged:
        line += "; `mlflow: {autolog: {log_models: false}}` skips logging a model in every trial"
    return line


def _published_lines(summary: SweepSummary) -> list[str]:
    """What the end of the sweep left on the parent run: plots, the pyfunc model, its registered version."""
    tracking, lines = summary.tracking, []
    if summary.publisher is not None:
        return [f"plots, model:   being written to the parent run in the background (pid {summary.publisher}); "
                f"`sweep run --wait` waits for them, `sweep sync {summary.name}` completes them if cut short"]
    if tracking.plots:
        skipped = f"; skipped {', '.join(tracking.plots_skipped)}" if tracking.plots_skipped else ""
        lines.append(f"plots:          {len(tracking.plots)} under plots/ on the parent run{skipped}")
    elif tracking.plots_skipped:
        lines.append(f"plots:          none yet ({next(iter(tracking.plots_skipped.values()))})")
    model = tracking.model
    if model.uri is not None:
        lines.append(f"best model:     {model.uri}  (trial {model.trial}; mlflow.pyfunc.load_model, sweep predict)")
    if model.registered is not None:
        lines.append(f"registered:     models:/{model.registered}")
    if model.warning is not None:
        lines.append(f"warning: {model.warning}")
    return lines


def render_predictions(predictions: list[Prediction]) -> str:
    """Like `train predict`: label, probability of the positive class, text; tab-separated."""
    return "\n".join(f"{'positive' if p.label else 'negative'}\t{p.probability:.3f}\t{p.text}" for p in predictions)


def render_table_predictions(table: TablePredictions) -> str:
    """A function trainer's predictions: a CSV header of the model's output columns, then one line per input row."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return buffer.getvalue().rstrip("\n")


def render_target_change(change: TargetChange) -> str:
    """What `sweep set --trials` did, and what the sweep's workers make of it."""
    line = f"sweep {change.name}: target {change.before} -> {change.after} trials ({change.counted} counted"
    line += f", {change.running} running)" if change.running else ")"
    if change.status != SweepStatus.RUNNING:
        if change.after <= change.counted:
            return f"{line}; it holds that many already: nothing is left to run"
        return f"{line}; `sweep run --resume --name {change.name}` runs it to the new target"
    if change.after <= change.counted:
        return f"{line}; its workers start no new trial and end once the running ones have"
    return f"{line}; its workers read it before their next trial"


def render_sweeps(rows: list[SweepRow]) -> str:
    if not rows:
        return "no sweeps yet; start one with `sweep run`"
    header = ("name", "status", "trials", "failed", "repeats", "best (metric)", "started")
    rows_shown = [(r.name, r.shown_status, f"{r.counts.finished}/{r.target}{_retried(r.counts, ' (', ')')}",
              r.counts.failed, r.repeats, "-" if r.best_value is None else f"{r.best_value:.4f} {r.metric}",
              r.created[:19].replace("T", " "))
             for r in rows]
    return table(header, rows_shown)


def render_trials(sweep: SweepRow, trials: list[TrialRow]) -> str:
    objectives = [(sweep.metric, sweep.direction), *sweep.more_objectives]
    shown_objectives = ", ".join(f"{metric} {'max' if direction == 'maximize' else 'min'}"
                                 for metric, direction in objectives)
    title = (f"sweep {sweep.name} ({sweep.shown_status}): {sweep.counts.finished}/{sweep.target} trials"
             f"{_retried(sweep.counts, ' (', ')')}, {shown_objectives}")
    if not trials:
        return title + "\nno trials yet"
    several = bool(sweep.more_objectives)
    if several:
        title += "; * marks the Pareto front"
    params = sorted({key for t in trials for key in t.params})
    errors = any(t.error for t in trials)
    repeats = any(t.same_as is not None for t in trials)
    infeasible = any(not t.feasible for t in trials)
    extra = [m for m in shown_metrics([t.metrics for t in trials], sweep.metric) if m not in dict(objectives)]
    header = ("trial", *(("front",) if several else ()), "state", *(metric for metric, _ in objectives), *params,
              *extra, *(("feasible",) if infeasible else ()), *(("same as",) if repeats else ()),
              *(("error",) if errors else ()))
    rows = []
    for t in trials:
        values = t.values or ((t.value,) if t.value is not None else ())
        row: list[Any] = [t.number, *(("*" if t.on_front else "",) if several else ()), t.state.lower()]
        row += [f"{values[i]:.4f}" if i < len(values) else "-" for i in range(len(objectives))]
        row += [_short(t.params.get(p, "")) for p in params]
        row += [f"{t.metrics[m]:.4f}" if m in t.metrics else "-" for m in extra]
        if infeasible:
            row.append("" if t.feasible or t.value is None else "no")
        if repeats:
            row.append("" if t.same_as is None else f"trial {t.same_as}")
        if errors:
            row.append(_shortened(t.error or ""))
        rows.append(tuple(row))
    return title + "\n" + table(header, rows)


ERROR_WIDTH = 60  # `sweep show` keeps a row on one line; `sweep best --format json` and MLflow have the rest


def _shortened(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= ERROR_WIDTH else line[:ERROR_WIDTH - 3] + "..."


def _reused(counts: Counts) -> str:
    """How many complete trials reused an earlier one's result (repeats: reuse), when there are any."""
    return f" ({counts.reused} reused from identical settings)" if counts.reused else ""


def _retried(counts: Counts, before: str, after: str = "") -> str:
    """How many failed attempts a retry replaced (they are not in the trial count), when there are any."""
    return f"{before}{counts.retried} retried{after}" if counts.retried else ""


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def render_enqueued(queued: Enqueued) -> str:
    """One line: the trial queued, and what will run it."""
    params = " ".join(f"{name}={value}" for name, value in queued.params.items())
    raised = f"; the sweep's target is now {queued.target}" if queued.target_raised else ""
    how = (f"the sweep's next free worker runs it (if none is left: {queued.resume})" if queued.running
           else f"{queued.resume} runs it")
    return f"queued trial {queued.number} of sweep {queued.sweep} ({params}){raised}: {how}"


def render_sync(result: Any) -> str:
    """What `sweep sync` repaired; "nothing to repair" when MLflow already agreed with the study."""
    lines = []
    if result.parent_created:
        lines.append(f"MLflow had lost the parent run: created {result.parent_run_id} for sweep {result.name}")
    if result.parent_adopted:
        lines.append(f"linked the parent run {result.parent_run_id} to sweep {result.name} (its start was cut short)")
    if result.repaired:
        lines.append(f"repaired {len(result.repaired)} child runs (trials {_numbers(result.repaired)})")
    if result.relinked:
        lines.append(f"the study now links the rebuilt child runs of trials {_numbers(result.relinked)}")
    if result.best_repaired:
        lines.append(f"the parent's best disagreed with the study; rewrote: {'; '.join(result.best_repaired)}")
    if result.published:
        lines.append(f"published on the parent run: {', '.join(result.published)}")
    if result.parent_ended:
        lines.append("ended the parent run as the sweep's state says")
    if not result.changed:
        lines.append(f"sweep {result.name}: MLflow matches the study, nothing to repair")
    if result.best_trial is not None:
        lines.append(f"best trial on the parent run {result.parent_run_id}: {result.best_trial}")
    if result.missing:
        lines.append(f"cannot rebuild: {result.missing}")
    for number, reason in result.refused.items():
        lines.append(f"skipped what MLflow refused of trial {number}'s record ({reason}); its run ended as the study "
                     f"says, tagged sweep.refused")
    lines += [f"warning: {problem}" for problem in result.problems]
    return "\n".join(lines)


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > 20 else "")
