"""A trial's child run id, asked for by fit (trial.run_id, or `mlflow: active` making the run active) and then
again by the loop for the trial's record, is the same id both times and never waits on a reply already read.
`sweep run` driven in-process (tests/support/inprocess.py): the fit runs in this process, beside the tracking
server's thread, as it runs beside the tracking process in a `sweep run` of its own."""

from __future__ import annotations

import pytest

from tests.support import inprocess
from tests.support.e2e import runs, write_config

pytestmark = pytest.mark.slow  # each test runs a whole sweep on real stores (in-process)

FIT = """
def fit(trial):
    trial.set_tags({"seen_run_id": str(trial.run_id), "seen_again": str(trial.run_id)})
    return trial.suggest_float("x", 0.0, 1.0)
"""


@pytest.mark.parametrize("mode", ["off", "active"])
@pytest.mark.usefixtures("mlflow_db")
def test_fit_asking_for_its_run_id_gets_its_child_run_and_the_sweep_does_not_stall(tmp_path, mode):
    (tmp_path / "train.py").write_text(FIT, encoding="utf-8")
    write_config(tmp_path, f"trainer: {{function: train.py:fit, mlflow: {mode}}}\n"
                           "objective: {direction: maximize}\ntrials: 3\n")
    # before the fix the loop's second ask waited 60 s per trial for a reply it had already consumed
    done = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml")
    assert done.returncode == 0, done.stderr
    _parent, children = runs(tmp_path, "sweep")
    assert len(children) == 3
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["seen_run_id"] == child.data.tags["seen_again"] == child.info.run_id
