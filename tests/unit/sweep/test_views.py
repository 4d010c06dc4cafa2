"""What the CLI prints: progress lines in fixed columns, `sweep ls`, `sweep show`, `sweep best`."""

from __future__ import annotations

from sweep.engine import SweepSummary, TrialUpdate
from sweep.queries import Best, render_best
from sweep.records import BestTrial, Counts, MlflowTime
from sweep.study import SweepRow, TrialRow
from sweep.views import render_summary, render_sweeps, render_trial_line, render_trials


def row(**changes) -> SweepRow:
    values = dict(name="demo", status="finished", counts=Counts(10, 1, 1), target=12, best_value=0.8741,
                  created="2026-01-01T10:00:00", experiment="exp", parent_run_id="parent-1", metric="val_accuracy",
                  direction="maximize")
    return SweepRow(**{**values, **changes})


def update(number: int, value: float | None, finished: int, error: str | None = None) -> TrialUpdate:
    best = BestTrial(3, "run-3", 0.8741, {}, {}, None)
    return TrialUpdate(number, "COMPLETE" if value is not None else "FAIL", value, error,
                       Counts(finished, 0, 0), 70, best, 12.5)


def test_progress_lines_keep_their_columns_whatever_the_value_and_count():
    lines = [render_trial_line(update(51, None, 9)), render_trial_line(update(62, 0.8741, 62)),
             render_trial_line(update(7, 0.5, 70))]
    for marker in ("[", "s  best"):
        assert len({line.index(marker) for line in lines}) == 1, lines
    assert "[ 9/70]" in lines[0]


def test_ls_names_the_metric_of_the_best_value_and_counts_the_failed_trials():
    text = render_sweeps([row(), row(name="loss", metric="val_loss", direction="minimize", best_value=0.41)])
    header, first, second = text.splitlines()
    assert "best (metric)" in header and "failed" in header
    assert "0.8741 val_accuracy" in first and "0.4100 val_loss" in second
    assert first.split()[:4] == ["demo", "finished", "12/12", "1"]


def test_ls_shows_a_running_sweep_nobody_runs_as_stalled():
    assert "stalled" in render_sweeps([row(status="running", liveness="stalled")]).splitlines()[1]


def test_show_of_a_sweep_without_trials_says_so():
    assert render_trials(row(counts=Counts()), []).splitlines()[1] == "no trials yet"


def test_show_gives_the_shortened_error_of_failed_trials():
    trials = [TrialRow(0, "COMPLETE", 0.8, {"lr": 0.5}, {"val_accuracy": 0.8}, "run-0", None),
              TrialRow(1, "FAIL", None, {"lr": 0.7}, {}, "run-1", "ModuleNotFoundError: No module named 'cmaes' " * 5)]
    header, _, failed = render_trials(row(), trials).splitlines()[1:]
    assert header.split()[-1] == "error"
    assert failed.endswith("...") and "ModuleNotFoundError: No module named 'cmaes'" in failed
    assert len(failed) < 200


def test_best_has_one_layout_with_headings_and_the_objective_once():
    trial = TrialRow(3, "COMPLETE", 0.8741, {"lr": 0.5}, {"val_accuracy": 0.8741, "val_loss": 0.41}, "run-3", None)
    text = render_best(Best(row(), trial, {"lr": 0.5, "epochs": 30}, {"trainer": "sentiment"}), "text")
    lines = text.splitlines()
    assert [line for line in lines if line and not line.startswith(" ")][1:] == ["settings", "metrics", "where"]
    assert text.count("0.8741") == 1
    assert " = " not in text
    assert "  lr:" in text and "  val_loss:" in text and "  parent run: parent-1" in text


def test_sweep_show_of_a_user_trainer_shows_its_own_metrics_not_the_builtin_ones():
    trials = [TrialRow(0, "COMPLETE", 0.9, {"depth": 3}, {"f1": 0.9, "auc": 0.95, "fit_seconds": 1.5}, "run-0", None)]
    header, line = render_trials(row(metric="f1"), trials).splitlines()[1:]
    assert header.split() == ["trial", "state", "f1", "depth", "auc", "fit_seconds"]
    assert line.split() == ["0", "complete", "0.9000", "3", "0.9500", "1.5000"]


def test_the_summary_hints_quote_a_storage_url_for_the_shell():
    summary = SweepSummary("s", "exp", "parent-1", "finished", Counts(complete=2), None, 1.0, None, 2,
                           storage="redis://cache:6379/0?prefix=team a")
    hints = [line for line in render_summary(summary).splitlines() if "--storage" in line]
    assert hints == ["see the runs:   sweep ui --name s --storage 'redis://cache:6379/0?prefix=team a'",
                     "print the best: sweep best --name s --storage 'redis://cache:6379/0?prefix=team a'"]



def test_the_summary_says_how_much_of_the_trial_time_went_to_mlflow_and_how_autolog_skips_models():
    def summary(**timing: object) -> list[str]:
        made = SweepSummary("s", "exp", "parent-1", "finished", Counts(complete=2), None, 50.0, 45.0, 2, **timing)
        return render_summary(made).splitlines()

    autologged = summary(mlflow_time=MlflowTime(41.2, 45.0, trials=2), models_autologged=True)
    assert autologged[1] == ("MLflow logging inside fit: 41.2s of 45.0s trial time (92%); "
                             "`mlflow: {autolog: {log_models: false}}` skips logging a model in every trial")
    assert summary(mlflow_time=MlflowTime(0.4, 45.0, trials=2))[1] == (
        "MLflow logging inside fit: 0.4s of 45.0s trial time (1%)")  # active, or autolog without models: no hint
    assert not any(line.startswith("MLflow logging") for line in summary())  # not clocked: mlflow off, a command

def test_ls_counts_the_trials_that_repeat_earlier_settings():
    header, first = render_sweeps([row(repeats=3)]).splitlines()
    assert header.split()[4] == "repeats" and first.split()[4] == "3"


def test_show_marks_a_trial_whose_settings_an_earlier_one_had():
    trials = [TrialRow(0, "COMPLETE", 0.8, {"lr": 0.5}, {}, "run-0", None),
              TrialRow(1, "COMPLETE", 0.8, {"lr": 0.5}, {}, "run-1", None, same_as=0)]
    header, first, second = render_trials(row(), trials).splitlines()[1:]
    assert header.split()[-2:] == ["same", "as"]
    assert second.endswith("trial 0") and not first.endswith("trial 0")


def test_a_reused_trial_says_whose_result_it_took_and_the_summary_counts_them():
    best = BestTrial(3, "run-3", 0.8741, {}, {}, None)
    line = render_trial_line(TrialUpdate(9, "COMPLETE", 0.8741, None, Counts(10, 0, 0, reused=4), 20, best, 3.0,
                                         same_as=3))
    assert line.endswith("same settings as trial 3: its result reused")
    summary = SweepSummary("demo", "exp", "parent-1", "finished", Counts(20, 0, 0, reused=14), best, 9.0, None, 20)
    assert "(20 complete (14 reused from identical settings), 0 pruned, 0 failed)" in render_summary(summary)


def test_sync_names_what_mlflow_refused_of_a_trials_record():
    from sweep.engine.sync import SyncResult
    from sweep.views import render_sync

    result = SyncResult("s", "p1", False, False, [4], False, 2, [], refused={4: "Invalid value \"\" for metric name"})
    assert render_sync(result).splitlines() == [
        "repaired 1 child runs (trials 4)",
        "best trial on the parent run p1: 2",
        "skipped what MLflow refused of trial 4's record (Invalid value \"\" for metric name); its run ended as the "
        "study says, tagged sweep.refused",
    ]


def test_the_first_line_needs_no_store_and_the_next_ones_say_where_the_sweep_is():
    from sweep.engine import SweepStart
    from sweep.views import render_opening, render_start

    assert render_opening("s", 20, False) == "starting sweep s: 20 trials"
    assert render_opening("s", 20, True) == "resuming sweep s: 20 trials"
    start = SweepStart("s", "exp", "p1", "sweep.journal", "sqlite:///mlflow.db", 20, 4, True)
    assert render_start(start).splitlines() == [
        "  optuna storage: sweep.journal",
        "  mlflow:         sqlite:///mlflow.db  (experiment 'exp', parent run p1)",
        "  done already:   4 trials",
    ]
    early = SweepStart("s", "exp", None, "sweep.journal", "sqlite:///mlflow.db", 20, 0, False)
    assert render_start(early).splitlines()[1] == "  mlflow:         sqlite:///mlflow.db  (experiment 'exp')"
