"""sweep/trainers/function.py: importing the user's fit, reading what it returns, and its provenance."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.errors import SweepConfigError
from sweep.trainers.function import FunctionTrainer, load_function, outcome_of
from sweep.trainers.spec import TrainerSpec


def spec_for(tmp_path: Path, source: str, reference: str = "train.py:fit") -> TrainerSpec:
    (tmp_path / "train.py").write_text(source, encoding="utf-8")
    where, name = reference.rsplit(":", 1)
    return TrainerSpec(function=f"{tmp_path / where}:{name}")


def test_a_file_function_is_imported_and_its_sibling_modules_too(tmp_path):
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    spec = spec_for(tmp_path, "from helpers import double\n\ndef fit(trial):\n    return double(21)\n")
    assert load_function(spec)(None) == 42


def test_a_module_function_is_found_from_the_working_folder(tmp_path, monkeypatch):
    package = tmp_path / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "training.py").write_text("class Trainers:\n    @staticmethod\n"
                                         "    def fit(trial):\n        return 1.5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    fit = load_function(TrainerSpec(function="my_project.training:Trainers.fit"))
    assert fit(None) == 1.5


@pytest.mark.parametrize(("source", "reference", "message"), [
    ("def fit(trial):\n    return 1\n", "train.py:missing", "has no 'missing'; it defines fit; check the name"),
    ("def fit(trial)\n    return 1\n", "train.py:fit", "train.py:1: syntax error"),
    ("import not_a_package_anywhere\n", "train.py:fit", "importing"),
    ("fit = 3\n", "train.py:fit", "is a int, not a function"),
    ("raise RuntimeError('no GPU here')\n", "train.py:fit", "RuntimeError: no GPU here (at train.py:1)"),
])
def test_a_function_that_cannot_be_imported_fails_in_one_line_naming_it(tmp_path, source, reference, message):
    with pytest.raises(SweepConfigError) as caught:
        load_function(spec_for(tmp_path, source, reference))
    text = str(caught.value)
    assert text.startswith("trainer.function: ") and message in text and "\n" not in text


def test_a_missing_module_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepConfigError, match="no module named 'nowhere_to_be_found'; check the name"):
        load_function(TrainerSpec(function="nowhere_to_be_found.train:fit"))


def test_a_file_removed_since_the_config_was_read_is_named(tmp_path):
    with pytest.raises(SweepConfigError, match="no such file"):
        load_function(TrainerSpec(function=f"{tmp_path / 'gone.py'}:fit"))


# -- what fit returns ------------------------------------------------------------------------------------


def test_a_number_is_the_objective():
    outcome = outcome_of(0.75, "score", {"logged": 1.0})
    assert outcome.value == 0.75 and outcome.metrics == {"logged": 1.0, "score": 0.75}


def test_a_mapping_gives_every_final_metric_and_the_objective_among_them():
    outcome = outcome_of({"f1": 0.5, "accuracy": 0.9}, "f1", {})
    assert outcome.value == 0.5 and outcome.metrics == {"f1": 0.5, "accuracy": 0.9}


def test_numpy_scalars_are_numbers():
    np = pytest.importorskip("numpy")
    assert outcome_of(np.float32(0.5), "value", {}).value == 0.5
    assert outcome_of({"value": np.float64(2.0)}, "value", {}).value == 2.0


@pytest.mark.parametrize(("returned", "message"), [
    ({"accuracy": 0.9}, "fit returned no 'f1' (it returned accuracy); return it, or set objective.metric"),
    ("0.9", "fit returned str; return a number"),
    (None, "fit returned None; return a number"),
    (True, "fit returned bool"),
    ([0.9], "fit returned a list; return a number"),
    (math.nan, "the objective 'f1' is nan; a trial needs a finite value"),
    ({"f1": math.inf}, "the objective 'f1' is inf"),
    ({"f1": "high"}, "fit's returned 'f1' is 'high', not a number"),
])
def test_anything_else_fails_the_trial_in_one_line(returned, message):
    with pytest.raises((TypeError, ValueError)) as caught:
        outcome_of(returned, "f1", {})
    assert message in str(caught.value)


# -- provenance -------------------------------------------------------------------------------------------


def test_provenance_names_the_function_its_file_hash_and_its_git_commit(tmp_path):
    spec = spec_for(tmp_path, "def fit(trial):\n    return 1\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=tmp_path, check=True)
    tags = FunctionTrainer(spec, load_function(spec), "value").provenance()
    assert tags["trainer.function"] == spec.function
    assert tags["trainer.file_sha256"] == hashlib.sha256((tmp_path / "train.py").read_bytes()).hexdigest()
    assert len(tags["trainer.git_commit"]) >= 40


def test_a_trial_that_logs_nothing_to_mlflow_itself_never_waits_for_its_child_run(tmp_path):
    # the child run is created by the tracking process while the trial runs: only code that asks for it waits
    import optuna

    from sweep.tracking.active_run import StrayRunWatch
    from sweep.trial import Trial, TrialRun

    asked: list[str] = []
    trainer = FunctionTrainer(spec_for(tmp_path, "def fit(trial):\n    return 0.5\n"), lambda trial: 0.5, "value",
                              StrayRunWatch("function: train.py:fit").scope)
    optuna_trial = optuna.create_study().ask()
    trial = Trial(optuna_trial, TrialRun(), sweep="demo", metric="value", space={}, fixed={},
                  run_id=lambda: asked.append("run id") or "run-1", workdirs=tmp_path)
    assert trainer.run(trial).value == 0.5
    assert asked == []
