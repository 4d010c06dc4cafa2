"""A storage that goes away mid-sweep (PostgreSQL, a journal in Redis, `sweep storage-proxy`), driven in-process on
the real servers behind a link the test cuts (tests/support/cuttable.py): at each of three points of a trial (its
ask, a report while it trains, its tell after the work is done) the sweep waits for the server and finishes with
exact counts, the interrupted trial's result kept. A server that stays away ends the sweep with one line naming
the storage and the resume command, and the resume finishes the sweep."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest

from sweep.config import load_config
from sweep.engine import run_sweep
from sweep.study import configure_optuna
from sweep.study.patience import RETRY_ENV
from sweep.study.storage import open_storage
from tests.support import cuttable, e2e, inprocess, pg, redis_db
from tests.support.storage_proxy import storage_proxy

pytestmark = pytest.mark.slow  # whole sweeps on real servers (in-process)

FIT = '''
from tests.support import cuttable


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 1 and "{point}" == "report":
        cuttable.cut_now()
        trial.report(x / 2, step=1)
    if trial.number == 1 and "{point}" == "tell":
        cuttable.cut_now()
    return x
'''
TRIALS = 4


class CutAfterTrial(inprocess.RecordingListener):
    """Takes the storage away once trial 1 is told: the next trial's gate and ask meet the outage."""

    def __init__(self, outage: cuttable.Outage | None) -> None:
        super().__init__()
        self.outage = outage

    def trial_finished(self, update) -> None:
        super().trial_finished(update)
        if self.outage is not None and update.number == 1:
            self.outage.cut()


@contextmanager
def served(kind: str, folder: Path) -> Iterator[tuple[str, cuttable.CuttableLink]]:
    """A fresh storage of ``kind`` reached through a cuttable link: (its URL through the link, the link)."""
    if kind == "postgres":
        with pg.database() as url, cuttable.cuttable("127.0.0.1", 5432) as link:
            yield url.replace("127.0.0.1:5432", f"127.0.0.1:{link.port}"), link
    elif kind == "redis":
        with redis_db.journal() as url, cuttable.cuttable("127.0.0.1", 6379) as link:
            yield url.replace("127.0.0.1:6379", f"127.0.0.1:{link.port}"), link
    else:
        with storage_proxy(folder, str(folder / "served.journal")) as (url, _), \
                cuttable.cuttable("127.0.0.1", int(url.rsplit(":", 1)[1])) as link:
            yield f"grpc://127.0.0.1:{link.port}", link


def sweep_through(folder: Path, storage: str, point: str, outage: cuttable.Outage, *, resume: bool = False):
    (folder / "fit.py").write_text(FIT.format(point=point), encoding="utf-8")
    e2e.write_config(folder, "trainer: {function: fit.py:fit}\nobjective: {direction: maximize}\n"
                             f"pruner: {{name: none}}\ntrials: {TRIALS}\n")
    config = load_config(folder / "sweep.yaml", {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                                                 "storage": storage, "name": "outage"})
    configure_optuna()
    cuttable.ACTIVE.append(outage)
    try:
        with inprocess.working_in(folder), outage.watching():
            return run_sweep(config, resume=resume, listener=CutAfterTrial(outage if point == "ask" else None),
                             flags=frozenset({"name", "storage"}), parts=inprocess.in_process_parts())
    finally:
        cuttable.ACTIVE.remove(outage)


def trials_of(storage: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="outage", storage=open_storage(storage, create=False, read_only=True))
    return sorted(study.trials, key=lambda t: t.number)


@pytest.mark.parametrize("point", ["ask", "report", "tell"])
@pytest.mark.parametrize("kind", ["postgres", "redis", "proxy"])
@pytest.mark.usefixtures("mlflow_db")
def test_a_storage_back_within_the_retry_time_costs_a_pause_not_a_trial(tmp_path: Path, kind: str, point: str):
    with served(kind, tmp_path) as (storage, link):
        outage = cuttable.Outage(link)
        summary = sweep_through(tmp_path, storage, point, outage)
        trials = trials_of(storage)
    assert outage.cuts == 1 and any(cuttable.Outage.BACK in message for message in outage.messages), outage.messages
    assert summary.counts.complete == TRIALS and summary.counts.failed == 0
    assert [t.state.name for t in trials] == ["COMPLETE"] * TRIALS
    assert trials[1].value == trials[1].params["x"]  # the result of the trial the outage met is kept
    if point == "report":
        assert trials[1].intermediate_values == {1: trials[1].params["x"] / 2}
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.status for c in children] == ["FINISHED"] * TRIALS


@pytest.mark.usefixtures("mlflow_db")
def test_a_storage_that_stays_away_ends_the_sweep_with_one_line_and_the_resume_finishes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(RETRY_ENV, "1")
    with redis_db.journal() as url, cuttable.cuttable("127.0.0.1", 6379) as link:
        storage = url.replace("127.0.0.1:6379", f"127.0.0.1:{link.port}")
        with pytest.raises(Exception) as stopped:
            sweep_through(tmp_path, storage, "tell", cuttable.Outage(link, lasting=True))
        message = str(stopped.value)
        assert type(stopped.value).__name__ == "StorageUnavailableError"
        assert "\n" not in message
        assert message.startswith(f"the Optuna storage {storage} stopped answering (")
        assert message.endswith(f"continue with: sweep run --resume --name outage --storage '{storage}'")
        link.restore()
        monkeypatch.delenv(RETRY_ENV)
        summary = sweep_through(tmp_path, storage, "none", cuttable.Outage(link), resume=True)
        trials = trials_of(storage)
    assert summary.counts.finished == TRIALS
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]  # trial 1 never told
    assert trials[1].user_attrs["sweep.error"] == "the sweep process died during this trial"
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert parent.info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]


WAITING_FIT = '''
import time
from pathlib import Path


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    while trial.number >= 2 and not Path("{marker}").exists():  # the later trials end into the outage
        time.sleep(0.02)
    return x
'''


@pytest.mark.usefixtures("mlflow_db")
def test_jobs_workers_and_their_parent_wait_for_a_storage_that_comes_back(tmp_path: Path):
    marker = tmp_path / "cut"
    (tmp_path / "fit.py").write_text(WAITING_FIT.format(marker=marker), encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: fit.py:fit}\nobjective: {direction: maximize}\n"
                               "pruner: {name: none}\n")
    with redis_db.journal() as direct, cuttable.cuttable("127.0.0.1", 6379) as link:
        storage = direct.replace("127.0.0.1:6379", f"127.0.0.1:{link.port}")
        outage = cuttable.Outage(link)

        def cut_after_two_trials() -> None:
            study = None
            while study is None or sum(t.state.name == "COMPLETE" for t in study.trials) < 2:
                with contextlib.suppress(KeyError):  # not created yet
                    study = optuna.load_study(study_name="jobs", storage=open_storage(direct, create=False))
                time.sleep(0.05)  # polling the study
            outage.cut()
            marker.touch()

        cutter = threading.Thread(target=cut_after_two_trials, daemon=True)
        cutter.start()
        with outage.watching():  # the parent's reads of the study meet the outage and bring the server back
            result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "jobs", "--trials", "6",
                                     "--jobs", "2", "--storage", storage)
        cutter.join(timeout=60)
        trials = optuna.load_study(study_name="jobs", storage=open_storage(direct, create=False)).trials
    assert result.returncode == 0, result.stderr
    assert outage.cuts == 1 and any(cuttable.Outage.BACK in message for message in outage.messages)
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 6
