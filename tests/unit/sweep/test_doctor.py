"""`sweep doctor` in-process: one line per check, exit 0 only when all pass, passwords as ***, nothing created."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sweep.cli import app
from sweep.doctor import compare_versions
from sweep.errors import SweepError
from sweep.provenance import installed_versions
from tests.support import e2e

NOBODY = e2e.free_port()  # nobody listens there: every connection is refused at once


@pytest.fixture(autouse=True)
def in_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "SWEEP_STORAGE", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def doctor(*args: str):
    result = CliRunner().invoke(app, ["doctor", *args])
    lines = result.stdout.splitlines()
    assert all(line[:2] in ("✓ ", "✗ ") for line in lines), result.stdout
    assert [line[2:].split(":")[0] for line in lines] == \
        ["optuna storage", "mlflow tracking", "artifact store", "versions"], result.stdout
    return result, lines


def test_doctor_in_a_new_folder_passes_and_creates_nothing(tmp_path):
    result, lines = doctor()
    assert result.exit_code == 0, result.output
    assert all(line.startswith("✓") for line in lines)
    assert "no sweeps yet" in lines[0] and "no runs yet" in lines[1]
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_tracking_server_fails_its_check_and_the_ones_that_need_it(tmp_path):
    result, lines = doctor("--tracking-uri", f"http://alice:pw-Zx81q@127.0.0.1:{NOBODY}")
    assert result.exit_code == 1
    assert lines[0].startswith("✓ optuna storage")
    assert lines[1].startswith("✗ mlflow tracking: cannot reach the MLflow tracking server at "
                               f"http://alice:***@127.0.0.1:{NOBODY}") and "start it" in lines[1]
    assert lines[2] == "✗ artifact store: not checked: the tracking store cannot be used"
    assert "pw-Zx81q" not in result.output


def test_an_unreachable_storage_fails_with_its_password_hidden(tmp_path):
    result, lines = doctor("--storage", f"postgresql://postgres:pw-Qa72x@127.0.0.1:{NOBODY}/optuna")
    assert result.exit_code == 1
    assert lines[0].startswith(f"✗ optuna storage: cannot open Optuna storage postgresql://postgres:***@127.0.0.1:"
                               f"{NOBODY}/optuna")
    assert "pw-Qa72x" not in result.output


def test_a_sweep_named_but_not_there_fails_the_storage_check(tmp_path):
    result, lines = doctor("no-such-sweep")
    assert result.exit_code == 1
    assert lines[0].startswith("✗ optuna storage: no sweep named 'no-such-sweep'")


def test_versions_that_differ_from_the_sweeps_name_the_pip_install():
    local = installed_versions()
    assert "as sweep 's' was started with" in compare_versions({**local, "numpy": "0.0.1"}, "s")
    with pytest.raises(SweepError, match=r"here, 9\.9\.9 in the sweep; pip install 'mlflow==9\.9\.9'"):
        compare_versions({**local, "mlflow": "9.9.9"}, "s")
