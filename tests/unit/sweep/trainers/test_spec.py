"""sweep/trainers/spec.py: the `trainer:` section parsed without importing the user's code; every bad form is
one SweepConfigError line that names the key and says how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweep.errors import SweepConfigError
from sweep.trainers.spec import TrainerSpec, parse_trainer


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A config folder holding train.py and a package folder with a module file."""
    (tmp_path / "train.py").write_text("def fit(trial):\n    return 1.0\n", encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("def fit(trial):\n    return 1.0\n", encoding="utf-8")
    return tmp_path


def spec_error(value: Any, base: Path) -> str:
    with pytest.raises(SweepConfigError) as caught:
        parse_trainer(value, base)
    message = str(caught.value)
    assert message.strip() and "\n" not in message, f"expected one line, got {message!r}"
    return message


# -- what is accepted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "sentiment"])
def test_absent_or_sentiment_is_the_builtin_trainer(value, base):
    spec = parse_trainer(value, base)
    assert spec == TrainerSpec()
    assert spec.builtin and spec.file is None and spec.describe() == "sentiment" and spec.to_yaml() == "sentiment"


def test_a_file_relative_to_the_config_folder_is_made_absolute(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)  # not the config's folder: the reference is read from base, not cwd
    spec = parse_trainer({"function": "train.py:fit"}, base)
    assert spec.function == f"{base / 'train.py'}:fit"
    assert spec.file == base / "train.py"
    assert spec.mlflow == "off" and not spec.builtin


def test_a_file_in_a_subfolder_and_a_dotted_attribute_are_accepted(base):
    spec = parse_trainer({"function": "src/model.py:Trainer.fit", "mlflow": "active"}, base)
    assert spec.function == f"{base / 'src' / 'model.py'}:Trainer.fit"
    assert spec.mlflow == "active"


def test_an_absolute_file_is_kept(base, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert parse_trainer({"function": f"{base / 'train.py'}:fit"}, elsewhere).file == base / "train.py"


def test_a_module_reference_is_kept_as_written_and_not_imported(base):
    spec = parse_trainer({"function": "my_project.train:fit", "mlflow": "autolog"}, base)
    assert spec.function == "my_project.train:fit"  # no such module: found when a trial imports it, not here
    assert spec.file is None
    assert spec.to_yaml() == {"function": "my_project.train:fit", "mlflow": "autolog"}


@pytest.mark.parametrize("mode", ["off", False])  # YAML reads a bare `off` as false
def test_mlflow_off_written_either_way_is_off(mode, base):
    assert parse_trainer({"function": "train.py:fit", "mlflow": mode}, base).mlflow == "off"


def test_autolog_settings_are_kept_and_written_back_in_the_mapping_form(base):
    value = {"function": "train.py:fit", "mlflow": {"autolog": {"log_models": False, "log_datasets": False}}}
    spec = parse_trainer(value, base)
    assert spec.mlflow == "autolog"  # what reads the mode sees autolog, as for `mlflow: autolog`
    assert spec.autolog == {"log_models": False, "log_datasets": False}
    assert not spec.logs_models
    assert spec.to_yaml() == {"function": f"{base / 'train.py'}:fit",
                              "mlflow": {"autolog": {"log_models": False, "log_datasets": False}}}
    assert parse_trainer(spec.to_yaml(), base) == spec


@pytest.mark.parametrize("settings", [{}, None])  # `{autolog: {}}` and `{autolog: }` change nothing
def test_an_empty_autolog_mapping_is_plain_autolog(settings, base):
    spec = parse_trainer({"function": "train.py:fit", "mlflow": {"autolog": settings}}, base)
    assert spec == parse_trainer({"function": "train.py:fit", "mlflow": "autolog"}, base)
    assert spec.logs_models and spec.to_yaml()["mlflow"] == "autolog"


def test_only_autolog_logs_models(base):
    assert not parse_trainer({"function": "train.py:fit", "mlflow": "active"}, base).logs_models
    assert parse_trainer({"function": "train.py:fit", "mlflow": {"autolog": {"log_models": True}}}, base).logs_models


# -- every bad form: one line, the key, the fix ----------------------------------------------------------------


BAD_SPECS = {
    "not-a-trainer-name": ("fit", "trainer: 'fit' is not a trainer", "{function: module:fit}"),
    "a-list": (["train.py:fit"], "trainer: expected sentiment or a mapping", "{function: train.py:fit}"),
    "unknown-key": ({"function": "train.py:fit", "mlfow": "off"}, "trainer: unknown key 'mlfow'",
                    "a function trainer takes function, mlflow; a command trainer takes command"),
    "no-function": ({"mlflow": "active"}, "trainer: give function:", "module:fit (or file.py:fit)"),
    "no-colon": ({"function": "train.py"}, "trainer.function: 'train.py' is not a function reference",
                 "write module.path:fit or path/to/train.py:fit"),
    "no-name-after-colon": ({"function": "train:"}, "trainer.function: 'train:'", "write module.path:fit"),
    "name-not-an-identifier": ({"function": "train:1fit"}, "trainer.function: 'train:1fit'",
                               "write module.path:fit"),
    "two-colons": ({"function": "a:b:fit"}, "trainer.function: 'a:b:fit'", "write module.path:fit"),
    "not-a-string": ({"function": 42}, "trainer.function: 42 is not a function reference",
                     "write module.path:fit"),
    "null": ({"function": None}, "trainer.function: None is not a function reference", "write module.path:fit"),
    "module-path-with-a-space": ({"function": "my project:fit"}, "trainer.function: 'my project' is not a module path",
                                 "write module.path:fit"),
    "module-path-with-a-dash": ({"function": "my-project.train:fit"}, "'my-project.train' is not a module path",
                                "path/to/train.py:fit"),
    "missing-file": ({"function": "nope.py:fit"}, "trainer.function: no such file", "a relative path is read from "
                     "the config file's folder"),
    "missing-file-in-a-folder": ({"function": "src/nope.py:fit"}, "trainer.function: no such file",
                                 "config file's folder"),
    "a-folder-not-a-file": ({"function": "src/:fit"}, "trainer.function: no such file", "config file's folder"),
    "mlflow-unknown-mode": ({"function": "train.py:fit", "mlflow": "on_demand"},
                            "trainer.mlflow: 'on_demand' is not a mode", "use one of off, active, autolog"),
    "mlflow-yaml-on": ({"function": "train.py:fit", "mlflow": True}, "trainer.mlflow: True is not a mode",
                       "use one of off, active, autolog"),
    "mlflow-null": ({"function": "train.py:fit", "mlflow": None}, "trainer.mlflow: None is not a mode",
                    "use one of off, active, autolog"),
    "mlflow-mapping-of-a-mode": ({"function": "train.py:fit", "mlflow": {"active": {"log_models": False}}},
                                 "trainer.mlflow: a mapping takes only autolog",
                                 "{autolog: {log_models: false}}"),
    "autolog-unknown-setting": ({"function": "train.py:fit", "mlflow": {"autolog": {"log_model": False}}},
                                "trainer.mlflow.autolog: unknown setting 'log_model'",
                                "use one of disable_for_unsupported_versions, exclusive, log_datasets, "
                                "log_input_examples, log_model_signatures, log_models, log_traces"),
    "autolog-the-sweeps-own-setting": ({"function": "train.py:fit", "mlflow": {"autolog": {"silent": False}}},
                                       "trainer.mlflow.autolog: unknown setting 'silent'", "use one of"),
    "autolog-setting-not-a-boolean": ({"function": "train.py:fit", "mlflow": {"autolog": {"log_models": "no"}}},
                                      "trainer.mlflow.autolog.log_models: 'no' is not true or false",
                                      "write log_models: false"),
    "autolog-not-a-mapping": ({"function": "train.py:fit", "mlflow": {"autolog": ["log_models"]}},
                              "trainer.mlflow.autolog: expected a mapping", "{log_models: false}"),
}


@pytest.mark.parametrize(("value", "problem", "fix"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_trainer_section_raises_one_line_naming_the_key_and_the_fix(base, value, problem, fix):
    message = spec_error(value, base)
    assert problem in message
    assert fix in message


def test_missing_file_message_names_the_resolved_path(base):
    assert str(base / "nope.py") in spec_error({"function": "nope.py:fit"}, base)
