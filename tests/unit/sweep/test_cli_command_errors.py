"""`sweep run` with a command trainer it cannot run: exit 2, one line naming the problem, nothing written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.unit.sweep.test_cli_config_errors import assert_nothing_written, error_line, invoke, workdir  # noqa: F401

SPACE = "space:\n  x: {type: float, low: 0, high: 1}\nobjective: {metric: loss, direction: minimize}\n"

BAD_COMMANDS = {  # id: (trainer section, what the error line must name)
    "not-found": ("{command: 'no-such-program-here {x}'}", "program 'no-such-program-here' not found on PATH"),
    "not-executable": ("{command: './score.sh {x}'}", "is not executable; chmod +x it"),
    "missing-file": ("{command: './missing.sh {x}'}", "no such file './missing.sh' beside the config"),
    "placeholder-typo": ("{command: 'sh score.sh {xx}'}", "placeholder {xx} has no value"),
    "unused-space-key": ("{command: 'sh score.sh {x}'}\nspace:\n  y: {type: int, low: 1, high: 2}",
                         "space.y: the command never uses it; add {y} (or {params} for all)"),
    "missing-script": ("{command: 'python3 -u trian.py {x}'}", "no such file 'trian.py' beside the config for "
                                                               "python3 to run"),
    "params-inside-a-word": ("{command: 'sh score.sh --all={params}'}", "{params} stands for several arguments"),
    "unterminated-quote": ("{command: \"sh score.sh '{x}\"}", "No closing quotation"),
    "bad-brace": ("{command: 'sh score.sh {x'}", "write {{ and }} for literal braces"),
    "list-with-shell": ("{command: [sh, score.sh, '{x}'], shell: true}", "trainer.shell: true takes the command"),
    "bad-timeout": ("{command: 'sh score.sh {x}', timeout: -1}", "trainer.timeout: must be a positive number"),
    "unknown-key": ("{command: 'sh score.sh {x}', retries: 3}", "unknown key 'retries' for a command"),
    "mlflow-source-for-function": ("{function: score.py:fit}\nobjective: {metric: f, direction: minimize, "
                                   "source: mlflow}", "objective.source: mlflow is for a command trainer"),
}


@pytest.mark.parametrize(("trainer", "message"), BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_a_command_trainer_that_cannot_run_exits_2_in_one_line_and_writes_nothing(workdir, trainer, message):  # noqa: F811
    (workdir / "score.sh").write_text("echo \"sweep: loss=$1\"\n", encoding="utf-8")
    (workdir / "score.py").write_text("def fit(trial):\n    return 1\n", encoding="utf-8")
    space = SPACE if "objective" not in trainer else "space:\n  x: {type: float, low: 0, high: 1}\n"
    if "\nspace:\n" in trainer:  # a second space key: joined to the first
        trainer, extra = trainer.split("\nspace:\n")
        space = space.replace("space:\n", f"space:\n{extra}\n")
    (workdir / "sweep.yaml").write_text(f"trainer: {trainer}\n{space}", encoding="utf-8")
    result = invoke("run", "--config", "sweep.yaml")
    assert result.exit_code == 2, result.output
    assert message in error_line(result)
    assert_nothing_written(workdir, "sweep.yaml", "score.sh", "score.py")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_where_working_folders_cannot_be_made_exits_2_and_writes_nothing(workdir: Path):  # noqa: F811
    (workdir / "sweep.yaml").write_text(f"trainer: {{command: 'echo {{x}}'}}\n{SPACE}"
                                        f"storage: {workdir / 'sweep.journal'}\n", encoding="utf-8")
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    os.chdir(locked)
    try:
        result = invoke("run", "--config", str(workdir / "sweep.yaml"))
    finally:
        locked.chmod(stat.S_IRWXU)
    assert result.exit_code == 2
    assert "cannot create the trials' working folders" in error_line(result)
    assert_nothing_written(workdir, "sweep.yaml", "locked")


def test_a_sweeps_path_that_is_a_file_exits_2_and_writes_nothing(workdir: Path):  # noqa: F811
    (workdir / "sweep.yaml").write_text(f"trainer: {{command: 'echo {{x}}'}}\n{SPACE}", encoding="utf-8")
    (workdir / "sweeps").write_text("not a folder", encoding="utf-8")
    result = invoke("run", "--config", "sweep.yaml")
    assert result.exit_code == 2
    assert "cannot create the trials' working folders" in error_line(result)
    assert_nothing_written(workdir, "sweep.yaml", "sweeps")
