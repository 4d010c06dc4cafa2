"""TrainConfig: validated in its constructor; each error names the field it refuses."""

import math

import pytest

import trainer
from trainer import ConfigError, TrainConfig
from trainer.config import read_settings_file
from trainer.errors import ConfigFileNotFoundError


def test_defaults_are_valid_and_documented_values():
    assert TrainConfig().to_dict() == {"lr": 0.5, "epochs": 300, "vocab_size": 2000, "l2": 1e-4, "ngrams": 1,
                                       "seed": 0}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", 0.0), ("lr", -0.1), ("lr", math.nan), ("lr", math.inf), ("lr", "0.1"), ("lr", None), ("lr", True),
        ("epochs", 0), ("epochs", -5), ("epochs", 1.5), ("epochs", 10.0), ("epochs", "10"), ("epochs", True),
        ("vocab_size", 0), ("vocab_size", -1), ("vocab_size", 2000.0),
        ("l2", -1e-9), ("l2", math.inf), ("l2", "0"),
        ("ngrams", 0), ("ngrams", 3), ("ngrams", 1.0),
        ("seed", -1), ("seed", 0.5),
    ],
)  # fmt: skip
def test_bad_field_is_refused_with_its_name_in_the_error(field, value):
    with pytest.raises(ConfigError, match=rf"^{field} must be") as caught:
        TrainConfig(**{field: value})
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)  # callers catching ValueError keep working


def test_config_is_frozen():
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]


def test_from_mapping_refuses_an_unknown_key_by_name():
    with pytest.raises(ConfigError, match=r"unknown setting 'learning_rate'; expected one of: lr, epochs"):
        TrainConfig.from_mapping({"learning_rate": 0.1, "epochs": 3})


def test_from_mapping_coerces_integral_floats_for_int_fields():
    config = TrainConfig.from_mapping({"vocab_size": 2000.0, "epochs": 30.0, "ngrams": 2.0, "seed": 7.0})
    assert (config.vocab_size, config.epochs, config.ngrams, config.seed) == (2000, 30, 2, 7)
    assert all(type(value) is int for value in (config.vocab_size, config.epochs, config.ngrams, config.seed))


def test_from_mapping_coerces_ints_for_float_fields():
    config = TrainConfig.from_mapping({"lr": 1, "l2": 0})
    assert (config.lr, config.l2) == (1.0, 0.0)
    assert type(config.lr) is float and type(config.l2) is float


def test_from_mapping_refuses_a_fractional_float_for_an_int_field():
    with pytest.raises(ConfigError, match=r"^vocab_size must be an integer, got 2000\.5$"):
        TrainConfig.from_mapping({"vocab_size": 2000.5})


def test_from_mapping_refuses_a_bool_for_a_number():
    with pytest.raises(ConfigError, match=r"^lr must be a number"):
        TrainConfig.from_mapping({"lr": True})


def test_from_mapping_round_trips_to_dict():
    config = TrainConfig(lr=0.1, epochs=5, vocab_size=10, l2=0.0, ngrams=2, seed=4)
    assert TrainConfig.from_mapping(config.to_dict()) == config


def test_settings_file_is_read_as_a_mapping(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("lr: 0.25\nepochs: 40\ndata: reviews.csv\ntext_column: review\n", encoding="utf-8")
    assert read_settings_file(path) == {"lr": 0.25, "epochs": 40, "data": "reviews.csv", "text_column": "review"}


def test_settings_file_with_an_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("lr: 0.25\nmomentum: 0.9\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: unknown setting 'momentum'"):
        read_settings_file(path)


def test_settings_file_with_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("lr: 0.25\nepochs: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: not valid YAML"):
        read_settings_file(path)


def test_settings_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("- lr\n- epochs\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"expected a mapping of settings, got list"):
        read_settings_file(path)


def test_missing_settings_file_is_a_file_not_found_config_error(tmp_path):
    with pytest.raises(ConfigFileNotFoundError, match=r"no such config file") as caught:
        read_settings_file(tmp_path / "absent.yaml")
    assert isinstance(caught.value, FileNotFoundError)


def test_public_names_are_pinned():
    assert sorted(trainer.__all__) == [
        "ConfigError", "Corpus", "DataError", "DivergenceError", "EpochCallback", "Model", "ModelFileError",
        "Split", "TrainConfig", "TrainResult", "TrainerError", "load_corpus", "parameter_bytes", "split", "tokenize",
        "train",
    ]
    for name in trainer.__all__:
        assert getattr(trainer, name) is not None


@pytest.mark.parametrize(("field", "value", "bound"), [
    ("epochs", 100_001, "100,000"), ("epochs", 10**20, "100,000"),
    ("vocab_size", 10_000_001, "10,000,000"), ("vocab_size", 10**400, "10,000,000"),
])
def test_epochs_and_vocab_size_above_their_bound_are_refused_naming_it(field, value, bound):
    with pytest.raises(ConfigError, match=f"{field} must be between 1 and {bound}") as caught:
        TrainConfig(**{field: value})
    assert len(str(caught.value)) < 200


def test_epochs_and_vocab_size_at_their_bound_are_accepted():
    assert TrainConfig(epochs=100_000, vocab_size=10_000_000).epochs == 100_000
