"""sweep/queries.py on a real journal storage: what `sweep show` lists, in its order."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from sweep import queries
from sweep.locations import StorageLocation
from tests.unit.sweep.study.conftest import add_trial, new_sweep


def test_show_lists_completed_trials_best_first_then_the_others_by_number(tmp_path: Path):
    journal = StorageLocation.parse(str(tmp_path / "sweep.journal"))
    study = new_sweep(journal)
    add_trial(study, TrialState.FAIL)
    add_trial(study, TrialState.COMPLETE, 0.6)
    add_trial(study, TrialState.PRUNED)
    add_trial(study, TrialState.COMPLETE, 0.9)
    _, rows = queries.show(str(tmp_path / "sweep.journal"), "demo")
    assert [(row.number, row.state) for row in rows] == [(3, "COMPLETE"), (1, "COMPLETE"), (0, "FAIL"), (2, "PRUNED")]
