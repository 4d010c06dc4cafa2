"""The child runs of a sweep in MLflow, one per trial: start, finish, fail, list, and reconcile with the study."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from sweep.errors import first_line
from sweep.records import Curves, Reconciled, TrialRecord, now_ms
from sweep.run_names import default_name, run_name
from sweep.states import RunStatus, TrialState, run_status
from sweep.tracking.parent import TRIAL_MODEL_TAG, ParentRun
from sweep.tracking.store import MAX_TAG_CHARS, param_text

PARAMS_DIFFER_TAG = "sweep.params_differ"  # the sweep's values of params the trial's own code logged otherwise
REFUSALS = ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")  # MLflow refusing a write for what it holds: never retried
REFUSED_TAG = "sweep.refused"  # what MLflow refused of a trial's record when `sweep sync` or a resume wrote it


def status_of(record: TrialRecord) -> RunStatus:
    """The child run status of a finished trial (KILLED when the sweep was interrupted during it)."""
    return run_status(record.state, interrupted=record.interrupted)


def feasibility_tags(record: TrialRecord) -> dict[str, str]:
    """A trial judged against the sweep's constraints: tag ``feasible`` (true/false) and, when false, the
    constraints it missed (``sweep.violated``); nothing for a trial of a sweep without constraints."""
    if not record.constraints:
        return {}
    missed = [name for name, value in record.constraints.items() if value > 0.0]
    tags = {"feasible": "false" if missed else "true"}
    if missed:
        tags["sweep.violated"] = "; ".join(missed)[:MAX_TAG_CHARS]
    return tags


def last_step(curves: Curves) -> int:
    """The last step any of a trial's curves reached (0 without curves): where its final values go."""
    return max((points[-1][0] for points in curves.values() if points), default=0)


def final_and_curves(final: Mapping[str, float], curves: Curves, last_epoch: int, timestamp: int,
                     logged: Mapping[str, tuple[int, int]] | None = None) -> list[Metric]:
    """Curves stepped by epoch, and each final value as its metric's latest point.

    MLflow's latest value of a metric (the runs table, its sort, `run.data.metrics`) is the point with the
    highest step, then timestamp, then value: the final value goes at the last epoch, or at the last step the
    trial's own code logged (``logged``: name -> (step, timestamp) of its latest point), after every point at
    that step. A final value equal to its curve's last point is that point (MLflow stores it once); one that
    differs (a curve ending at 0.31, a result of 0.06) comes a millisecond after it, so the result wins.
    """
    metrics = [Metric(name, value, timestamp, step) for name, points in curves.items() for step, value in points]
    for name, value in final.items():
        step, after = last_epoch, timestamp
        own_step, own_timestamp = (logged or {}).get(name, (-1, 0))
        if own_step >= step:
            step, after = own_step, max(timestamp, own_timestamp + 1)
        at_step = [point for point_step, point in curves.get(name, []) if point_step == step]
        if at_step and at_step[-1] != value:
            after = max(after, timestamp + 1)
        metrics.append(Metric(name, value, after, step))
    return metrics


def no_result_marks(record: TrialRecord, logged: Mapping[str, tuple[int, int]]) -> list[Metric]:
    """A trial that ended without a result (pruned, failed, interrupted): each curve without a final value ends
    with a NaN point, so the run's latest value is "none" and the runs table, sorted on the objective, puts it
    after every complete trial (MLflow sorts NaN after numbers both ways); the curve keeps what it reached."""
    marks = []
    for name, points in record.curves.items():
        if not points or name in record.metrics:
            continue
        step, timestamp = points[-1][0], record.end_ms
        own_step, own_timestamp = logged.get(name, (-1, 0))
        if own_step >= step:
            step, timestamp = own_step, max(timestamp, own_timestamp)
        marks.append(Metric(name, math.nan, timestamp + 2, step))  # after a final value's +1 (final_and_curves)
    return marks


class ChildRuns:
    """The trials' runs under one parent run (tag mlflow.parentRunId)."""

    def __init__(self, parent: ParentRun) -> None:
        self.parent = parent
        self.store = parent.store

    def start(self, number: int, start_ms: int) -> str:
        """Create the trial's run now, so the trial can log under it; returns its run id."""
        run = self.store.client.create_run(
            self.store.experiment(), start_time=start_ms, run_name=default_name(number),  # named again at its end
            tags={"mlflow.parentRunId": self.parent.id(), "sweep.name": self.store.identity.name,
                  "sweep.trial": str(number)})
        self.store.artifact_uris[run.info.run_id] = run.info.artifact_uri
        return run.info.run_id

    def run_name(self, record: TrialRecord) -> str:
        """`trial-12`, or the config's run_name template filled; ` (pruned)` appended for a pruned trial."""
        identity = self.store.identity
        return run_name(identity.run_name, record.number, {**identity.fixed, **record.params}, record.state)

    def finish(self, record: TrialRecord) -> str:
        """Params, final metrics, curves, model.json and status of one trial, in one batch and one file."""
        client = self.store.client
        run_id = record.run_id or self.start(record.number, record.start_ms)
        logged = (self.latest_points(run_id, {**record.metrics, **record.curves}) if record.mlflow_active
                  else None)
        metrics = final_and_curves(record.metrics, record.curves, last_step(record.curves), record.end_ms, logged)
        if record.state != TrialState.COMPLETE:
            metrics += no_result_marks(record, logged or {})
        tags = {**{k: v[:MAX_TAG_CHARS] for k, v in record.tags.items()},
                "sweep.state": record.state.lower(), **feasibility_tags(record)}
        name = self.run_name(record)
        if name != default_name(record.number) or record.mlflow_active:  # the trial's own code may have renamed it
            tags["mlflow.runName"] = name  # renaming is a write of its own in MLflow: only when the name changes
        if record.error:
            tags["error"] = record.error[:MAX_TAG_CHARS]
        params = {k: param_text(v) for k, v in record.params.items()}
        if record.mlflow_active:
            params, differ = self.params_to_log(run_id, params)
            tags.update(differ)
            tags.update(self.own_model(run_id))
        # a run only the sweep wrote to has no metric yet: its points can go in as rows, after MLflow has taken
        # (or refused) the params and tags
        rows = self.store.metric_rows if not record.mlflow_active else None
        client.log_batch(run_id, metrics=metrics if rows is None else [],
                         params=[Param(k, v) for k, v in params.items()], tags=[RunTag(k, v) for k, v in tags.items()])
        if rows is not None and not rows.write(run_id, metrics):
            client.log_batch(run_id, metrics=metrics)
        for path in record.artifacts:
            self.store.log_artifact(run_id, path)
        if record.model_json is not None:
            self.store.log_text(run_id, record.model_json, "model.json", None)
        if record.traceback:
            self.store.log_text(run_id, record.traceback, "traceback.txt", None)
        client.set_terminated(run_id, status=status_of(record).value, end_time=record.end_ms)
        self.store.artifact_uris.pop(run_id, None)
        return run_id

    def latest_points(self, run_id: str, names: Mapping[str, float]) -> dict[str, tuple[int, int]]:
        """(step, timestamp) of the latest point of each of ``names`` the trial's own code logged to its run."""
        logged = self.store.client.get_run(run_id).data.metrics
        latest: dict[str, tuple[int, int]] = {}
        for name in (name for name in names if name in logged):
            history = self.store.client.get_metric_history(run_id, name)
            if history:
                point = max(history, key=lambda metric: (metric.step, metric.timestamp))
                latest[name] = (point.step, point.timestamp)
        return latest

    def params_to_log(self, run_id: str, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """(the params of ``params`` the run does not hold yet, a tag naming those it holds with another value).

        MLflow refuses a param's second value: what the trial's own code logged (autolog writes its own text
        for a setting; a script may log a setting of the same name) stays, and where it differs from the
        sweep's, tag sweep.params_differ keeps the sweep's value (``name=value, ...``).
        """
        logged = self.store.client.get_run(run_id).data.params
        differ = ", ".join(f"{name}={value}" for name, value in params.items()
                           if name in logged and logged[name] != value)
        return ({name: value for name, value in params.items() if name not in logged},
                {PARAMS_DIFFER_TAG: differ[:MAX_TAG_CHARS]} if differ else {})

    def own_model(self, run_id: str) -> dict[str, str]:
        """For a trial whose code logged to its run itself (autolog, log_model): a tag naming its newest logged
        model, which becomes the parent's when the trial is the best."""
        models = self.store.client.search_logged_models(
            [self.store.experiment()], filter_string=f"source_run_id = '{run_id}'",
            order_by=[{"field_name": "creation_time", "ascending": False}], max_results=1)
        return {TRIAL_MODEL_TAG: f"models:/{models[0].model_id}"} if models else {}

    def fail(self, run_id: str, reason: str, status: RunStatus = RunStatus.FAILED) -> None:
        """End a run the trial never finished, with the reason as its error tag."""
        self.store.client.set_tag(run_id, "error", reason[:MAX_TAG_CHARS])
        self.store.client.set_terminated(run_id, status=RunStatus(status).value, end_time=now_ms())
        self.store.artifact_uris.pop(run_id, None)

    def listing(self) -> dict[int, tuple[str, str]]:
        """Trial number -> (run id, status) of the parent's child runs."""
        runs = self.store.client.search_runs(
            [self.store.experiment()], filter_string=f"tags.mlflow.parentRunId = '{self.parent.id()}'",
            max_results=50000)
        found: dict[int, tuple[str, str]] = {}
        for run in runs:
            trial = run.data.tags.get("sweep.trial")
            if trial is not None and trial.isdigit():
                found.setdefault(int(trial), (run.info.run_id, run.info.status))
        return found

    def reconcile(self, trials: list[TrialRecord]) -> Reconciled:
        """Make MLflow match the study: every finished trial gets exactly one ended child run.

        A trial whose child run is missing (the store was down, or the process died before
        logging) gets one built from the study; a child left RUNNING takes the trial's status.
        Idempotent: a second call changes nothing. Returns the trials repaired and every trial's run id
        (a created run's id is new: the study must learn it).
        """
        children = self.listing()
        repaired: list[int] = []
        run_ids: dict[int, str] = {}
        refused: dict[int, str] = {}
        for record in trials:
            found = children.get(record.number)
            if found is not None and found[1] == status_of(record):
                run_ids[record.number] = found[0]
                continue
            # a new run: the one the trial names (if any) was deleted or lost with the store
            run_id = found[0] if found is not None else self.start(record.number, record.start_ms)
            run_ids[record.number] = run_id
            try:
                if found is None:
                    self.finish(replace(record, run_id=run_id))
                else:
                    self.correct(run_id, record)
            except MlflowException as error:
                if error.error_code not in REFUSALS:
                    raise
                # what MLflow refuses now it will refuse on every sync: the run ends as the study says, and the
                # refusal is named on it and reported, instead of stopping every later repair
                refused[record.number] = first_line(error)
                self.store.client.set_tag(run_id, REFUSED_TAG, refused[record.number][:MAX_TAG_CHARS])
                self.store.client.set_terminated(run_id, status=status_of(record).value,
                                                 end_time=record.end_ms or now_ms())
            repaired.append(record.number)
        return Reconciled(repaired, run_ids, refused)

    def correct(self, run_id: str, record: TrialRecord) -> None:
        """A run left RUNNING, or ended KILLED by a dying sweep whose trial the study has since failed: its final
        record may never have arrived, so what the study knows is logged (params the run holds stay)."""
        tags = {"sweep.state": record.state.lower(), "mlflow.runName": self.run_name(record),
                **feasibility_tags(record)}
        if record.error:
            tags["error"] = record.error[:MAX_TAG_CHARS]
        params, differ = self.params_to_log(run_id, {k: param_text(v) for k, v in record.params.items()})
        tags.update(differ)
        metrics = final_and_curves(record.metrics, {}, last_step(record.curves), record.end_ms or now_ms(),
                                   self.latest_points(run_id, record.metrics))
        self.store.client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()],
                                    params=[Param(k, v) for k, v in params.items()])
        self.store.client.set_terminated(run_id, status=status_of(record).value, end_time=record.end_ms or now_ms())
