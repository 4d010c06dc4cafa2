"""Read-only views of sweeps in a storage: the list, one sweep's trials (queries.py formats them). Writes nothing
to the study (a journal file gets its summary beside it: journal_reading.py).

The commands that read (`sweep best`, `ls`, `show`) must answer within a fraction of a second on a large study, so
a journal file is read through its summary (journal_reading.py) and SQLite or PostgreSQL with plain SQL
(sql_reading.py), neither importing Optuna; any other storage (Redis, the storage proxy, another database
driver), or a store either reader cannot read, is replayed through Optuna as before. Every source gives plain
trials (plain.py), and one set of rules below ranks and counts them.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sweep import states
from sweep.errors import NotFoundError
from sweep.locations import StorageLocation, StoredTracking
from sweep.processes import worker_alive
from sweep.ranking import rank_key
from sweep.records import Counts
from sweep.states import SweepStatus
from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.plain import PlainStudy, PlainTrial, UnreadableStore, choose_sweep, count_plain, kept_system_attr
from sweep.study.repeats import identical_settings

if TYPE_CHECKING:
    import optuna

STALLED_SECONDS = 600  # a "running" sweep with no trial started or ended for this long, and no live worker here


@dataclass(frozen=True)
class SweepRow:
    name: str
    status: str
    counts: Counts
    target: int
    best_value: float | None
    created: str
    experiment: str
    parent_run_id: str | None
    metric: str
    direction: str
    experiment_id: str | None = None
    tracking: StoredTracking | None = None  # where the sweep's runs are, as it stored it (redacted)
    model_uri: str | None = None  # the parent's pyfunc model (runs:/<parent>/model), logged at the end
    model_trial: int | None = None  # whose model that is: stale unless it is the best trial's
    registered_model: str | None = None  # "NAME/VERSION" of the last `sweep run --register NAME`
    registered_trial: int | None = None  # whose model that version holds
    liveness: str = ""  # for a "running" sweep: running, running? (cannot tell from here) or stalled
    repeats: int = 0  # trials whose settings an earlier trial of the sweep already had
    more_objectives: tuple[tuple[str, str], ...] = ()  # (metric, direction) of each objective after the first
    stopped_by: str = ""  # the config's rule that ended the sweep before its target (a StopRule), if one did

    @property
    def shown_status(self) -> str:
        """The status as `sweep ls` shows it: a "running" sweep nobody runs any more says so, and a sweep a stop
        rule ended names the rule ("finished (patience)")."""
        if self.stopped_by and self.status == SweepStatus.FINISHED:
            return f"{self.status} ({self.stopped_by})"
        return self.liveness or self.status

    @property
    def tracking_uri(self) -> str | None:
        """The stored tracking URI as shown: redacted, maybe relative (sqlite:///mlflow.db)."""
        return self.tracking.shown if self.tracking is not None else None


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: states.TrialState
    value: float | None
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str | None
    error: str | None
    same_as: int | None = None  # the earliest trial with identical settings, when this one repeats it
    values: tuple[float, ...] | None = None  # every objective's value (a complete trial)
    feasible: bool = True  # every constraint met
    on_front: bool = False  # a member of the Pareto front (a sweep of several objectives; set by queries.show)


def list_sweeps(storage_url: str | None) -> list[SweepRow]:
    """Every sweep in the storage, oldest first; none when the default journal file does not exist yet."""

    def rows_of(source: TrialSource) -> list[SweepRow]:
        rows = []
        for study in source.studies():
            attrs = SweepAttrs.read(study.user_attrs)
            if attrs.is_sweep:  # else a study some other tool made
                trials = source.trials(study, times=_timed(attrs), brief=True)
                rows.append(SweepRead.of(study.name, attrs, trials, partial(source.detailed, study)).sweep)
        return rows

    try:
        with cycles_not_collected():
            rows = read_with(StorageLocation.parse(storage_url), rows_of)
    except NotFoundError:
        return []
    return sorted(rows, key=lambda row: row.created)


def sweep_trials(storage_url: str | None, name: str | None) -> tuple[SweepRow, list[TrialRow], dict[str, Any]]:
    """One sweep (the latest when no name is given), its trials, and its stored config as a mapping."""
    return read_sweep(storage_url, name, lambda read: (read.sweep, read.rows(read.trials), read.config))


Used = TypeVar("Used")


def read_sweep(storage_url: str | None, name: str | None, use: Callable[[SweepRead], Used]) -> Used:
    """``use`` applied to one sweep (the latest when no name is given), read once: its row and its trials, while
    the store is open (SweepRead reads the few trials a command shows in full then)."""

    def study_of(source: TrialSource) -> Used:
        studies = source.studies()
        study = studies[choose_sweep([(s.name, s.user_attrs) for s in studies], name, hint=source.hint)]
        attrs = SweepAttrs.read(study.user_attrs)
        trials = source.trials(study, times=_timed(attrs), brief=True)
        return use(SweepRead.of(study.name, attrs, trials, partial(source.detailed, study)))

    with cycles_not_collected():
        return read_with(StorageLocation.parse(storage_url), study_of)


@contextmanager
def cycles_not_collected() -> Iterator[None]:
    """Python's cycle collection off while a sweep is read, back on (if it was) after. Reading allocates a few
    small containers per trial, none of them in a reference cycle (all are freed by their counts), but their
    number keeps triggering full collections, each walking every object read so far and every module's."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Detail = Callable[[Sequence[PlainTrial]], list[PlainTrial]]  # brief trials -> the same trials read in full


class Details:
    """A source's brief trials read in full, each once."""

    def __init__(self, read: Detail) -> None:
        self._read = read
        self._full: dict[int, PlainTrial] = {}  # by number

    def __call__(self, trials: Sequence[PlainTrial]) -> list[PlainTrial]:
        missing = [trial for trial in trials if trial.number not in self._full]
        if missing:
            self._full.update((trial.number, trial) for trial in self._read(missing))
        return [self._full[trial.number] for trial in trials]


@dataclass(frozen=True)
class SweepRead:
    """A sweep's trials as read, brief (TrialSource.trials): `sweep best` needs the best of them, `sweep show --top
    K` K rows and `sweep ls` the best value, so only those are ranked in full and read in full (their metrics break
    ties); a TrialRow is built only for a trial asked for (the trials' count is the same either way)."""

    sweep: SweepRow
    attrs: SweepAttrs
    trials: list[PlainTrial]  # as the source gives them, by number: brief
    candidates: list[PlainTrial]  # the complete trials that meet the constraints, by (signed first value, number)
    same: dict[int, int]  # trial number -> the earliest trial with identical settings (repeats.identical_settings)
    detail: Detail  # valid while the store is open (read_sweep's use)

    @classmethod
    def of(cls, name: str, attrs: SweepAttrs, trials: list[PlainTrial], read: Detail) -> SweepRead:
        detail = Details(read)
        same = identical_settings(trials)
        candidates = rank_candidates(trials, attrs)
        best = rank_plain(_tied_prefix(candidates, 1, attrs), attrs, detail)[:1]
        return cls(_sweep_row(name, attrs, trials, best[0] if best else None, same), attrs, trials, candidates,
                   same, detail)

    @property
    def config(self) -> dict[str, Any]:
        """The sweep's stored config, in its file form."""
        return self.attrs.stored_config.to_file_dict()

    def ranked(self, limit: int | None = None, among: Sequence[PlainTrial] | None = None) -> list[PlainTrial]:
        """The first ``limit`` (all without it) of the candidates (or of ``among``, some of them in their order),
        best first by rank_key, read in full. Only the trials whose first value is at most the limit-th one's are
        ranked: rank_key orders by that value first, and its other parts (metrics, read in full) break ties."""
        if limit is not None and limit <= 0:
            return []
        pool = self.candidates if among is None else among
        return rank_plain(_tied_prefix(pool, limit, self.attrs), self.attrs, self.detail)[:limit]

    def rows(self, trials: Sequence[PlainTrial], front: Set[int] = frozenset()) -> list[TrialRow]:
        """``trials`` as the commands show them; ``front``: the numbers of the Pareto front's members."""
        return [_trial_row(trial, self.attrs, self.same.get(trial.number), trial.number in front)
                for trial in self.detail(trials)]


def rank_candidates(trials: Sequence[PlainTrial], attrs: SweepAttrs) -> list[PlainTrial]:
    """The complete trials that meet the constraints, by their first value (signed: smaller is better), then
    number: rank_key's order up to its tie-breakers."""
    maximize = attrs.direction == "maximize"
    keyed = [(-trial.values[0] if maximize else trial.values[0], trial.number, trial)  # type: ignore[index]
             for trial in trials  # (feasible reads the system attributes: most trials have none)
             if trial.state == states.TrialState.COMPLETE and trial.values and (not trial.system_attrs or
                                                                               trial.feasible)]
    keyed.sort(key=itemgetter(0, 1))  # numbers are distinct: the trials themselves are never compared
    return [trial for *_, trial in keyed]


def _tied_prefix(candidates: Sequence[PlainTrial], limit: int | None, attrs: SweepAttrs) -> Sequence[PlainTrial]:
    """The first ``limit`` of ``candidates`` (in rank_candidates' order) and every later one tied with the last of
    them on the first value: the trials among which rank_key's first ``limit`` are. A NaN value (unordered) keeps
    them all."""
    if limit is None or limit >= len(candidates):
        return candidates
    sign = -1.0 if attrs.direction == "maximize" else 1.0
    if any(map(math.isnan, [t.values[0] for t in candidates])):  # type: ignore[index]
        return candidates
    edge = sign * candidates[limit - 1].values[0]  # type: ignore[index]
    end = limit
    while end < len(candidates) and sign * candidates[end].values[0] == edge:  # type: ignore[index]
        end += 1
    return candidates[:end]


def rank_plain(trials: Sequence[PlainTrial], attrs: SweepAttrs, detail: Detail | None = None) -> list[PlainTrial]:
    """The complete trials that meet the constraints, best first: the order rank_key gives their rows
    (a row's value is its trial's first value, its metrics the trial's stored metrics); ``detail`` reads them in
    full first (their metrics)."""
    more = attrs.objectives[1:]
    complete = [trial for trial in trials
                if trial.state == states.TrialState.COMPLETE and trial.values and trial.feasible]
    if detail is not None:
        complete = detail(complete)
    keyed = [(rank_key(trial.values[0], TrialAttrs.metrics_of(trial.user_attrs), trial.number,  # type: ignore[index]
                       metric=attrs.metric, direction=attrs.direction, more=more), trial)
             for trial in complete]
    keyed.sort(key=lambda item: item[0])  # the number ends every key: no two keys are equal
    return [trial for _, trial in keyed]


# -- where the trials come from -------------------------------------------------------------------------------


class TrialSource(Protocol):
    """A storage's studies and their trials, as plain values."""

    hint: str  # how an error names the storage (never its URL: that may hold a password)

    def studies(self) -> list[PlainStudy]: ...

    def trials(self, study: PlainStudy, *, times: bool = True, brief: bool = False) -> list[PlainTrial]:
        """``study``'s trials by number; without ``times`` a source may leave their start and end out (None);
        ``brief``: their user attributes may hold only those plain.BRIEF_USER_ATTRS names (the worker only with
        ``times``) until they are read in full (detailed)."""
        ...

    def detailed(self, study: PlainStudy, trials: Sequence[PlainTrial]) -> list[PlainTrial]:
        """``trials`` (some of ``study``'s, read brief) read in full, in that order."""
        ...


Read = TypeVar("Read")


def read_with(location: StorageLocation, read: Callable[[TrialSource], Read]) -> Read:
    """``read`` applied to the cheapest reader of ``location`` (open_source); again through Optuna's replay when that
    reader finds something it cannot read after all."""
    with open_source(location) as source:
        if isinstance(source, ReplaySource):
            return read(source)
        try:
            return read(source)
        except UnreadableStore:
            pass
    return read(ReplaySource(location))


@contextmanager
def open_source(location: StorageLocation) -> Iterator[TrialSource]:
    """The cheapest reader of ``location`` that can read it: a journal file's summary, plain SQL, else Optuna's
    replay. Raises NotFoundError when a journal file does not exist (there is nothing to read)."""
    if location.is_journal and location.journal_path is not None:
        from sweep.study.journal_reading import JournalSource, read_journal

        if not location.journal_path.exists():
            raise NotFoundError(f"no sweeps yet: {location.journal_path} does not exist; start one with `sweep run`")
        try:
            fold = read_journal(location.journal_path)
        except (UnreadableStore, OSError):
            fold = None  # Optuna's replay reads it, or says what is wrong with it
        if fold is not None:
            yield JournalSource(fold)
            return
    elif location.is_sqlite or location.is_postgres:
        from sweep.study.sql_reading import SqlSource

        reader = SqlSource.open(location)  # None: not one it reads; Optuna's replay reads it, or reports why not
        if reader is not None:
            try:
                yield reader
            finally:
                reader.close()
            return
    yield ReplaySource(location)


class ReplaySource:
    """Any storage, read through Optuna: the study replayed and every trial built (what the fast readers avoid)."""

    def __init__(self, location: StorageLocation) -> None:
        import optuna

        from sweep.study.storage import HEARTBEAT_SECONDS, configure_optuna, open_storage, storage_hint

        configure_optuna()
        self._optuna = optuna
        self._storage = open_storage(location, create=False, heartbeat=HEARTBEAT_SECONDS, read_only=True)
        self.hint = storage_hint(self._storage)

    def studies(self) -> list[PlainStudy]:
        # not get_all_study_summaries: it deep-copies every trial; trials() finds a study by its name
        return [PlainStudy(index, row.study_name, row.user_attrs)
                for index, row in enumerate(self._storage.get_all_studies())]

    def trials(self, study: PlainStudy, *, times: bool = True, brief: bool = False) -> list[PlainTrial]:
        loaded = self._optuna.load_study(study_name=study.name, storage=self._storage)
        return [plain_trial(trial) for trial in loaded.get_trials(deepcopy=False)]

    def detailed(self, study: PlainStudy, trials: Sequence[PlainTrial]) -> list[PlainTrial]:
        return list(trials)  # read in full already


def plain_trial(trial: optuna.trial.FrozenTrial) -> PlainTrial:
    """An Optuna trial as the plain readers give it."""
    return PlainTrial(trial.number, states.TrialState(trial.state.name),
                      tuple(trial.values) if trial.values is not None else None, dict(trial.params),
                      trial.user_attrs, {key: value for key, value in trial.system_attrs.items()
                                         if kept_system_attr(key)},
                      trial.datetime_start, trial.datetime_complete)


# -- the rows ------------------------------------------------------------------------------------------------


def _sweep_row(name: str, attrs: SweepAttrs, trials: list[PlainTrial], best: PlainTrial | None,
               same: dict[int, int]) -> SweepRow:
    return SweepRow(name, attrs.status, count_plain(trials), attrs.target, best.first_value if best else None,
                    attrs.created or "", attrs.experiment, attrs.parent_run_id, attrs.metric, attrs.direction,
                    attrs.experiment_id, attrs.stored_tracking, attrs.model_uri, attrs.model_trial,
                    attrs.registered_model, attrs.registered_trial,
                    liveness(trials, attrs.created) if attrs.status == SweepStatus.RUNNING else "", len(same),
                    tuple((metric, direction) for metric, direction in attrs.objectives[1:]), attrs.stopped_by or "")


def _timed(attrs: SweepAttrs) -> bool:
    """Whether the commands read the trials' start and end times: only liveness does, of a running sweep."""
    return attrs.status == SweepStatus.RUNNING


class TimedTrial(Protocol):
    """What liveness reads of a trial: Optuna's FrozenTrial and a PlainTrial both have it."""

    @property
    def state(self) -> Any: ...  # an enum whose names are Optuna's

    @property
    def user_attrs(self) -> Mapping[str, Any]: ...

    @property
    def datetime_start(self) -> dt.datetime | None: ...

    @property
    def datetime_complete(self) -> dt.datetime | None: ...


def liveness(trials: Sequence[TimedTrial], created: str | None, now: dt.datetime | None = None) -> str:
    """Whether a sweep marked running still runs: "running" when a worker of this machine runs one of
    its trials or a trial started or ended recently, "stalled" when its trials' workers here are dead
    or nothing happened for STALLED_SECONDS, "running?" when only other machines' workers could tell."""
    running = [t for t in trials if t.state.name == states.TrialState.RUNNING.name]
    alive = [worker_alive(TrialAttrs.read(t.user_attrs).worker) for t in running]
    if any(state is True for state in alive):
        return "running"
    if running and all(state is False for state in alive):
        return "stalled"  # killed without a chance to say so (a power cut, kill -9)
    moments = [m for t in trials for m in (t.datetime_start, t.datetime_complete) if m is not None]
    if created:
        moments.append(dt.datetime.fromisoformat(created))  # UTC, with its offset
    now = now or dt.datetime.now()
    last = max((m if m.tzinfo is None else m.astimezone().replace(tzinfo=None) for m in moments), default=None)
    if last is not None and (now - last).total_seconds() < STALLED_SECONDS:
        return "running"
    return "running?" if running else "stalled"


def _trial_row(trial: PlainTrial, sweep: SweepAttrs, same_as: int | None, on_front: bool = False) -> TrialRow:
    attrs = TrialAttrs.read(trial.user_attrs)
    params = trial.params
    if not params and trial.state == states.TrialState.WAITING:  # queued (start_with, sweep enqueue): its params
        params = trial.system_attrs.get("fixed_params", {})
    complete = trial.state == states.TrialState.COMPLETE
    return TrialRow(trial.number, trial.state, trial.first_value if complete else None,
                    dict(params), attrs.metrics, sweep.run_id_of(trial.number, attrs.run_id), attrs.error, same_as,
                    values=trial.values if complete and trial.values else None, feasible=trial.feasible,
                    on_front=on_front)
