"""Text renderings of sweeps and trials; the CLI prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweep.study import SweepRow, SweepStart, SweepSummary, TrialRow, TrialUpdate

if TYPE_CHECKING:
    from sweep.predict import Prediction

SHOWN_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "train_accuracy")


def render_start(start: SweepStart) -> str:
    verb = "resuming" if start.resumed else "starting"
    done = f", {start.already_finished} done" if start.resumed else ""
    return (f"{verb} sweep {start.name}: {start.target} trials{done}\n"
            f"  optuna storage: {start.storage}\n"
            f"  mlflow:         {start.tracking_uri}  (experiment {start.experiment!r}, "
            f"parent run {start.parent_run_id})")


def render_best_so_far(update: TrialUpdate) -> str:
    if update.best is None:
        return "best: -"
    return f"best {update.best.value:.4f} (trial {update.best.number})"


def render_trial_line(update: TrialUpdate) -> str:
    value = f"{update.value:.4f}" if update.value is not None else "-"
    line = (f"trial {update.number:>4} {update.state.lower():<8} value={value}  "
            f"[{update.counts.finished}/{update.target}]  {render_best_so_far(update)}  {update.elapsed:6.1f}s")
    if update.error:
        line += f"  error: {update.error}"
    return line


def render_summary(summary: SweepSummary) -> str:
    counts = summary.counts
    lines = [f"sweep {summary.name} {summary.status}: {counts.finished} trials "
             f"({counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed) in {summary.elapsed:.1f}s"
             + (f" ({summary.trainer_seconds:.1f}s training)" if summary.trainer_seconds is not None else "")]
    if summary.best is not None:
        best = summary.best
        lines.append(f"best trial {best.number}: value {best.value:.4f}")
        lines += [f"  {key} = {value}" for key, value in best.params.items()]
        lines += [f"  {key}: {best.metrics[key]:.4f}" for key in SHOWN_METRICS if key in best.metrics]
    lines.append(f"parent run: {summary.parent_run_id} (experiment {summary.experiment!r})")
    if summary.tracking.failed_trials:
        lines.append(f"MLflow is behind: {len(summary.tracking.failed_trials)} trials were not logged "
                     f"({summary.tracking.errors[0] if summary.tracking.errors else 'unknown error'}); "
                     f"the study has them, `sweep sync {summary.name}` will repair MLflow")
    lines += _published_lines(summary)
    storage = "" if summary.storage.endswith("sweep.journal") else f" --storage {summary.storage}"
    lines.append(f"see the runs:   sweep ui --name {summary.name}{storage}")
    lines.append(f"print the best: sweep best --name {summary.name}{storage}")
    return "\n".join(lines)


def _published_lines(summary: SweepSummary) -> list[str]:
    """What the end of the sweep left on the parent run: plots, the pyfunc model, its registered version."""
    tracking, lines = summary.tracking, []
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


def render_sweeps(rows: list[SweepRow]) -> str:
    if not rows:
        return "no sweeps yet; start one with `sweep run`"
    header = ("name", "status", "trials", "best", "started")
    table = [(r.name, r.status, f"{r.counts.finished}/{r.target}",
              "-" if r.best_value is None else f"{r.best_value:.4f}", r.created[:19].replace("T", " "))
             for r in rows]
    return _table(header, table)


def render_trials(sweep: SweepRow, trials: list[TrialRow]) -> str:
    params = sorted({key for t in trials for key in t.params})
    header = ("trial", "state", sweep.metric, *params, *[m for m in SHOWN_METRICS if m != sweep.metric])
    table = []
    for t in trials:
        row: list[Any] = [t.number, t.state.lower(), "-" if t.value is None else f"{t.value:.4f}"]
        row += [_short(t.params.get(p, "")) for p in params]
        row += [f"{t.metrics[m]:.4f}" if m in t.metrics else "-" for m in SHOWN_METRICS if m != sweep.metric]
        table.append(tuple(row))
    title = (f"sweep {sweep.name} ({sweep.status}): {sweep.counts.finished}/{sweep.target} trials, "
             f"{sweep.metric} {'max' if sweep.direction == 'maximize' else 'min'}")
    return title + "\n" + _table(header, table)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def render_sync(result: Any) -> str:
    """What `sweep sync` repaired; "nothing to repair" on a second run."""
    lines = []
    if result.parent_created:
        lines.append(f"MLflow had lost the parent run: created {result.parent_run_id} for sweep {result.name}")
    if result.repaired:
        lines.append(f"repaired {len(result.repaired)} child runs (trials {_numbers(result.repaired)})")
    if result.parent_ended:
        lines.append("ended the parent run as the sweep's state says")
    if not lines:
        lines.append(f"sweep {result.name}: MLflow matches the study, nothing to repair")
    if result.best_trial is not None:
        lines.append(f"best trial on the parent run {result.parent_run_id}: {result.best_trial}")
    lines += [f"warning: {problem}" for problem in result.problems]
    return "\n".join(lines)


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > 20 else "")
