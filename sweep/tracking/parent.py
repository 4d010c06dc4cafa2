"""The sweep's parent run in MLflow: open, reopen, sync or attach; counts and best trial; close or abandon."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from sweep.records import BestAgreement, BestTrial, Counts, ModelPublishing, now_ms
from sweep.states import RunStatus, SweepStatus
from sweep.tracking.store import MAX_TAG_CHARS, TrackingStore, param_text

TRIAL_MODEL_TAG = "sweep.model_uri"  # models:/<id> of the newest model a trial's own code logged to its run

MODEL_JSON_TRIAL = "best.model_json_trial"  # whose model.json best/model.json is
MODEL_MISSING = "best.model_missing"  # why the best trial's model is not on the parent, and how to get it

TOKEN_FORM = re.compile(r"[0-9A-Za-z_-]+")  # what the study layer writes: uuid4().hex
TOKEN_TAG = "sweep.token"  # the study's token on its parent run: how a parent the study never linked is found
REPLACED = "replaced"  # the sweep.status of a parent run another one carrying the same token stands in for


class ParentRun:
    """The parent "sweep" run, seen from one process (the owner of the sweep, or a worker joining it)."""

    def __init__(self, store: TrackingStore) -> None:
        self.store = store
        self.run_id: str | None = None
        self.owns = True  # False for a worker joining a sweep: it never reopens or ends the parent
        self.status: str | None = None  # its RunStatus as MLflow showed it to sync()
        self.best_model: tuple[int, str] | None = None  # (trial, model.json) last written as the parent's best

    def id(self) -> str:
        if self.run_id is None:
            raise RuntimeError("the parent run must be opened first")
        return self.run_id

    def open(self, parent_run_id: str | None, *, params: Mapping[str, Any], tags: Mapping[str, str],
             config_yaml: str, token: str | None = None) -> tuple[str, bool]:
        """Create the sweep's parent run, or reopen it on resume; returns its run id, and whether it was created.

        Without ``parent_run_id`` a parent run carrying ``token`` (tag sweep.token) is adopted: a sweep
        killed between creating its parent and linking it to the study left it RUNNING, and nothing
        else would ever end it. Only when none exists is a new one created, tagged with the token.
        """
        store, client = self.store, self.store.client
        experiment_id = store.experiment_id or store.connect()
        created = False
        try:
            if parent_run_id is None and token is not None:
                parent_run_id = self.adopt(token)
                if parent_run_id is not None:  # it may have died before its params and config were logged
                    client.log_batch(parent_run_id, params=[Param(k, param_text(v)) for k, v in params.items()])
                    store.log_text(parent_run_id, config_yaml, "sweep.yaml", None)
            if parent_run_id is None:
                run = client.create_run(
                    experiment_id, run_name=store.identity.name, start_time=now_ms(),
                    tags={"sweep.name": store.identity.name, "sweep.role": "parent",
                          **({TOKEN_TAG: token} if token is not None else {}), **tags})
                parent_run_id, created = run.info.run_id, True
                self.run_id = parent_run_id  # from here a loop that dies ends it (abandon)
                store.artifact_uris[parent_run_id] = run.info.artifact_uri
                client.log_batch(parent_run_id, params=[Param(k, param_text(v)) for k, v in params.items()])
                store.log_text(parent_run_id, config_yaml, "sweep.yaml", None)
            else:
                client.update_run(parent_run_id, status=RunStatus.RUNNING.value)
                client.log_batch(parent_run_id, tags=[RunTag(k, param_text(v)) for k, v in tags.items()])
        except MlflowException as error:
            raise store.error(error) from error
        self.run_id = parent_run_id
        return parent_run_id, created

    def adopt(self, token: str) -> str | None:
        """The parent run carrying ``token`` (a RUNNING one first, else the newest); any other one
        carrying it ends KILLED, so one parent stands for the sweep. None when there is none."""
        if not TOKEN_FORM.fullmatch(token):  # it goes into a filter string
            raise ValueError(f"not a sweep token: {token!r}")
        runs = self.store.client.search_runs(
            [self.store.experiment()], filter_string=f"tags.`{TOKEN_TAG}` = '{token}'", max_results=1000)
        parents = sorted((run for run in runs if run.data.tags.get("sweep.role") == "parent"),
                         key=lambda run: (run.info.status == RunStatus.RUNNING, run.info.start_time or 0),
                         reverse=True)
        if not parents:
            return None
        adopted = parents[0].info.run_id
        for duplicate in parents[1:]:
            run_id = duplicate.info.run_id
            self.store.client.set_tag(run_id, "sweep.status", REPLACED)
            self.store.client.set_tag(run_id, "sweep.replaced_by", adopted)
            if duplicate.info.status == RunStatus.RUNNING:
                self.store.client.set_terminated(run_id, status=RunStatus.KILLED.value, end_time=now_ms())
        return adopted

    def sync(self, parent_run_id: str | None, *, params: Mapping[str, Any], tags: Mapping[str, str],
             config_yaml: str, token: str | None = None) -> tuple[str, bool]:
        """`sweep sync`: the parent run (adopted by ``token`` when the study links none), recreated when
        MLflow lost it; returns (run id, created)."""
        if parent_run_id is None and token is not None:
            try:
                parent_run_id = self.adopt(token)
            except MlflowException as error:
                raise self.store.error(error) from error
        try:
            run = self.store.client.get_run(parent_run_id) if parent_run_id else None
        except MlflowException:
            run = None
        if run is None or run.info.lifecycle_stage != "active":
            new_id, _ = self.open(None, token=token, params=params, tags=tags, config_yaml=config_yaml)
            self.status = None
            return new_id, True
        self.run_id = run.info.run_id
        self.status = run.info.status
        return run.info.run_id, False

    def end_if_needed(self, status: RunStatus | None, counts: Counts) -> bool:
        """End the parent with ``status`` unless it already shows it (sync is idempotent); True when it changed."""
        if status is None or self.status == status:
            return False
        self.close(status, counts)
        self.status = status
        return True

    def attach(self, parent_run_id: str) -> None:
        """Log under an existing parent run without owning it: a worker neither reopens nor ends it."""
        self.run_id = parent_run_id
        self.owns = False

    def record_counts(self, counts: Counts) -> None:
        """Trial counts on the parent: tags for the table, metrics stepped by finished trials for a chart."""
        values = {"trials_complete": counts.complete, "trials_pruned": counts.pruned,
                  "trials_failed": counts.failed, "trials_retried": counts.retried}
        if counts.reused:  # only in sweeps that reuse (repeats: reuse): the others' runs stay as they were
            values["trials_reused"] = counts.reused
        if counts.interrupted:
            values["trials_interrupted"] = counts.interrupted
        timestamp = now_ms()
        self.store.client.log_batch(
            self.id(),
            metrics=[Metric(name, float(value), timestamp, counts.finished) for name, value in values.items()],
            tags=[RunTag(f"sweep.{name}", str(value)) for name, value in values.items()])

    def record_best(self, best: BestTrial, metric: str) -> None:
        """Tags best.*, the best-so-far metric stepped by trial number, and best/model.json."""
        parent = self.id()
        tags = {"best.trial": str(best.number), "best.value": repr(best.value)}
        if best.run_id is not None:
            tags["best.run_id"] = best.run_id
        tags.update({f"best.{name}": param_text(value) for name, value in best.params.items()})
        timestamp = now_ms()
        # the objective once, as best_<metric> (the best-so-far curve); the best trial's other metrics as best.<name>
        metrics = [Metric(f"best_{metric}", best.value, timestamp, best.number)]
        metrics += [Metric(f"best.{name}", value, timestamp, best.number) for name, value in best.metrics.items()
                    if name != metric]
        self.store.client.log_batch(parent, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        if best.run_id is None:  # an older best's run id must not stand for this trial
            self._delete_tag("best.run_id")
        if best.model_json is not None:
            self.log_best_model(best.number, best.model_json)

    def log_best_model(self, number: int, model_json: str) -> None:
        """best/model.json, and the tag naming whose it is (a later sync compares it with the best trial)."""
        parent = self.id()
        self.store.log_text(parent, model_json, "model.json", "best")
        self.store.client.set_tag(parent, MODEL_JSON_TRIAL, str(number))
        self.best_model = (number, model_json)

    def ensure_best(self, best: BestTrial, metric: str) -> None:
        """Rewrite the parent's best unless it already shows this trial (workers race to report theirs)."""
        tags = self.store.client.get_run(self.id()).data.tags
        if tags.get("best.trial") == str(best.number) and best.run_id in (None, tags.get("best.run_id")):
            return
        model_json = best.model_json if best.model_json is not None else self._child_model_json(best.run_id)
        self.record_best(replace(best, model_json=model_json), metric)

    def agree_best(self, best: BestTrial, metric: str, publishing: ModelPublishing) -> BestAgreement:
        """`sweep sync`: make the parent's best trial, run id, best/model.json and pyfunc model tags agree
        with ``best`` (the study's); what cannot be rebuilt is named, never left showing another trial.
        Without a pyfunc recipe (``publishing``) the model is whatever the best trial logged: no model.json."""
        parent, number = self.id(), str(best.number)
        tags = self.store.client.get_run(parent).data.tags
        repaired = []
        if tags.get("best.trial") != number or tags.get("best.run_id") != best.run_id:
            self.record_best(replace(best, model_json=None), metric)
            repaired.append(f"best trial {number} and its run id")
        if publishing.pyfunc is None:
            return self._agree_logged_model(best, tags, repaired)
        model_json = best.model_json if best.model_json is not None else self._child_model_json(best.run_id)
        best_files = self.store.artifact_paths(parent, "best")
        held = tags.get(MODEL_JSON_TRIAL) if "best/model.json" in best_files else None
        if model_json is None and held == number:  # its child run lost it, the parent kept it
            model_json = self.store.download_text(parent, "best/model.json")
        missing = None
        if model_json is not None:
            if held != number:
                self.log_best_model(best.number, model_json)
                repaired.append("best/model.json")
            else:
                self.best_model = (best.number, model_json)
            if MODEL_MISSING in tags:
                self._delete_tag(MODEL_MISSING)
        else:
            missing = (f"trial {number}'s model.json was never logged to MLflow (the store was down or lost "
                       f"while it ran), so the parent run has neither best/model.json nor a pyfunc model of it; "
                       f"to get the model: {publishing.pyfunc.retrain.format(name=self.store.identity.name)}")
            if "best/model.json" in best_files and held != number:
                whose = f"trial {held}'s" if held is not None else "another trial's"
                if self._removed(parent, "best/model.json"):
                    self._delete_tag(MODEL_JSON_TRIAL)
                    repaired.append(f"best/model.json ({whose}) removed")
                else:  # the artifact store keeps it: the tags say whose it is and that the best has none
                    missing += f"; best/model.json on the parent is {whose}: this artifact store cannot delete it"
            if tags.get("best.model_trial") not in (None, number):  # a pyfunc model of another trial
                for name in ("best.model_uri", "best.model_id", "best.model_trial"):
                    self._delete_tag(name)
                repaired.append(f"pyfunc model tags of trial {tags['best.model_trial']} removed")
            if tags.get(MODEL_MISSING) != missing[:MAX_TAG_CHARS]:
                self.store.client.set_tag(parent, MODEL_MISSING, missing[:MAX_TAG_CHARS])
                repaired.append(f"tag {MODEL_MISSING} (why trial {number}'s model is missing)")
        model_trial = self.store.client.get_run(parent).data.tags.get("best.model_trial")
        return BestAgreement(repaired, missing, model_json is not None,
                             int(model_trial) if model_trial and model_trial.isdigit() else None,
                             "plots" in self.store.artifact_paths(parent))

    def _agree_logged_model(self, best: BestTrial, tags: Mapping[str, str], repaired: list[str]) -> BestAgreement:
        """A parent whose model is the one its best trial logged: its best.model_* tags may name only that one."""
        number = str(best.number)
        child_tags = self.store.client.get_run(best.run_id).data.tags if best.run_id is not None else {}
        logged = child_tags.get(TRIAL_MODEL_TAG, "").startswith("models:/")
        model_trial = tags.get("best.model_trial")
        if model_trial not in (None, number):
            for name in ("best.model_uri", "best.model_id", "best.model_trial", "best.registered_model"):
                if name in tags:
                    self._delete_tag(name)
            repaired.append(f"model tags of trial {model_trial} removed")
            model_trial = None
        return BestAgreement(repaired, None, False, int(model_trial) if model_trial and model_trial.isdigit() else None,
                             "plots" in self.store.artifact_paths(self.id()), logged)

    def _child_model_json(self, run_id: str | None) -> str | None:
        """The trial's model.json from its child run, or None when the run has none (rebuilt by sync)."""
        if run_id is None or "model.json" not in self.store.artifact_paths(run_id):
            return None
        return self.store.download_text(run_id, "model.json")

    def _removed(self, run_id: str, path: str) -> bool:
        """Delete an artifact; False when the artifact store cannot delete files."""
        try:
            self.store.delete_artifact(run_id, path)
        except (MlflowException, OSError, NotImplementedError):
            return False
        return True

    def _delete_tag(self, name: str) -> None:
        with contextlib.suppress(MlflowException):  # it was not there: nothing stale to remove
            self.store.client.delete_tag(self.id(), name)

    def close(self, status: RunStatus, counts: Counts, tags: Mapping[str, str] | None = None) -> None:
        """Final counts and ``tags`` (an empty value removes the tag: a resumed sweep's stale sweep.stopped_by),
        then the parent ends with ``status`` (its tag sweep.status says it in lower case)."""
        parent = self.id()
        self.record_counts(counts)
        for name, value in (tags or {}).items():
            if value:
                self.store.client.set_tag(parent, name, value)
            else:
                self._delete_tag(name)
        self.store.client.set_tag(parent, "sweep.status", RunStatus(status).value.lower())
        self.store.client.set_terminated(parent, status=RunStatus(status).value, end_time=now_ms())
        self.store.cleanup()

    def abandon(self) -> None:
        """The sweep loop died without closing: the parent ends KILLED, resumable with --resume."""
        parent = self.id()
        self.store.client.set_tag(parent, "sweep.status", SweepStatus.INTERRUPTED.value)
        self.store.client.set_terminated(parent, status=RunStatus.KILLED.value, end_time=now_ms())
        self.store.cleanup()
