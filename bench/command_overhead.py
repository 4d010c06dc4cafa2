"""The command-trainer contender of bench/overhead.py: what running a trial as a process costs the sweep.

    python bench/command_overhead.py [--trials 30]

- overhead per trial beyond the interpreter's own start-up: the same toy script (a few epochs, one report
  each) run N times directly (spawn + wait: the interpreter's start-up and the script) and N times as a
  CommandTrainer trial (spawn, reading and parsing its output, the pruner, teardown, its logs); the
  difference per trial. Target <= 30 ms.
- report line -> prune decision: a script prints one report and notes the time; the pruner prunes at once,
  and the script notes when SIGTERM arrives. Median and p95 of that latency, and of the trainer's own
  (line read -> pruner's answer). Target <= 50 ms.

Trials use a real journal-file Optuna storage, as `sweep run` does; the tracking process is not involved
(a trial's record reaches MLflow off the trial's critical path). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # `python bench/command_overhead.py`: bench/trainer.py would shadow the trainer package
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep.space import FloatRange
from sweep.trainers.command import CommandTrainer
from sweep.trainers.command_spec import CommandSpec
from sweep.trial import Trial, TrialPruned, TrialRun

TOY = """
import sys
from sweep.report import report
x = float(sys.argv[1])
for epoch in range(1, 6):
    loss = (x - 0.3) ** 2 + 1 / epoch
    report(step=epoch, loss=loss)
report(loss=loss)
"""

PRUNED = """
import signal, sys, time
out = sys.argv[1]
def stopped(signum, frame):
    open(out, "w").write(f"{sent} {time.perf_counter()}")
    sys.exit(0)
signal.signal(signal.SIGTERM, stopped)
sent = time.perf_counter()
print("sweep: step=1 loss=1.0", flush=True)
time.sleep(30)
"""


class PruneAll(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def study_in(folder: Path, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(folder / "sweep.journal")))
    return optuna.create_study(storage=storage, direction="minimize", pruner=pruner)


def trial_of(study: optuna.Study, folder: Path) -> Trial:
    return Trial(study.ask(), TrialRun(), sweep="bench", metric="loss", space={"x": FloatRange(0.0, 1.0)},
                 fixed={}, run_id=lambda: None, workdirs=folder / "sweeps" / "bench")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def overhead(trials: int, folder: Path) -> list[str]:
    script = folder / "toy.py"
    script.write_text(TOY, encoding="utf-8")
    study = study_in(folder, optuna.pruners.MedianPruner(n_startup_trials=1000))
    trainer = CommandTrainer(CommandSpec((sys.executable, str(script), "{x}")), "loss", "unused")
    direct, as_trial = [], []
    for _ in range(trials):  # interleaved: a machine busy with something else slows both alike
        clock = time.perf_counter()
        subprocess.run([sys.executable, str(script), "0.5"], stdout=subprocess.DEVNULL, check=True)
        direct.append(time.perf_counter() - clock)
        trial = trial_of(study, folder)
        clock = time.perf_counter()
        outcome = trainer.run(trial)
        as_trial.append(time.perf_counter() - clock)
        study.tell(trial.number, outcome.value)
    extra = (statistics.median(as_trial) - statistics.median(direct)) * 1000
    return [f"command trainer: the toy script run directly: median {statistics.median(direct) * 1000:.1f} ms "
            f"(the interpreter's start-up and the script), as a trial: median "
            f"{statistics.median(as_trial) * 1000:.1f} ms, {trials} each",
            f"command trainer: overhead per trial beyond the interpreter's start-up: {extra:.1f} ms "
            f"(target <= 30 ms)"]


def prune_latency(trials: int, folder: Path) -> list[str]:
    script = folder / "pruned.py"
    script.write_text(PRUNED, encoding="utf-8")
    study = study_in(folder, PruneAll())
    latencies = []
    trainer = CommandTrainer(CommandSpec((sys.executable, str(script), "{workdir}/times", "{x}")), "loss", "unused")
    for _ in range(trials):
        trial = trial_of(study, folder)
        with contextlib.suppress(TrialPruned):
            trainer.run(trial)
        sent, stopped = map(float, (trial.workdir / "times").read_text().split())
        latencies.append((stopped - sent) * 1000)
        study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
    decisions = [seconds * 1000 for seconds in trainer.decision_seconds]
    return [f"command trainer: report line -> SIGTERM in the script (prune decided): median "
            f"{statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms over {trials} "
            f"pruned trials (target <= 50 ms)",
            f"command trainer: line read -> pruner's answer: median {statistics.median(decisions):.2f} ms, "
            f"p95 {percentile(decisions, 0.95):.2f} ms"]


def command_contender(trials: int) -> list[str]:
    """Both measurements in a fresh temporary folder; the printed lines."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-command-") as root:
        folder = Path(root)
        return overhead(trials, folder) + prune_latency(trials, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    for line in command_contender(parser.parse_args().trials):
        print(line)


if __name__ == "__main__":
    main()
