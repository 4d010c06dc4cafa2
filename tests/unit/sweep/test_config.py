"""sweep/config.py: the default config, precedence (flag > file > default), round trips, and every bad config
raising SweepConfigError with one line that names the key and says how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sweep.config import SweepConfig, config_from_yaml, default_config_text, load_config
from sweep.errors import SweepConfigError
from sweep.space import Categorical, FloatRange, IntRange

REPO = Path(__file__).resolve().parents[3]
MINIMAL = "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n"  # nothing but a space: everything else defaults
_DELETE = object()


def edited_default(*edits: tuple[tuple[Any, ...], Any]) -> str:
    """The built-in config with ((key, subkey, ...), value) edits applied; value _DELETE removes the key."""
    document = yaml.safe_load(default_config_text())
    for path, value in edits:
        node = document
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return yaml.safe_dump(document, sort_keys=False)


def load_text(tmp_path: Path, text: str, overrides: dict[str, Any] | None = None) -> SweepConfig:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, overrides)


def config_error(tmp_path: Path, text: str, overrides: dict[str, Any] | None = None) -> str:
    with pytest.raises(SweepConfigError) as caught:
        load_text(tmp_path, text, overrides)
    message = str(caught.value)
    assert message.strip() and "\n" not in message.strip(), f"expected one line, got {message!r}"
    return message


# -- the default config --------------------------------------------------------------------------------


def test_default_config_loads_with_the_documented_settings():
    config = load_config(None)
    assert (config.trials, config.sampler, config.seed, config.pruner) == (50, "tpe", 0, "median")
    assert (config.metric, config.direction, config.experiment, config.data) == (
        "val_accuracy", "maximize", "sentiment", "bundled")
    assert config.fixed == {"seed": 0, "l2": 0.0001}
    assert list(config.space) == ["lr", "epochs", "vocab_size", "ngrams"]
    assert config.space["lr"] == FloatRange(0.01, 20.0, log=True)
    assert config.space["epochs"] == IntRange(5, 500, log=True)
    assert config.space["ngrams"] == Categorical((1, 2))
    assert config.name is None and config.storage is None and config.tracking_uri is None


def test_configs_sentiment_yaml_has_the_same_text_as_the_packaged_default():
    assert (REPO / "configs" / "sentiment.yaml").read_text(encoding="utf-8") == default_config_text()
    assert (REPO / "sweep" / "sentiment.yaml").read_text(encoding="utf-8") == default_config_text()


def test_configs_sentiment_yaml_loads_equal_to_the_default_config():
    assert load_config(REPO / "configs" / "sentiment.yaml") == load_config(None)


# -- precedence: flag > file > default -------------------------------------------------------------------

PRECEDENCE = [  # (flag name, file text, value in that file, flag value, SweepConfig default)
    ("trials", "trials: 7\n", 7, 9, 50),
    ("sampler", "sampler: {name: random}\n", "random", "qmc", "tpe"),
    ("metric", "objective: {metric: val_loss}\n", "val_loss", "val_accuracy", "val_accuracy"),
    ("pruner", "pruner: {name: hyperband}\n", "hyperband", "none", "median"),
    ("timeout", "timeout: 60\n", 60, 5.5, None),
]


@pytest.mark.parametrize(("key", "_text", "_in_file", "_flag", "default"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_a_setting_missing_from_the_file_takes_the_default(tmp_path, key, _text, _in_file, _flag, default):
    assert getattr(load_text(tmp_path, MINIMAL), key) == default


@pytest.mark.parametrize(("key", "text", "in_file", "_flag", "_default"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_a_setting_in_the_file_beats_the_default(tmp_path, key, text, in_file, _flag, _default):
    assert getattr(load_text(tmp_path, MINIMAL + text), key) == in_file


@pytest.mark.parametrize(("key", "text", "_in_file", "flag", "_default"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_a_flag_beats_the_file(tmp_path, key, text, _in_file, flag, _default):
    assert getattr(load_text(tmp_path, MINIMAL + text, {key: flag}), key) == flag


def test_a_flag_left_as_none_keeps_the_file_value(tmp_path):
    config = load_text(tmp_path, MINIMAL + "trials: 7\nsampler: {name: random, seed: 3}\n",
                       {"trials": None, "sampler": None, "seed": None})
    assert (config.trials, config.sampler, config.seed) == (7, "random", 3)


def test_flags_override_the_builtin_default_file():
    config = load_config(None, {"trials": 3, "sampler": "random", "seed": 11, "data": "reviews.csv"})
    assert (config.trials, config.sampler, config.seed, config.data) == (3, "random", 11, "reviews.csv")


def test_metric_val_loss_flag_without_direction_minimizes():
    config = load_config(None, {"metric": "val_loss"})
    assert (config.metric, config.direction) == ("val_loss", "minimize")


def test_metric_val_accuracy_flag_maximizes_even_when_the_file_minimizes_val_loss(tmp_path):
    config = load_text(tmp_path, MINIMAL + "objective: {metric: val_loss, direction: minimize}\n",
                       {"metric": "val_accuracy"})
    assert (config.metric, config.direction) == ("val_accuracy", "maximize")


def test_a_direction_contradicting_the_metric_is_refused(tmp_path):
    with pytest.raises(SweepConfigError, match="val_loss is only ever minimized"):
        load_text(tmp_path, MINIMAL + "objective: {metric: val_loss, direction: maximize}\n")


def test_metric_val_loss_in_a_file_without_direction_minimizes(tmp_path):
    config = load_text(tmp_path, MINIMAL + "objective: {metric: val_loss}\n")
    assert config.direction == "minimize"


# -- round trip ------------------------------------------------------------------------------------------


def test_to_yaml_round_trips_the_default_config():
    config = load_config(None)
    assert config_from_yaml(config.to_yaml()) == config


def test_to_yaml_round_trips_every_distribution_form_and_every_setting(tmp_path):
    text = """
name: my-sweep.v2
experiment: exp_1
objective: {metric: val_loss, direction: minimize}
trials: 12
timeout: 30.5
sampler: {name: grid, seed: null}
pruner: {name: hyperband, startup_trials: 2, warmup_epochs: 3}
data: {source: reviews.csv, text_column: body, label_column: stars}
fixed: {seed: 4, l2: 0.001}
space:
  lr: {type: float, low: 0.05, high: 1.0, step: 0.05}
  epochs: {type: int, low: 2, high: 20, step: 3}
  vocab_size: {type: int, low: 10, high: 1000, log: true}
  ngrams: [1, 2]
"""
    config = load_text(tmp_path, text)
    again = config_from_yaml(config.to_yaml())
    assert again == config
    assert again.space["lr"] == FloatRange(0.05, 1.0, step=0.05)
    assert again.space["epochs"] == IntRange(2, 20, step=3)


def test_to_yaml_leaves_out_storage_and_tracking_uri_so_no_password_is_stored():
    config = load_config(None, {"storage": "postgresql://u:s3cret@db/optuna",
                                "tracking_uri": "http://u:s3cret@mlflow:5000"})
    assert "s3cret" not in config.to_yaml()
    assert config_from_yaml(config.to_yaml()) == config.replace(storage=None, tracking_uri=None)


# -- every bad config: SweepConfigError, one line, names the key, says how to fix it ------------------------

BAD_CONFIGS = {  # id: (file text, the key the message must name, the fix it must give)
    "top-level-list": ("- lr\n- epochs\n", "c.yaml", "expected a mapping"),
    "top-level-scalar": ("just text\n", "c.yaml", "expected a mapping"),
    "unknown-top-level-key": (edited_default((("trails",), 10)), "'trails'", "allowed:"),
    "unknown-sampler-key": (edited_default((("sampler", "foo"), 1)), "sampler.foo", "allowed: name, seed"),
    "unknown-objective-key": (edited_default((("objective", "bar"), 1)), "objective.bar", "allowed:"),
    "unknown-data-key": (edited_default((("data", "x"), 1)), "data.x", "allowed:"),
    "unknown-pruner-key": (edited_default((("pruner", "y"), 1)), "pruner.y", "allowed:"),
    "unknown-dimension-key": (edited_default((("space", "lr"), {"type": "float", "low": 0.1, "high": 1, "lg": True})),
                              "space.lr", "allowed:"),
    "section-not-a-mapping": (edited_default((("sampler",), "random")), "sampler", "expected a mapping"),
    "fixed-not-a-mapping": (edited_default((("fixed",), [1])), "fixed", "expected a mapping"),
    "low-equals-high": (edited_default((("space", "lr"), {"type": "float", "low": 1.0, "high": 1.0})),
                        "space.lr", "low must be < high"),
    "low-above-high-int": (edited_default((("space", "epochs"), {"type": "int", "low": 50, "high": 5})),
                           "space.epochs", "low must be < high"),
    "log-with-low-zero": (edited_default((("space", "lr"), {"type": "float", "low": 0.0, "high": 1.0, "log": True})),
                          "space.lr", "raise low or set log: false"),
    "log-with-negative-low-int": (edited_default((("space", "epochs"), {"type": "int", "low": -1, "high": 9,
                                                                        "log": True})),
                                  "space.epochs", "log: false"),
    "step-with-log": (edited_default((("space", "lr"), {"type": "float", "low": 0.1, "high": 1.0, "log": True,
                                                        "step": 0.1})),
                      "space.lr", "drop one"),
    "step-zero": (edited_default((("space", "lr"), {"type": "float", "low": 0.1, "high": 1.0, "step": 0})),
                  "space.lr.step", "must be a positive"),
    "step-negative-int": (edited_default((("space", "epochs"), {"type": "int", "low": 1, "high": 9, "step": -2})),
                          "space.epochs.step", "must be a positive"),
    "low-not-a-number": (edited_default((("space", "lr"), {"type": "float", "low": "a", "high": 1.0})),
                         "space.lr.low", "must be a number"),
    "int-low-not-an-integer": (edited_default((("space", "epochs"), {"type": "int", "low": 1.5, "high": 9})),
                               "space.epochs.low", "must be an integer"),
    "missing-type": (edited_default((("space", "lr"), {"low": 0.1, "high": 1.0})),
                     "space.lr.type", "must be one of float, int, categorical"),
    "dimension-not-a-mapping": (edited_default((("space", "lr"), 0.1)), "space.lr", "expected a mapping like"),
    "trials-a-word": (edited_default((("trials",), "ten")), "trials", "must be an integer >= 1"),
    "trials-zero": (edited_default((("trials",), 0)), "trials", "must be an integer >= 1"),
    "trials-bool": (edited_default((("trials",), True)), "trials", "must be an integer >= 1"),
    "timeout-negative": (edited_default((("timeout",), -1)), "timeout", "positive number of seconds"),
    "sampler-seed-negative": (edited_default((("sampler", "seed"), -1)), "sampler.seed", "non-negative integer"),
    "pruner-startup-negative": (edited_default((("pruner", "startup_trials"), -1)), "pruner.startup_trials",
                                "integer >= 0"),
    "log-yes": (edited_default((("space", "lr"), {"type": "float", "low": 0.1, "high": 1.0, "log": "yes"})),
                "space.lr.log", "true or false"),
    "unknown-sampler": (edited_default((("sampler", "name"), "nope")), "sampler.name", "use one of tpe"),
    "unknown-pruner": (edited_default((("pruner", "name"), "nope")), "pruner.name", "use one of median"),
    "unknown-metric": (edited_default((("objective", "metric"), "accuracy")), "objective.metric",
                       "use one of val_accuracy, val_loss"),
    "unknown-direction": (edited_default((("objective", "direction"), "up")), "objective.direction",
                          "maximize or minimize"),
    "empty-data-source": (edited_default((("data", "source"), "")), "data.source", "non-empty string"),
    "categorical-empty": (edited_default((("space", "ngrams"), {"type": "categorical", "choices": []})),
                          "space.ngrams.choices", "non-empty list"),
    "list-shorthand-empty": (edited_default((("space", "ngrams"), [])), "space.ngrams.choices", "non-empty list"),
    "categorical-dict-choice": (edited_default((("space", "ngrams"), [{"a": 1}])), "space.ngrams.choices",
                                "number, string, boolean or null"),
    "empty-space": (edited_default((("space",), {})), "space", "must map at least one trainer setting"),
    "no-space": (edited_default((("space",), _DELETE)), "space", "must map at least one trainer setting"),
    "empty-file": ("", "space", "must map at least one trainer setting"),
    "space-name-trainer-lacks": (edited_default((("space", "dropout"), {"type": "float", "low": 0.1, "high": 0.5})),
                                 "space.dropout", "use one of lr, epochs"),
    "fixed-name-trainer-lacks": (edited_default((("fixed", "dropout"), 0.1)), "fixed.dropout", "use one of lr"),
    "float-range-for-int-setting": (edited_default((("space", "epochs"), {"type": "float", "low": 5, "high": 50})),
                                    "space.epochs", "use type: int"),
    "tuned-seed": (edited_default((("fixed", "seed"), _DELETE), (("space", "seed"), {"type": "int", "low": 0,
                                                                                     "high": 9})),
                   "space.seed", "set it under fixed:"),
    "tuned-seed-also-fixed": (edited_default((("space", "seed"), {"type": "int", "low": 0, "high": 9})),
                              "seed", "either tuned or fixed"),
    "same-key-fixed-and-space": (edited_default((("fixed", "lr"), 0.5)), "fixed.lr", "either tuned or fixed"),
    "space-bound-trainer-refuses": (edited_default((("space", "lr"), {"type": "float", "low": 0.0, "high": 1.0})),
                                    "space.lr", "lr must be > 0"),
    "categorical-choice-trainer-refuses": (edited_default((("space", "ngrams"), [1, 3])), "space.ngrams",
                                           "ngrams must be 1 or 2"),
    "name-with-path": (edited_default((("name",), "../x")), "name", "use 1-100 letters, digits"),
    "name-with-space": (edited_default((("name",), "a b")), "name", "use 1-100 letters, digits"),
    "name-empty": (edited_default((("name",), "")), "name", "use 1-100 letters, digits"),
    "experiment-with-slash": (edited_default((("experiment",), "a/b")), "experiment", "use 1-100 letters"),
    "experiment-empty": (edited_default((("experiment",), "")), "experiment", "use 1-100 letters"),
}


@pytest.mark.parametrize(("text", "key", "fix"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_raises_one_line_naming_the_key_and_the_fix(tmp_path, text, key, fix):
    message = config_error(tmp_path, text)
    assert key in message
    assert fix in message


@pytest.mark.parametrize(("text", "line"), [
    ("trials: 10\n  bad: indent\n", 2),
    ("trials: 10\nspace:\n\tlr: 1\n", 3),
    ("trials: 10\nspace: [1\nsampler: {name: tpe}\n", 3),
    ("trials: 10\nname: *undefined\n", 2),
], ids=["indentation", "tab", "unclosed-list", "undefined-alias"])
def test_yaml_syntax_error_names_the_file_and_line(tmp_path, text, line):
    message = config_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'c.yaml'}:{line}: not valid YAML")
    assert "fix the syntax" in message


def test_missing_config_file_names_it_and_says_check_config(tmp_path):
    with pytest.raises(SweepConfigError, match=r"nope\.yaml: no such config file; check --config"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_that_is_a_folder_is_a_one_line_config_error(tmp_path):
    with pytest.raises(SweepConfigError, match="cannot read config file") as caught:
        load_config(tmp_path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("flag", "value", "key"), [
    ("trials", 0, "trials"), ("sampler", "nope", "sampler.name"), ("pruner", "nope", "pruner.name"),
    ("metric", "nope", "objective.metric"), ("seed", -1, "sampler.seed"), ("timeout", -1.0, "timeout"),
    ("name", "../x", "name"), ("experiment", "a b", "experiment"), ("data", "", "data.source"),
])
def test_bad_flag_value_raises_one_line_naming_the_key(flag, value, key):
    with pytest.raises(SweepConfigError) as caught:
        load_config(None, {flag: value})
    assert key in str(caught.value) and "\n" not in str(caught.value)


def test_sweep_config_constructor_validates_like_the_file():
    with pytest.raises(SweepConfigError, match=r"space\.dropout"):
        SweepConfig(space={"dropout": FloatRange(0.1, 0.5)})
    with pytest.raises(SweepConfigError, match="trials"):
        SweepConfig(space={"lr": FloatRange(0.1, 1.0)}, trials=0)


# -- regressions: each of these was a bug found by these tests ---------------------------------------------


def test_fixed_value_the_trainer_refuses_names_fixed_not_a_space_key(tmp_path):
    message = config_error(tmp_path, edited_default((("fixed", "l2"), -1)))
    assert "l2" in message and "fixed" in message
    assert "space." not in message


@pytest.mark.parametrize(("key", "value"), [("storage", 5), ("tracking_uri", ["http://mlflow"])])
def test_storage_or_tracking_uri_that_is_not_a_string_is_a_config_error(tmp_path, key, value):
    message = config_error(tmp_path, edited_default(((key,), value)))
    assert key in message


def test_categorical_choices_equal_under_optuna_are_duplicates(tmp_path):
    message = config_error(tmp_path, edited_default((("space", "ngrams"), [1, 1.0])))
    assert "space.ngrams.choices" in message


def test_duplicate_choice_message_names_the_duplicate_and_the_fix(tmp_path):
    message = config_error(tmp_path, edited_default((("space", "ngrams"), [1, 2, 2])))
    assert "space.ngrams.choices" in message
    assert "2" in message and "remove" in message


def test_bad_flag_value_is_not_blamed_on_a_good_config_file(tmp_path):
    message = config_error(tmp_path, MINIMAL, {"trials": 0})
    assert "c.yaml" not in message
    assert "trials" in message


# -- a function trainer: any metric with a direction, no data:, an optional space ------------------------------


def function_config(tmp_path: Path, body: str) -> str:
    """A config for `trainer: {function: train.py:fit}` (the file exists beside it) plus ``body``."""
    (tmp_path / "train.py").write_text("def fit(trial):\n    return 1.0\n", encoding="utf-8")
    return "trainer: {function: train.py:fit}\n" + body


def test_function_trainer_defaults_metric_value_experiment_sweep_and_needs_no_space(tmp_path):
    config = load_text(tmp_path, function_config(tmp_path, "objective: {direction: minimize}\n"))
    assert (config.metric, config.direction, config.experiment, config.space) == ("value", "minimize", "sweep", {})
    assert config.trainer.function == f"{tmp_path / 'train.py'}:fit"


def test_function_trainer_takes_any_space_and_fixed_names(tmp_path):
    config = load_text(tmp_path, function_config(tmp_path, "objective: {metric: f1, direction: maximize}\n"
                                                           "fixed: {dataset: digits}\n"
                                                           "space:\n  dropout: {type: float, low: 0.0, high: 0.5}\n"))
    assert (config.metric, config.fixed, list(config.space)) == ("f1", {"dataset": "digits"}, ["dropout"])


def test_function_trainer_config_round_trips_through_its_stored_yaml(tmp_path):
    config = load_text(tmp_path, function_config(tmp_path, "objective: {metric: f1, direction: maximize}\n"
                                                           "fixed: {dataset: digits}\n"))
    stored = config.to_yaml()
    assert "data" not in yaml.safe_load(stored)  # only the built-in trainer reads data
    assert config_from_yaml(stored) == config



def test_autolog_settings_round_trip_through_the_stored_yaml_a_resume_reads(tmp_path):
    text = function_config(tmp_path, "objective: {direction: maximize}\n").replace(
        "{function: train.py:fit}", "{function: train.py:fit, mlflow: {autolog: {log_models: false}}}")
    config = load_text(tmp_path, text)
    stored = config.to_yaml()
    assert yaml.safe_load(stored)["trainer"]["mlflow"] == {"autolog": {"log_models": False}}
    again = config_from_yaml(stored)
    assert again.trainer == config.trainer and again.trainer.autolog == {"log_models": False}


BAD_FUNCTION_CONFIGS = {
    "custom-metric-without-direction": ("objective: {metric: f1}\n", "objective.direction",
                                        "required for your trainer's metric 'f1'",
                                        "add direction: maximize or direction: minimize"),
    "default-metric-without-direction": ("trials: 5\n", "objective.direction", "metric 'value'",
                                         "add direction: maximize"),
    "bad-direction": ("objective: {metric: f1, direction: up}\n", "objective.direction", "got 'up'",
                      "maximize or minimize"),
    "metric-not-a-name": ("objective: {metric: 'a,b', direction: maximize}\n", "objective.metric",
                          "'a,b' is not a metric name", "use letters, digits"),
    "data-given": ("objective: {direction: maximize}\ndata: {source: reviews.csv}\n", "data:",
                   "only the built-in trainer reads data:", "remove data:, or pass a path under fixed:"),
    "grid-without-space": ("objective: {direction: maximize}\nsampler: {name: grid}\n", "sampler.name",
                           "the grid sampler needs a space:", "add one or use another --sampler"),
    "same-key-fixed-and-space": ("objective: {direction: maximize}\nfixed: {depth: 3}\n"
                                 "space:\n  depth: {type: int, low: 1, high: 9}\n", "fixed.depth",
                                 "also in space", "either tuned or fixed"),
}


@pytest.mark.parametrize(("body", "key", "problem", "fix"), BAD_FUNCTION_CONFIGS.values(),
                         ids=BAD_FUNCTION_CONFIGS.keys())
def test_bad_function_trainer_config_raises_one_line_naming_the_key_and_the_fix(tmp_path, body, key, problem, fix):
    message = config_error(tmp_path, function_config(tmp_path, body))
    assert message.startswith(f"{tmp_path / 'c.yaml'}: ")  # the file's mistake, named as the file's
    assert key in message and problem in message and fix in message


def test_custom_metric_for_the_builtin_trainer_names_its_two_metrics(tmp_path):
    message = config_error(tmp_path, edited_default((("objective", "metric"), "f1"),
                                                    (("objective", "direction"), "maximize")))
    assert "objective.metric: 'f1' is not supported; use one of val_accuracy, val_loss" in message


def test_missing_function_file_is_one_line_naming_trainer_function(tmp_path):
    message = config_error(tmp_path, "trainer: {function: nope.py:fit}\nobjective: {direction: maximize}\n")
    assert "trainer.function: no such file" in message and str(tmp_path / "nope.py") in message


@pytest.mark.parametrize(("flag", "value", "key", "fix"), [
    ("sampler", "grid", "sampler.name", "needs a space:"),
    ("metric", "bad,name", "objective.metric", "not a metric name"),
    ("data", "reviews.csv", "data", "drop --data"),
    ("text_column", "body", "data", "drop --data/--text-column"),
])
def test_bad_flag_for_a_function_trainer_is_one_line_blamed_on_the_flag(tmp_path, flag, value, key, fix):
    message = config_error(tmp_path, function_config(tmp_path, "objective: {direction: maximize}\n"), {flag: value})
    assert message.startswith("command-line flag: ")
    assert key in message and fix in message


# -- repeats ---------------------------------------------------------------------------------------------


def test_repeats_defaults_to_train_and_reuse_round_trips_through_the_stored_yaml(tmp_path):
    assert load_text(tmp_path, MINIMAL).repeats == "train"
    assert "repeats" not in load_text(tmp_path, MINIMAL).to_yaml()  # earlier sweeps' stored configs read alike
    config = load_text(tmp_path, MINIMAL + "repeats: reuse\n")
    assert config.repeats == "reuse"
    assert config_from_yaml(config.to_yaml()).repeats == "reuse"


def test_an_unknown_repeats_value_is_refused_with_the_choices(tmp_path):
    message = config_error(tmp_path, MINIMAL + "repeats: skip\n")
    assert "repeats: 'skip' is unknown" in message and "train" in message and "reuse" in message


def test_reuse_without_a_space_to_compare_is_refused(tmp_path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    return trial.suggest_float('x', 0, 1)\n")
    message = config_error(tmp_path, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                                      "repeats: reuse\n")
    assert "repeats: reuse" in message and "space:" in message


# -- start_with ------------------------------------------------------------------------------------------

STEERED = ("space:\n  lr: {type: float, low: 0.1, high: 1.0, log: true}\n"
           "  epochs: {type: int, low: 2, high: 20, step: 2}\n  ngrams: [1, 2]\nfixed: {seed: 3}\ntrials: 5\n")


def test_start_with_takes_param_sets_and_round_trips_through_the_stored_yaml(tmp_path):
    # the second set is pasted from `sweep best --format yaml` (fixed: holds every param, seed included)
    config = load_text(tmp_path, STEERED + "start_with:\n  - {lr: 0.5, epochs: 4}\n"
                                           "  - {lr: 0.2, epochs: 20, ngrams: 2, seed: 3}\n")
    assert config.start_with == ({"lr": 0.5, "epochs": 4}, {"lr": 0.2, "epochs": 20, "ngrams": 2})
    assert config_from_yaml(config.to_yaml()).start_with == config.start_with


def test_start_with_is_stored_only_when_set(tmp_path):
    config = load_text(tmp_path, STEERED)
    assert config.start_with == () and "start_with" not in config.to_yaml()  # earlier sweeps' configs read alike


@pytest.mark.parametrize(("entry", "key", "fix"), [
    ("{lr: 2.0}", "start_with[1].lr: 2.0 is outside the range 0.1..1.0 (space.lr)", "inside it"),
    ("{epochs: 3}", "start_with[1].epochs: 3 is not on the range's step of 2", "inside it"),
    ("{epochs: 4.5}", "start_with[1].epochs: 4.5 is not an integer", "give an integer"),
    ("{ngrams: 3}", "start_with[1].ngrams: 3 is not among the choices 1, 2", "give one of them"),
    ("{ngrams: true}", "start_with[1].ngrams: True is not among the choices", "give one of them"),
    ("{lr: fast}", "start_with[1].lr: 'fast' is not a number", "give a number"),
    ("{learning_rate: 0.5}", "start_with[1].learning_rate: not a tuned param", "lr, epochs, ngrams"),
    ("{seed: 4}", "start_with[1].seed: 4 differs from its fixed: value 3", "space:"),
    ("{seed: 3}", "start_with[1]: sets only fixed: params", "space:"),
    ("[0.5, 4]", "start_with[1]: expected a mapping of tuned params", "{lr: 0.5}"),
    ("{}", "start_with[1]: expected a mapping of tuned params", "{lr: 0.5}"),
])
def test_a_start_with_entry_outside_the_space_is_refused_naming_the_entry(tmp_path, entry, key, fix):
    message = config_error(tmp_path, STEERED + f"start_with:\n  - {{lr: 0.5}}\n  - {entry}\n")
    assert key in message and fix in message


def test_start_with_must_be_a_list(tmp_path):
    message = config_error(tmp_path, STEERED + "start_with: {lr: 0.5}\n")
    assert "start_with: expected a list of param sets" in message


def test_more_start_with_sets_than_trials_are_refused(tmp_path):
    message = config_error(tmp_path, STEERED + "start_with: [{lr: 0.5}, {lr: 0.6}]\n", {"trials": 1})
    assert "start_with: 2 param sets but trials: 1" in message and "raise trials" in message


def test_start_with_is_refused_with_the_grid_sampler(tmp_path):
    message = config_error(tmp_path, STEERED.replace("log: true", "step: 0.1") + "start_with: [{lr: 0.5}]\n",
                           {"sampler": "grid"})
    assert "start_with: the grid sampler tries every point" in message


def test_start_with_names_a_define_by_run_functions_params_freely(tmp_path):
    text = function_config(tmp_path, "objective: {direction: maximize}\nstart_with: [{x: 0.5, family: linear}]\n")
    assert load_text(tmp_path, text).start_with == ({"x": 0.5, "family": "linear"},)


def test_a_param_set_file_is_best_yaml_best_json_or_a_plain_mapping(tmp_path):
    from sweep.config import param_set_from_file

    files = {"best.yaml": "trials: 1\nfixed: {lr: 0.5, seed: 0}\n", "best.json": '{"trial": 3, "params": {"lr": 0.5}}',
             "plain.yaml": "lr: 0.5\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert param_set_from_file(tmp_path / "best.yaml") == {"lr": 0.5, "seed": 0}
    assert param_set_from_file(tmp_path / "best.json") == {"lr": 0.5}
    assert param_set_from_file(tmp_path / "plain.yaml") == {"lr": 0.5}
    with pytest.raises(SweepConfigError, match="no such file; check --from"):
        param_set_from_file(tmp_path / "missing.yaml")


# -- run_name --------------------------------------------------------------------------------------------


def test_run_name_takes_the_trial_and_params_with_format_specs_and_is_stored_only_when_set(tmp_path):
    assert "run_name" not in load_text(tmp_path, STEERED).to_yaml()  # earlier sweeps' stored configs read alike
    config = load_text(tmp_path, STEERED + 'run_name: "{trial}-lr{lr:.2g}-ep{epochs:03d}-{ngrams}-s{seed}"\n')
    assert config.run_name == "{trial}-lr{lr:.2g}-ep{epochs:03d}-{ngrams}-s{seed}"
    assert config_from_yaml(config.to_yaml()).run_name == config.run_name


@pytest.mark.parametrize(("template", "error"), [
    ("{trial}-{learning_rate}", "run_name: {learning_rate} names no param; use {trial} or a param under space: or "
                                "fixed: (trial, lr, epochs, ngrams, seed)"),
    ("{}", "run_name: {} names no param"),
    ("{lr.real}", "run_name: {lr.real} names no param"),
    ("{trial", "run_name: expected '}' before end of string in '{trial'; write {{ and }} for literal braces"),
    ("{epochs:.2s}", "run_name: cannot format epochs=2 with {epochs:.2s}"),
    ("{lr:d}", "run_name: cannot format lr=0.1 with {lr:d}"),
    ("", "run_name: expected a text such as"),
])
def test_a_run_name_naming_an_unknown_param_or_malformed_is_refused(tmp_path, template, error):
    message = config_error(tmp_path, STEERED + yaml.safe_dump({"run_name": template}))
    assert error in message


def test_a_run_name_may_name_a_define_by_run_functions_own_params(tmp_path):
    text = function_config(tmp_path, "objective: {direction: maximize}\nrun_name: '{trial}-{family}-{x:.2f}'\n")
    assert load_text(tmp_path, text).run_name == "{trial}-{family}-{x:.2f}"


# -- stop and budget ---------------------------------------------------------------------------------------


def test_stop_and_budget_are_stored_only_when_set_and_round_trip(tmp_path):
    stored = load_text(tmp_path, MINIMAL).to_yaml()
    assert "stop" not in stored and "budget" not in stored  # earlier sweeps' stored configs read alike
    config = load_text(tmp_path, MINIMAL + "stop: {patience: 20, target: 0.9}\nbudget: {seconds: 3600, "
                                           "trial_seconds: 7200.5}\n")
    again = config_from_yaml(config.to_yaml())
    assert (again.stop_patience, again.stop_target, again.budget_seconds, again.budget_trial_seconds) == \
        (20, 0.9, 3600, 7200.5)


@pytest.mark.parametrize(("text", "named"), [
    ("stop: {patience: 0}\n", "stop.patience: must be an integer >= 1"),
    ("stop: {patience: 2.5}\n", "stop.patience: must be an integer >= 1"),
    ("stop: {target: high}\n", "stop.target: must be a number"),
    ("stop: {target: .nan}\n", "stop.target: must be a number"),
    ("budget: {seconds: 0}\n", "budget.seconds: must be a positive number of seconds"),
    ("budget: {trial_seconds: -5}\n", "budget.trial_seconds: must be a positive number of seconds"),
    ("stop: {epochs: 3}\n", "unknown key stop.epochs"),
    ("objective: [{metric: val_accuracy}, {metric: model_bytes}]\nstop: {patience: 5}\n",
     "stop.patience: a sweep of several objectives has a front"),
])
def test_bad_stop_and_budget_values_are_refused_naming_the_key(tmp_path, text, named):
    assert named in config_error(tmp_path, MINIMAL + text)


# -- warm_start --------------------------------------------------------------------------------------------


def test_warm_start_is_stored_only_when_set_and_round_trips(tmp_path):
    assert "warm_start" not in load_text(tmp_path, MINIMAL).to_yaml()
    config = load_text(tmp_path, MINIMAL + "warm_start: {sweep: earlier}\n")
    assert config.warm_start == "earlier" and config_from_yaml(config.to_yaml()).warm_start == "earlier"


@pytest.mark.parametrize(("text", "named"), [
    ("warm_start: {sweep: 'no way'}\n", "warm_start.sweep: 'no way' is not a sweep name"),
    ("warm_start: {sweep: earlier}\nsampler: {name: random}\n", "the random sampler does not learn"),
    ("warm_start: {name: earlier}\n", "unknown key warm_start.name"),
])
def test_bad_warm_starts_are_refused_naming_the_key(tmp_path, text, named):
    assert named in config_error(tmp_path, MINIMAL + text)
