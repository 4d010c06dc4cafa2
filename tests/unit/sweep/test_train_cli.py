"""The `train` command through typer's CliRunner: one run, settings files, errors, predict, --mlflow."""

import json
import re

import pytest
from typer.testing import CliRunner

from sweep.train_cli import app
from tests.support.e2e import free_port
from tests.unit.trainer.helpers import assert_one_line
from trainer import Model

runner = CliRunner()


@pytest.fixture
def write_file(tmp_path):
    """write_file("name.csv", text) -> the path, under tmp_path."""

    def write(name, content):
        path = tmp_path / name
        path.write_text(content, encoding="utf-8", newline="")
        return path

    return write


def _train(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_train_prints_counts_vocab_accuracies_and_saves_the_model(tmp_path):
    out = tmp_path / "model.json"
    result = _train("--epochs", 20, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "examples: 1800  train=1260  validation=270  test=270"
    assert re.fullmatch(r"vocab size: \d+", lines[1])
    for line, name in zip(lines[2:5], ("train", "val", "test")):
        assert re.fullmatch(rf"{name}_accuracy: [01]\.\d{{3}}", line)
    assert lines[5] == f"saved model -> {out}"
    assert len(lines) == 6
    model = Model.load(out)
    assert f"vocab size: {len(model.vocabulary)}" == lines[1]
    assert model.metadata["config"]["epochs"] == 20
    for line, name in zip(lines[2:5], ("train", "val", "test")):
        assert line == f"{name}_accuracy: {model.metadata['metrics'][f'{name}_accuracy']:.3f}"


def test_train_on_a_user_csv_with_named_columns(write_file, tmp_path):
    from tests.unit.trainer.helpers import csv_text, synthetic_rows

    data = write_file("mine.csv", csv_text(synthetic_rows(30), header=("review", "stars")))
    out = tmp_path / "model.json"
    result = _train("--data", data, "--text-column", "review", "--label-column", "stars", "--epochs", 30,
                    "--vocab-size", 12, "--ngrams", 2, "--lr", 0.3, "--l2", 0, "--seed", 2, "--out", out)
    assert result.exit_code == 0, result.output
    assert "examples: 60  train=42  validation=8  test=10" in result.stdout
    assert "vocab size: 12" in result.stdout
    assert Model.load(out).metadata["config"] == {"lr": 0.3, "epochs": 30, "vocab_size": 12, "l2": 0.0,
                                                  "ngrams": 2, "seed": 2}


def test_default_out_is_model_json_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _train("--epochs", 2)
    assert result.exit_code == 0, result.output
    assert "saved model -> model.json" in result.stdout
    assert (tmp_path / "model.json").is_file()


def test_config_file_sets_values_and_flags_override_it(tmp_path):
    settings = tmp_path / "best.yaml"
    settings.write_text("lr: 0.2\nepochs: 50\nvocab_size: 300.0\nngrams: 2\n", encoding="utf-8")
    out = tmp_path / "model.json"
    result = _train("--config", settings, "--epochs", 7, "--out", out)
    assert result.exit_code == 0, result.output
    config = Model.load(out).metadata["config"]
    assert config == {"lr": 0.2, "epochs": 7, "vocab_size": 300, "l2": 1e-4, "ngrams": 2, "seed": 0}


def test_config_file_may_name_the_data_and_its_columns(write_file, tmp_path):
    from tests.unit.trainer.helpers import jsonl_text, synthetic_rows

    data = write_file("mine.jsonl", jsonl_text(synthetic_rows(30), header=("body", "y")))
    settings = write_file("run.yaml", f"data: {data}\ntext_column: body\nlabel_column: y\nepochs: 5\n")
    result = _train("--config", settings, "--out", tmp_path / "model.json")
    assert result.exit_code == 0, result.output
    assert "examples: 60" in result.stdout


def test_unknown_key_in_config_file_exits_2_with_one_line(tmp_path):
    settings = tmp_path / "best.yaml"
    settings.write_text("lr: 0.2\nlearning_rate: 0.1\n", encoding="utf-8")
    out = tmp_path / "model.json"
    result = _train("--config", settings, "--out", out)
    assert result.exit_code == 2
    assert_one_line(result.stderr)
    assert result.stderr.startswith(f"error: {settings}: unknown setting 'learning_rate'")
    assert not out.exists()


def test_missing_config_file_exits_1(tmp_path):
    result = _train("--config", tmp_path / "absent.yaml", "--out", tmp_path / "model.json")
    assert result.exit_code == 1
    assert_one_line(result.stderr)
    assert "no such config file" in result.stderr


@pytest.mark.parametrize(("flag", "value", "field"), [
    ("--lr", "-1", "lr"), ("--epochs", "0", "epochs"), ("--vocab-size", "0", "vocab_size"),
    ("--l2", "-0.5", "l2"), ("--ngrams", "3", "ngrams"), ("--seed", "-2", "seed"),
])
def test_bad_flag_value_exits_2_and_writes_no_model(tmp_path, flag, value, field):
    out = tmp_path / "model.json"
    result = _train(flag, value, "--out", out)
    assert result.exit_code == 2
    assert_one_line(result.stderr)
    assert result.stderr.startswith(f"error: {field} must be")
    assert not out.exists()
    assert result.stdout == ""  # refused before the data is read


def test_flag_of_the_wrong_type_is_a_usage_error(tmp_path):
    out = tmp_path / "model.json"
    result = _train("--epochs", "many", "--out", out)
    assert result.exit_code == 2
    assert not out.exists()


def test_missing_data_file_exits_1_with_one_line(tmp_path):
    out = tmp_path / "model.json"
    result = _train("--data", tmp_path / "absent.csv", "--out", out)
    assert result.exit_code == 1
    assert_one_line(result.stderr)
    assert result.stderr.startswith(f"error: {tmp_path / 'absent.csv'}: no such data file")
    assert not out.exists()


def test_bad_data_file_exits_2_naming_file_and_line(write_file, tmp_path):
    data = write_file("bad.csv", "text,label\ngood,1\nmeh,maybe\n")
    result = _train("--data", data, "--out", tmp_path / "model.json")
    assert result.exit_code == 2
    assert_one_line(result.stderr)
    assert f"{data}:3: unknown label 'maybe'" in result.stderr


def test_divergence_exits_1_with_advice(tmp_path):
    out = tmp_path / "model.json"
    result = _train("--lr", "1e6", "--epochs", 5, "--out", out)
    assert result.exit_code == 1
    assert_one_line(result.stderr)
    assert "lower --lr" in result.stderr
    assert not out.exists()


def test_unwritable_out_exits_2(tmp_path):
    result = _train("--epochs", 2, "--out", tmp_path / "no" / "such" / "dir" / "model.json")
    assert result.exit_code == 2
    assert "cannot save model" in result.stderr.splitlines()[-1]


@pytest.fixture
def saved_model(tmp_path):
    out = tmp_path / "model.json"
    assert _train("--epochs", 100, "--out", out).exit_code == 0
    return out


def test_predict_prints_label_and_probability_per_text(saved_model):
    texts = ["An absolute delight, wonderful acting and a moving story.",
             "Boring, predictable and far too long. A waste of time.",
             ""]
    result = runner.invoke(app, ["predict", str(saved_model), *texts])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    labels, proba = Model.load(saved_model).predict(texts)
    for line, text, label, p in zip(lines, texts, labels.tolist(), proba.tolist()):
        assert line == f"{'positive' if label else 'negative'}\t{p:.3f}\t{text}"
    assert lines[0].startswith("positive\t") and lines[1].startswith("negative\t")


def test_predict_with_missing_model_exits_1_with_one_line(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "absent.json"), "some text"])
    assert result.exit_code == 1
    assert_one_line(result.stderr)
    assert result.stderr.startswith(f"error: {tmp_path / 'absent.json'}: no such model file")


def test_predict_with_malformed_model_exits_2(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"kind": "other"}), encoding="utf-8")
    result = runner.invoke(app, ["predict", str(path), "some text"])
    assert result.exit_code == 2
    assert_one_line(result.stderr)
    assert "not a sweep model file" in result.stderr


def test_predict_without_texts_is_a_usage_error(saved_model):
    assert runner.invoke(app, ["predict", str(saved_model)]).exit_code == 2


# -- --mlflow --------------------------------------------------------------------------------------


def test_train_mlflow_logs_run_to_sqlite_store(tmp_path, monkeypatch, mlflow_uri):
    import mlflow

    monkeypatch.chdir(tmp_path)  # artifacts of a sqlite store land beside the working folder
    uri = mlflow_uri  # tmp_path/mlflow.db, new and empty
    out = tmp_path / "model.json"
    result = _train("--mlflow", "--tracking-uri", uri, "--experiment", "sentiment", "--out", out, "--epochs", 20)
    assert result.exit_code == 0, result.output
    printed = dict(re.findall(r"^(\w+_accuracy): ([\d.]+)$", result.stdout, flags=re.MULTILINE))
    assert set(printed) == {"train_accuracy", "val_accuracy", "test_accuracy"}
    logged = re.search(r"^logged run (\w+)\b", result.stdout, flags=re.MULTILINE)
    assert logged, result.stdout

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sentiment")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_id == logged.group(1)
    assert run.info.status == "FINISHED"

    model = Model.load(out)
    config = model.metadata["config"]
    for name in ("lr", "epochs", "vocab_size", "l2", "ngrams", "seed"):
        assert float(run.data.params[name]) == float(config[name]), name
    assert config["epochs"] == 20

    for name in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert f"{run.data.metrics[name]:.3f}" == printed[name]
    for name in ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss"):
        assert run.data.metrics[name] == pytest.approx(model.metadata["metrics"][name], abs=1e-12), name

    history = client.get_metric_history(run.info.run_id, "val_loss")
    epochs = sorted(point.step for point in history if point.step >= 1)
    assert len(epochs) >= 5
    assert epochs[-1] == 20
    assert len(set(point.value for point in history)) > 1, "a curve, not one value repeated"

    artifacts = _artifact_paths(client, run.info.run_id)
    saved = [path for path in artifacts if path.rsplit("/", 1)[-1] == "model.json"]
    assert saved, artifacts
    local = client.download_artifacts(run.info.run_id, saved[0], str(tmp_path / "download"))
    assert open(local, "rb").read() == out.read_bytes()  # noqa: SIM115


def _artifact_paths(client, run_id, path=None):
    found = []
    for info in client.list_artifacts(run_id, path):
        found += _artifact_paths(client, run_id, info.path) if info.is_dir else [info.path]
    return found


def test_train_mlflow_with_an_unreachable_tracking_server_exits_1_and_keeps_the_model(tmp_path):
    out = tmp_path / "model.json"
    uri = f"http://127.0.0.1:{free_port()}"
    result = _train("--mlflow", "--tracking-uri", uri, "--out", out, "--epochs", 2)
    assert result.exit_code == 1, result.output
    assert_one_line(result.stderr)
    assert result.stderr.startswith(f"error: MLflow at {uri}")
    assert f"saved model -> {out}" in result.stdout
    assert Model.load(out).metadata["config"]["epochs"] == 2
