"""Sweeps of several objectives driven in-process on a real journal and MLflow database: the Pareto front on the
parent run and in `sweep best` / `sweep show`, constraints, and pruning on several curves, for the function, command
and built-in trainers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep.ranking import pareto_front, signed
from tests.support import e2e, inprocess

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mlflow_db")]  # whole sweeps on real stores

# optuna-examples' quadratic_constraint.py (its ranges narrowed, so that a few trials find feasible points): two
# objectives returned as a tuple, a constraint kept as a user attribute for Optuna's constraints function
OPTUNA_OBJECTIVE = '''
def objective(trial):
    x = trial.suggest_float("x", 0, 10)
    y = trial.suggest_float("y", -5, 5)
    c0 = (x - 5) ** 2 + y ** 2 - 25
    c1 = -((x - 8) ** 2) - (y + 3) ** 2 + 7.7
    trial.set_user_attr("constraint", (c0, c1))
    v0 = 4 * x ** 2 + 4 * y ** 2
    v1 = (x - 5) ** 2 + (y - 5) ** 2
    return v0, v1


def constraints(trial):
    return trial.user_attrs["constraint"]
'''


def non_dominated(children: list, objectives: list[tuple[str, str]]) -> list[int]:
    """The front computed from the child runs alone: feasible finished runs that no other dominates, by number."""
    points = [(int(run.data.tags["sweep.trial"]),
               [signed(run.data.metrics[metric], direction) for metric, direction in objectives])
              for run in children if run.info.status == "FINISHED" and run.data.tags.get("feasible", "true") == "true"]
    return sorted(pareto_front(points))


def test_an_unchanged_optuna_objective_of_two_values_and_its_constraints_give_the_parent_its_front(tmp_path: Path):
    (tmp_path / "quadratic.py").write_text(OPTUNA_OBJECTIVE, encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: quadratic.py:objective}\n"
                               "objective: [{direction: minimize}, {direction: minimize}]\n"
                               "constraints: {function: quadratic.py:constraints}\n"
                               "sampler: {name: random, seed: 3}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "quad", "--trials", "24")
    assert result.returncode == 0, result.stderr
    assert "Pareto front: " in result.stdout

    parent, children = e2e.runs(tmp_path, experiment="sweep")
    objectives = [("values_0", "minimize"), ("values_1", "minimize")]
    front = non_dominated(children, objectives)
    assert front and sorted(map(int, parent.data.tags["front.trials"].split(","))) == front
    study = e2e.study(tmp_path, "quad")
    for trial, child in zip(study.trials, children, strict=True):  # feasible on each run, as Optuna judged it
        feasible = all(value <= 0 for value in trial.constraints.values())
        assert child.data.tags["feasible"] == str(feasible).lower()
        assert [child.data.metrics["values_0"], child.data.metrics["values_1"]] == trial.values
    assert any(child.data.tags["feasible"] == "false" for child in children)  # the constraints bit

    pareto = json.loads(e2e.artifact_bytes(tmp_path, parent.info.run_id, "pareto.json"))
    shown = json.loads(inprocess.sweep(tmp_path, "best", "--format", "json").stdout)
    assert [member["trial"] for member in pareto["front"]] == [member["trial"] for member in shown["front"]]
    assert sorted(member["trial"] for member in shown["front"]) == front
    by_trial = {member["trial"]: member for member in shown["front"]}
    for child in children:
        number = int(child.data.tags["sweep.trial"])
        if number in by_trial:
            assert by_trial[number]["run_id"] == child.info.run_id
            assert by_trial[number]["values"] == {"values_0": child.data.metrics["values_0"],
                                                   "values_1": child.data.metrics["values_1"]}
    assert "pareto_front.svg" in e2e.artifact_names(tmp_path, parent.info.run_id, "plots")

    # --pick: a bound on the second objective, then the best first objective among the front's trials that meet it
    limit = sorted(member["values"]["values_1"] for member in shown["front"])[len(front) // 2]
    picked = json.loads(inprocess.sweep(tmp_path, "best", "--pick", f"values_1<={limit}", "--format", "json").stdout)
    meeting = [m for m in shown["front"] if m["values"]["values_1"] <= limit]
    assert picked["trial"] == min(meeting, key=lambda m: m["values"]["values_0"])["trial"]
    title = inprocess.sweep(tmp_path, "best", "--pick", f"values_1<={limit}").stdout.splitlines()[0]
    assert title.startswith(f"best trial {picked['trial']} of sweep quad (24 trials), of the trials on its Pareto "
                            f"front meeting values_1 <= {limit:g}, by values_0 (min)")
    too_tight = inprocess.sweep(tmp_path, "best", "--pick", "values_1<=-1")
    assert too_tight.returncode == 1 and "no trial of the front's" in too_tight.stderr

    table = inprocess.sweep(tmp_path, "show", "--top", "50").stdout.splitlines()
    marked = sorted(int(line.split()[0]) for line in table[2:] if line.split()[1] == "*")
    assert marked == front


def test_a_command_reporting_both_objectives_by_name_prunes_and_fronts_on_them(tmp_path: Path):
    # a trial's curves: accuracy rises to `quality`, cost stays at `cost`; the grid tries every pair once
    (tmp_path / "train.py").write_text(
        "import sys\n"
        "quality, cost = float(sys.argv[1]), float(sys.argv[2])\n"
        "for step in range(3):\n"
        "    print(f'sweep: step={step} accuracy={quality * (step + 1) / 3} cost={cost}', flush=True)\n"
        "print(f'sweep: accuracy={quality} cost={cost}')\n", encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {command: 'python train.py {quality} {cost}'}\n"
                               "objective: [{metric: accuracy, direction: maximize},\n"
                               "            {metric: cost, direction: minimize}]\n"
                               "sampler: {name: grid}\npruner: {name: median, startup_trials: 2}\n"
                               "space:\n  quality: {type: categorical, choices: [0.5, 0.6, 0.1, 0.9]}\n"
                               "  cost: {type: categorical, choices: [5, 9]}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "cmd", "--trials", "8")
    assert result.returncode == 0, result.stderr
    study = e2e.study(tmp_path, "cmd")
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert len(complete) + len(pruned) == 8
    assert pruned  # some trial was worse than the median on both curves
    for trial in pruned:  # only a trial worse on both can be: never the cheapest cost, nor the highest accuracy
        assert trial.params["quality"] < 0.9 and trial.params["cost"] == 9
    front = non_dominated(children, [("accuracy", "maximize"), ("cost", "minimize")])
    assert sorted(map(int, parent.data.tags["front.trials"].split(","))) == front
    best = {(t.params["quality"], t.params["cost"]) for t in complete if t.number in front}
    assert best == {(0.9, 5)}  # the grid's one undominated point


def test_the_built_in_trainer_weighs_accuracy_against_model_bytes_within_a_bound(tmp_path: Path):
    e2e.write_config(tmp_path, "objective: [{metric: val_accuracy}, {metric: model_bytes}]\n"
                               "constraints: [\"model_bytes <= 20000\"]\n"
                               "pruner: {name: median, startup_trials: 2}\nsampler: {name: tpe, seed: 1}\n"
                               "space:\n  lr: {type: float, low: 0.05, high: 5, log: true}\n"
                               "  epochs: {type: int, low: 2, high: 12}\n"
                               "  vocab_size: {type: int, low: 10, high: 4000, log: true}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "two", "--trials", "10")
    assert result.returncode == 0, result.stderr
    parent, children = e2e.runs(tmp_path)
    for child in children:
        if child.info.status == "FINISHED":
            assert child.data.metrics["model_bytes"] > 0 and child.data.metrics["train_seconds"] >= 0
            assert child.data.tags["feasible"] == str(child.data.metrics["model_bytes"] <= 20000).lower()
    front = non_dominated(children, [("val_accuracy", "maximize"), ("model_bytes", "minimize")])
    assert sorted(map(int, parent.data.tags["front.trials"].split(","))) == front
    on_front = [c for c in children if int(c.data.tags["sweep.trial"]) in front]
    assert all(c.data.metrics["model_bytes"] <= 20000 for c in on_front)
    # the parent's best (and its model) is the front member best on the first objective
    top = max(on_front, key=lambda c: (c.data.metrics["val_accuracy"], -c.data.metrics["model_bytes"]))
    assert parent.data.tags["best.trial"] == top.data.tags["sweep.trial"]
    picked = inprocess.sweep(tmp_path, "best", "--pick", "model_bytes<=1000", "--format", "yaml")
    if picked.returncode == 0:  # a trial of the front that small exists: it re-runs as a config
        assert "fixed:" in picked.stdout and "trials: 1" in picked.stdout
    else:
        assert "no trial of the front's" in picked.stderr


def test_a_fit_returning_one_value_for_two_objectives_fails_its_trials_with_the_reason(tmp_path: Path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    return 1.0\n", encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\n"
                               "objective: [{metric: a, direction: maximize}, {metric: b, direction: minimize}]\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "one", "--trials", "9")
    assert result.returncode == 1
    assert ("fit returned one float; this sweep has 2 objectives: return a tuple of 2 numbers (a, b) or a "
            "mapping holding them") in result.stderr.splitlines()[-1]


def test_a_single_objective_sweep_with_a_bound_never_calls_an_infeasible_trial_best(tmp_path: Path):
    (tmp_path / "train.py").write_text(
        "def fit(trial):\n    x = trial.suggest_float('x', 0, 10)\n    return {'score': x, 'size': 10 - x}\n",
        encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                               "constraints: [\"size >= 4\"]\nsampler: {name: random, seed: 0}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "bound", "--trials", "12")
    assert result.returncode == 0, result.stderr
    study = e2e.study(tmp_path, "bound")
    feasible = [t for t in study.trials if t.values and t.params["x"] <= 6]
    assert len(feasible) < 12
    winner = json.loads(inprocess.sweep(tmp_path, "best", "--format", "json").stdout)
    assert winner["trial"] == max(feasible, key=lambda t: t.values[0]).number
    parent, _ = e2e.runs(tmp_path, experiment="sweep")
    assert parent.data.tags["best.trial"] == str(winner["trial"])


def test_no_feasible_trial_yet_is_said_plainly(tmp_path: Path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    return {'score': 1.0, 'size': 50.0}\n", encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                               "constraints: [\"size <= 10\"]\n")
    assert inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "none", "--trials", "2").returncode == 0
    result = inprocess.sweep(tmp_path, "best")
    assert result.returncode == 1
    assert "has 2 completed trials, and none meets its constraints yet" in result.stderr
