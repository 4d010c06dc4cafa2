"""`sweep sync`: rebuild what MLflow is missing from the study, the source of truth. Idempotent.

A tracking server that was down, restarted empty, or lost writes leaves child runs missing, runs
left RUNNING, or a parent whose best is stale. The study has every trial's settings, state, metrics
and run link, so sync recreates missing child runs (params, final metrics, status; no curves and no
model file: those lived only in the trial's process), makes the study follow the runs it rebuilt,
makes the parent's best (trial, run id, best/model.json, pyfunc model) agree with the study or says
which piece cannot be rebuilt, publishes plots and the model the parent lacks, and ends the parent
as the sweep's state says. A second sync changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sweep.engine import composition
from sweep.engine.ending import publish_results
from sweep.engine.parts import Parts
from sweep.locations import StorageLocation, TrackingLocation
from sweep.records import BestAgreement, BestTrial, ModelPublishing, SweepIdentity
from sweep.states import SweepStatus, end_of, sweep_end
from sweep.study.opening import after_its_publisher, open_sweep
from sweep.study.starting import parent_params
from sweep.study.storage import HEARTBEAT_SECONDS
from sweep.study.sweep_study import SweepStudy
from sweep.tracking import Recorder
from sweep.tracking.operations import AgreeBest, EndParentIfNeeded, OpenParent, Reconcile

PLOTS = "plots"  # what `sweep sync` says it published, besides the model (ModelPublishing.shown_as)


@dataclass(frozen=True)
class SyncResult:
    name: str
    parent_run_id: str
    parent_created: bool  # MLflow had lost the parent: a new one now stands for the sweep
    parent_adopted: bool  # the study had not linked its parent (a start cut short): it is linked now
    repaired: list[int]  # trials whose child run was created or whose status was corrected
    parent_ended: bool
    best_trial: int | None
    problems: list[str]  # writes that failed even now (the store is still down?)
    relinked: list[int] = field(default_factory=list)  # trials whose run id the study now takes from a rebuilt run
    best_repaired: list[str] = field(default_factory=list)  # pieces of the parent's best that disagreed
    published: list[str] = field(default_factory=list)  # PLOTS, the model's shown_as: (re)published on the parent
    missing: str | None = None  # what of the best trial cannot be rebuilt, why, and how to get it
    refused: dict[int, str] = field(default_factory=dict)  # trial -> what MLflow refused of its record (skipped)

    @property
    def changed(self) -> bool:
        """Anything repaired: False means MLflow already agreed with the study."""
        return bool(self.parent_created or self.parent_adopted or self.repaired or self.parent_ended or self.relinked
                    or self.best_repaired or self.published)


def sync_sweep(name: str | None, *, storage_url: str | None, tracking_uri: str | None,
               parts: Parts | None = None, on_wait: Callable[[int], None] | None = None) -> SyncResult:
    """Rebuild what MLflow lacks of sweep ``name`` (the latest by default) from its study. Of ``parts`` (the
    defaults: default_parts()), sync uses the tracking transport only: it runs no trial, and publishes the
    model as the config's trainer says (composition.model_publishing) without making that trainer.
    The sweep's background publisher (sweep/publisher_lock.py), if one still writes its end, is waited for first
    (``on_wait`` is told its pid)."""
    location = StorageLocation.parse(storage_url)
    sweep = after_its_publisher(open_sweep(location, name, heartbeat=HEARTBEAT_SECONDS), on_wait,
                                heartbeat=HEARTBEAT_SECONDS)
    attrs, config = sweep.attrs, sweep.config
    study = SweepStudy.read(sweep)
    tracking = TrackingLocation.resolve(tracking_uri, stored=attrs.stored_tracking)
    # a sweep killed before it linked its parent run ran no trial: sync ends it as interrupted (resumable)
    state = SweepStatus.INTERRUPTED.value if attrs.status == SweepStatus.STARTING else attrs.status
    publishing = composition.model_publishing(config)
    recorder = Recorder((parts or composition.default_parts()).transport())
    try:
        recorder.connect(SweepIdentity(sweep.name, config.experiment, tracking.explicit, config.run_name,
                                       dict(config.fixed)))
        parent_run_id, created = recorder.call(OpenParent(
            attrs.parent_run_id, params=parent_params(config),
            tags={"sweep.status": state, "sweep.target": str(attrs.target or config.trials),
                  "sweep.storage": str(location), "sweep.rebuilt_by": "sweep sync"},
            config_yaml=config.to_yaml(), token=attrs.token, sync=True))
        adopted = not created and parent_run_id != attrs.parent_run_id
        if created or adopted:
            study.adopt_parent(parent_run_id, state)
        # every param the trial had: its fixed settings and whatever it suggested (define-by-run included)
        reconciled = recorder.call(Reconcile(study.finished_records()))
        relinked = study.relink_runs(reconciled.run_ids)
        census = study.census()  # after relinking: the best names the run MLflow holds now
        agreement = (recorder.call(AgreeBest(census.best, config.metric, publishing))
                     if census.best is not None else None)
        published = _publish_if_needed(study, recorder, census.best, agreement, publishing)
        end = end_of(state)
        status = sweep_end(end, census.finished).run_status if end is not None else None
        ended = recorder.call(EndParentIfNeeded(status, census.finished))
        report = recorder.close(None, census.finished)
    except BaseException:
        recorder.terminate()
        raise
    if report.model.uri is not None:
        study.remember_model(report.model)
    made = {PLOTS: bool(report.plots or report.plots_skipped), publishing.shown_as: report.model.uri is not None}
    published = [piece for piece in published if made[piece]]  # what failed is among the problems
    problems = [*report.errors, *([report.model.warning] if report.model.warning else [])]
    return SyncResult(sweep.name, parent_run_id, created, adopted, reconciled.repaired, ended,
                      census.best.number if census.best else None, problems, relinked,
                      agreement.repaired if agreement else [], published, agreement.missing if agreement else None,
                      reconciled.refused)


def _publish_if_needed(study: SweepStudy, recorder: Recorder, best: BestTrial | None,
                       agreement: BestAgreement | None, publishing: ModelPublishing) -> list[str]:
    """Plots and the best model, when the parent lacks them or shows another best; returns what was sent."""
    if best is None or agreement is None:
        return []
    model_needed = (agreement.model_json or agreement.logged_model) and agreement.model_trial != best.number
    if not (model_needed or agreement.repaired or not agreement.has_plots):
        return []
    publish_results(study, recorder, best if model_needed else None, None, publishing)
    return [PLOTS, *([publishing.shown_as] if model_needed else [])]
