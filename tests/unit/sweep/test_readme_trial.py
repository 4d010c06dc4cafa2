"""The `sweep.Trial` table of docs/trainers.md documents every public name of sweep.Trial, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from optuna.trial import FixedTrial

from sweep import Trial
from sweep.trial import TrialRun

TRAINERS_DOC = Path(__file__).resolve().parents[3] / "docs" / "trainers.md"


def trial_section() -> str:
    text = TRAINERS_DOC.read_text(encoding="utf-8")
    start = text.index("### `sweep.Trial`")
    return text[start:text.index("\n### ", start + 1)]


def test_trainers_doc_trial_table_names_every_public_name_of_trial(tmp_path):
    documented = set(re.findall(r"^\| `(?:trial\.)?([a-z_]+)", trial_section(), flags=re.MULTILINE))
    documented |= set(re.findall(r", `(?:trial\.)?([a-z_]+)[(`]", trial_section()))
    trial = Trial(FixedTrial({}), TrialRun(), sweep="s", metric="value", space={}, fixed={}, run_id=lambda: None,
                  workdirs=tmp_path)
    public = {name for name in [*dir(Trial), *vars(trial)] if not name.startswith("_")}
    assert documented == public
