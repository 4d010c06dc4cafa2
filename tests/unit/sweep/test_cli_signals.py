"""SIGTERM ends `sweep run`/`worker`/`ui` like Ctrl-C while they run, and the handler before is put back."""

from __future__ import annotations

import os
import signal

import pytest
from typer.testing import CliRunner

import sweep.engine
from sweep import cli
from sweep.errors import NotFoundError


def test_sigterm_inside_raises_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt), cli.sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        pytest.fail("SIGTERM did not interrupt")


def test_the_handler_before_is_restored_on_the_way_out():
    def mine(_signum, _frame):
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with cli.sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
        with pytest.raises(NotFoundError), cli.sigterm_as_interrupt():
            raise NotFoundError("no sweep")
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(("command", "patched"), [(["run", "--trials", "1"], "run_sweep"),
                                                  (["worker", "some-sweep"], "run_worker")])
def test_run_and_worker_install_sigterm_while_running_and_restore_it(tmp_path, monkeypatch, command, patched):
    monkeypatch.chdir(tmp_path)
    seen = []

    def stand_in(*_args, **_kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        raise NotFoundError("no sweep named 'some-sweep'")

    monkeypatch.setattr(sweep.engine, patched, stand_in)
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(cli.app, command)
    assert result.exit_code == 1, result.output
    assert seen and seen[0] is not before  # SIGTERM was an interrupt while the sweep ran
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stop_while_the_end_is_written_says_the_sweep_ends_once_it_is_written(capfd: pytest.CaptureFixture[str]):
    """Ctrl-C after the last trial, while the plots and model are written, used to say "the running trial ends
    at its next report": there is none, and the sweep then ends with exit 0."""
    from sweep.views import STOPPING, STOPPING_WHILE_PUBLISHING

    progress = cli.PlainProgress()
    progress.stopping()
    progress.finishing()
    progress.stopping()
    assert capfd.readouterr().err.splitlines() == [STOPPING, STOPPING_WHILE_PUBLISHING]
