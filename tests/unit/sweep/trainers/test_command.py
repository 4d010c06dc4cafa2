"""sweep/trainers/command.py: real commands as trials, driven by a real Optuna trial on an in-memory study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from sweep.space import FloatRange
from sweep.trainers.command import CommandFailed, CommandTimeout, CommandTrainer, MissingObjective
from sweep.trainers.command_spec import CommandSpec
from sweep.trainers.teardown import alive
from sweep.trial import Trial, TrialInterrupted, TrialPruned, TrialRun

PY = sys.executable


class PruneAll(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def make(tmp_path: Path, *, pruner=None, stop=lambda: False) -> tuple[Trial, TrialRun, optuna.Study]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=pruner or optuna.pruners.NopPruner())
    run = TrialRun()
    trial = Trial(study.ask(), run, sweep="demo", metric="loss", space={"x": FloatRange(0.0, 1.0)}, fixed={},
                  run_id=lambda: "run-123", workdirs=tmp_path / "sweeps" / "demo", should_stop=stop,
                  experiment_id=lambda: "7")
    return trial, run, study


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "cmd.py"
    path.write_text(body, encoding="utf-8")
    return str(path)


def trainer(command, **settings) -> CommandTrainer:
    words = tuple(command) if isinstance(command, list) else command
    return CommandTrainer(CommandSpec(words, **settings), "loss", "sqlite:////tmp/nowhere.db")


def gone(pid_file: Path, within: float = 3.0) -> bool:
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive({pid}):
            return True
        time.sleep(0.02)
    return False


def wait_for_file(path: Path, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_reports_become_curves_and_the_final_line_is_the_objective(tmp_path):
    trial, run, _ = make(tmp_path)
    path = script(tmp_path, "import os, json\nfrom sweep.report import report\n"
                            "p = json.loads(os.environ['SWEEP_PARAMS'])\n"
                            "for step in (1, 2, 3):\n    report(step=step, loss=p['x'] / step, acc=0.5)\n"
                            "print('plain output', os.environ['MLFLOW_RUN_ID'], os.environ['MLFLOW_EXPERIMENT_ID'])\n"
                            "print(f\"sweep: loss={p['x'] / 3} acc=0.9\")\n")
    outcome = trainer([PY, path, "--x", "{x}", "{workdir}", "{trial}", "{sweep}"]).run(trial)
    x = trial.params["x"]
    assert outcome.value == pytest.approx(x / 3) and outcome.metrics["acc"] == 0.9
    assert [step for step, _ in run.curves["loss"]] == [1, 2, 3] and run.curves["acc"][-1] == (3, 0.5)
    log = trial.workdir / "command.stdout.txt"
    assert str(log) in run.artifacts and "plain output run-123 7" in log.read_text()


def test_placeholders_fill_the_arguments_without_a_shell(tmp_path):
    trial, _, _ = make(tmp_path)
    path = script(tmp_path, "import sys, json\nprint('sweep: loss=1')\n"
                            "open('args.json', 'w').write(json.dumps(sys.argv[1:]))\n")
    trainer([PY, path, "{x:.2f}", "a b;{trial}", "$HOME"]).run(trial)
    written = json.loads((trial.workdir / "args.json").read_text())  # the command runs in its workdir
    assert written == [f"{trial.params['x']:.2f}", f"a b;{trial.number}", "$HOME"]


def test_a_shell_command_runs_through_sh_with_quoted_values(tmp_path):
    trial, _, _ = make(tmp_path)
    outcome = trainer("s=$(echo {x} | awk '{{print $1 * 2}}'); echo \"sweep: loss=$s\"", shell=True).run(trial)
    assert outcome.value == pytest.approx(2 * trial.params["x"], rel=1e-5)


def test_a_prune_stops_the_whole_process_group_and_keeps_the_curve(tmp_path):
    trial, run, _ = make(tmp_path, pruner=PruneAll())
    child = tmp_path / "child.pid"
    path = script(tmp_path, "import subprocess, sys, time\n"
                            f"c = subprocess.Popen(['sleep', '60'])\nopen({str(child)!r}, 'w').write(str(c.pid))\n"
                            "for step in range(100):\n    print(f'sweep: step={step} loss=1.0', flush=True)\n"
                            "    time.sleep(0.05)\n")
    with pytest.raises(TrialPruned, match="step 0"):
        trainer([PY, path]).run(trial)
    assert run.curves["loss"] == [(0, 1.0)]
    assert gone(child), "the command's child outlived the prune"


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    trial, _, _ = make(tmp_path, pruner=PruneAll())
    pid_file = tmp_path / "cmd.pid"
    path = script(tmp_path, "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                            "print('sweep: step=1 loss=1', flush=True)\ntime.sleep(60)\n")
    clock = time.monotonic()
    with pytest.raises(TrialPruned):
        trainer([PY, path], kill_grace=0.3).run(trial)
    assert time.monotonic() - clock < 5 and gone(pid_file, within=0.5)


def test_a_failing_command_fails_with_the_end_of_its_stderr_and_keeps_both_logs(tmp_path):
    trial, run, _ = make(tmp_path)
    path = script(tmp_path, "import sys\nprint('some output')\n"
                            "for i in range(30):\n    print(f'line {i}', file=sys.stderr)\n"
                            "sys.exit(3)\n")
    with pytest.raises(CommandFailed) as caught:
        trainer([PY, path]).run(trial)
    message = str(caught.value)
    assert message.startswith("exit code 3: line 29\n") and "line 10" in message and "line 9\n" not in message
    assert {Path(p).name for p in run.artifacts} == {"command.stdout.txt", "command.stderr.txt"}


def test_exiting_0_without_the_objective_fails_naming_it(tmp_path):
    trial, _, _ = make(tmp_path)
    with pytest.raises(MissingObjective, match=r"without reporting 'loss' .*had acc.*sweep: loss=<value>"):
        trainer(["sh", "-c", "echo 'sweep: acc=1'"]).run(trial)


def test_malformed_report_lines_are_counted_and_ignored(tmp_path):
    trial, run, _ = make(tmp_path)
    lines = ["sweep:", "sweep: step=x loss=1", "sweep: loss=abc", "sweep: step=2 loss", "sweep: step=1 loss=0.5",
             "sweep: loss=0.25"]
    outcome = trainer(["printf", "%s\\n", *lines]).run(trial)
    assert outcome.value == 0.25 and run.curves["loss"] == [(1, 0.5)]
    assert run.tags["sweep.report_warning"].startswith("4 malformed report line(s) ignored; first: 'sweep:'")


def test_a_timeout_fails_the_trial_naming_it_and_stops_the_group(tmp_path):
    trial, _, _ = make(tmp_path)
    pid_file = tmp_path / "sleep.pid"
    with pytest.raises(CommandTimeout, match=r"trainer.timeout \(0.5 s\)"):
        trainer(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], timeout=0.5).run(trial)
    assert gone(pid_file)


def test_a_stop_of_the_sweep_interrupts_the_trial_and_its_processes(tmp_path):
    pid_file = tmp_path / "sleep.pid"
    trial, _, _ = make(tmp_path, stop=lambda: pid_file.exists() and bool(pid_file.read_text().strip()))
    with pytest.raises(TrialInterrupted):
        trainer(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo 'sweep: step=4 loss=1'; wait"]).run(trial)
    assert gone(pid_file)


def test_a_daemon_left_behind_in_its_own_session_is_stopped_and_the_trial_still_counts(tmp_path):
    trial, run, _ = make(tmp_path)
    pid_file = tmp_path / "daemon.pid"
    path = script(tmp_path, "import os, sys, time\n"
                            "if os.fork() == 0:\n    os.setsid()\n"
                            "    if os.fork() == 0:\n"
                            "        os.close(1); os.close(2)\n"
                            f"        open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                            "        time.sleep(60)\n    os._exit(0)\n"
                            f"while not os.path.getsize({str(pid_file)!r}) if os.path.exists({str(pid_file)!r}) "
                            "else True:\n    time.sleep(0.01)\n"  # the daemon runs when the command ends
                            "print('sweep: loss=0.5')\n")
    outcome = trainer([PY, path], kill_grace=1).run(trial)
    assert outcome.value == 0.5 and gone(pid_file)
    assert "1 process(es) still ran after the command exited" in run.tags["sweep.leftover_processes"]


def running_with_argument(argument: str) -> list[int]:
    """Live processes whose command line holds ``argument`` (a zombie has ended)."""
    found = []
    for entry in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if argument.encode() in command and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def test_processes_that_shed_the_group_and_the_environment_end_with_the_trial(tmp_path):
    """`setsid env -i sleep &` and a double fork that clears its environment escape both the command's process
    group and the trial's token: the launcher, their subreaper, ends them when the command ends."""
    trial, run, _ = make(tmp_path)
    marker = f"{time.time_ns() % 10**6}.5"  # a sleep length no other process has
    daemon = script(tmp_path, "import os, time\n"
                              "if os.fork() == 0:\n    os.setsid()\n"
                              "    if os.fork() == 0:\n"
                              f"        os.execve('/bin/sleep', ['sleep', '{marker}1'], {{}})\n"
                              "    os._exit(0)\n")
    command = f"setsid env -i sleep {marker}0 & {PY} {daemon}; sleep 0.2; echo 'sweep: loss=0.5'"
    outcome = trainer(["sh", "-c", command], kill_grace=1).run(trial)
    assert outcome.value == 0.5
    assert running_with_argument(f"{marker}0") == [] and running_with_argument(f"{marker}1") == []
    assert "2 process(es) still ran after the command exited" in run.tags["sweep.leftover_processes"]


def test_a_command_that_cannot_start_fails_in_one_line(tmp_path):
    trial, _, _ = make(tmp_path)
    with pytest.raises(CommandFailed, match="no such program"):
        trainer(["/no/such/program"]).run(trial)


@pytest.mark.slow
def test_100_mb_of_output_is_read_through_and_only_its_last_mib_kept(tmp_path):
    trial, _, _ = make(tmp_path)
    path = script(tmp_path, "import sys\nline = b'x' * 99 + b'\\n'\nout = sys.stdout.buffer\n"
                            "for _ in range(1_000_000):\n    out.write(line)\n"
                            "out.write(b'sweep: loss=0.125\\n')\n")
    outcome = trainer([PY, path]).run(trial)
    log = trial.workdir / "command.stdout.txt"
    assert outcome.value == 0.125 and log.stat().st_size < 1024 * 1024 + 100
    assert log.read_text().startswith("[the first 98951442 bytes are not kept]\n")


def test_the_watchdog_stops_the_command_when_the_sweep_process_is_killed(tmp_path):
    pid_file = tmp_path / "sleep.pid"
    code = ("import optuna, sys\nfrom pathlib import Path\n"
            "from sweep.trainers.command import CommandTrainer\nfrom sweep.trainers.command_spec import CommandSpec\n"
            "from sweep.trial import Trial, TrialRun\n"
            "study = optuna.create_study()\n"
            f"trial = Trial(study.ask(), TrialRun(), sweep='demo', metric='loss', space={{}}, fixed={{}}, "
            f"run_id=lambda: None, workdirs=Path({str(tmp_path)!r}))\n"
            f"spec = CommandSpec(('sh', '-c', 'sleep 60 & echo $! > {pid_file}; wait'))\n"
            "CommandTrainer(spec, 'loss', 'x').run(trial)\n")
    sweep_process = subprocess.Popen([PY, "-c", code], env={**os.environ})
    try:
        wait_for_file(pid_file, within=30)
    finally:
        sweep_process.kill()
        sweep_process.wait()
    assert gone(pid_file, within=20), "the command outlived the killed sweep by more than 20 s"
