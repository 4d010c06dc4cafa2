"""sweep/trainers/command_spec.py, sweep/report.py and the report line format: parsed and checked at config time."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from sweep.config import config_from_yaml, load_config
from sweep.report import report
from sweep.trainers.report_lines import parse_report


def write(folder: Path, trainer: str, extra: str = "") -> Path:
    (folder / "train.py").write_text("print('sweep: loss=1')\n", encoding="utf-8")
    path = folder / "sweep.yaml"
    path.write_text(f"trainer: {trainer}\nobjective: {{metric: loss, direction: minimize}}\n"
                    f"space:\n  lr: {{type: float, low: 0.1, high: 1}}\n{extra}", encoding="utf-8")
    return path


def test_a_file_beside_the_config_is_made_absolute_and_the_config_round_trips(tmp_path):
    config = load_config(write(tmp_path, "{command: 'python train.py --lr {lr} --out {workdir}/m.pkl', "
                                         "timeout: 60, env: {OMP_NUM_THREADS: 1}, keep_workdirs: true}",
                               "fixed: {seed: 3}\n"))
    command = config.trainer.command
    assert command is not None
    assert command.words == ("python", str(tmp_path / "train.py"), "--lr", "{lr}", "--out", "{workdir}/m.pkl")
    assert command.env == {"OMP_NUM_THREADS": "1"} and command.timeout == 60 and command.keep_workdirs
    assert config_from_yaml(config.to_yaml()) == config  # what workers and --resume rebuild


def test_a_list_command_and_a_shell_command_round_trip(tmp_path):
    for trainer in ("{command: [python, train.py, '{lr}']}", "{command: 'sh -c \"echo {lr}\" | cat', shell: true}"):
        config = load_config(write(tmp_path, trainer))
        assert config_from_yaml(config.to_yaml()) == config


def test_objective_source_mlflow_is_kept_in_the_stored_config(tmp_path):
    path = write(tmp_path, "{command: 'python train.py {lr}'}")
    path.write_text(path.read_text().replace("direction: minimize}", "direction: minimize, source: mlflow}"))
    config = load_config(path)
    assert config.source == "mlflow" and config_from_yaml(config.to_yaml()).source == "mlflow"


def test_shell_values_are_quoted_and_plain_arguments_are_not(tmp_path):
    config = load_config(write(tmp_path, "{command: 'echo {lr} {sweep}', shell: true}"))
    assert config.trainer.command is not None
    assert config.trainer.command.arguments({"lr": "a b", "sweep": "s"}) == ["echo 'a b' s"]
    plain = load_config(write(tmp_path, "{command: 'echo {lr} {trial}'}")).trainer.command
    assert plain is not None and plain.arguments({"lr": "a b", "trial": 3}) == ["echo", "a b", "3"]


def test_params_gives_every_param_as_an_argument_and_a_command_naming_none_reads_sweep_params(tmp_path):
    command = load_config(write(tmp_path, "{command: 'python train.py {params} --out {workdir}'}",
                                "fixed: {seed: 3}\n")).trainer.command
    assert command is not None
    assert command.arguments({"workdir": "/w"}, {"lr": 0.5, "seed": 3, "deep": True}) == [
        "python", str(tmp_path / "train.py"), "--lr=0.5", "--seed=3", "--deep=true", "--out", "/w"]
    shell = load_config(write(tmp_path, "{command: 'python train.py {params}', shell: true}")).trainer.command
    assert shell is not None and shell.arguments({}, {"name": "a b"}) == [f"python {tmp_path / 'train.py'} "
                                                                          "'--name=a b'"]
    assert load_config(write(tmp_path, "{command: 'python train.py --out {workdir}'}")).trainer.command is not None


@pytest.mark.parametrize(("line", "step", "metrics"), [
    (b"sweep: step=10 val_loss=0.31 val_accuracy=0.88", 10, {"val_loss": 0.31, "val_accuracy": 0.88}),
    (b"sweep: val_accuracy=0.91\r", None, {"val_accuracy": 0.91}),
    (b"sweep:   step=0   loss=nan", 0, {"loss": float("nan")}),
])
def test_report_lines_parse_to_a_step_and_metrics(line, step, metrics):
    parsed = parse_report(line)
    assert parsed.step == step and list(parsed.metrics) == list(metrics)


@pytest.mark.parametrize("line", [b"sweep:", b"sweep: step=-1 a=1", b"sweep: step=1.5 a=1", b"sweep: a=b",
                                  b"sweep: a", b"sweep: step=3", b"sweep: =1",
                                  b"sweep: step=99999999999999999999 a=1", b"sweep: step=9223372036854775808 a=1"])
def test_malformed_report_lines_are_refused_with_a_reason(line):
    with pytest.raises(ValueError):
        parse_report(line)


def test_the_report_helper_prints_the_line_the_parser_reads():
    out = io.StringIO()
    report(step=3, file=out, val_loss=0.25, acc=1)
    report(file=out, val_loss=0.5)
    first, second = out.getvalue().splitlines()
    assert first == "sweep: step=3 val_loss=0.25 acc=1.0" and second == "sweep: val_loss=0.5"
    assert parse_report(first.encode()).metrics == {"val_loss": 0.25, "acc": 1.0}
    with pytest.raises(TypeError):
        report(step=1, file=out)
    with pytest.raises(ValueError):
        report(file=out, **{"bad name": 1.0})


def test_the_report_helper_imports_neither_mlflow_nor_optuna_nor_numpy():
    import subprocess

    code = ("import sys\nfrom sweep.report import report\n"
            "print([m for m in ('mlflow', 'optuna', 'numpy') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
