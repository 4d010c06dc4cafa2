"""warm_start: {sweep: NAME} in-process on a real journal and MLflow store: the new sweep's sampler starts from the
earlier sweep's finished trials (its first proposals differ from the same sweep's without them), yet none of
them is the new sweep's (its count, its runs, `sweep ls`); the parent run names the source; a source that is
missing, of another objective or with no trial inside the new space is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mlflow_db")]

FIT = "def fit(trial):\n    return (trial.params['x'] - 0.8) ** 2\n"
EARLIER = 12  # above TPE's 10 startup trials: with them, TPE models from the new sweep's first trial


def write(folder: Path, name: str, body: str, *, low: float = 0.0, direction: str = "minimize") -> str:
    (folder / "fit.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(folder, f"trainer: {{function: fit.py:fit}}\nobjective: {{direction: {direction}}}\n"
                             f"pruner: {{name: none}}\nspace:\n  x: {{type: float, low: {low}, high: 1.0}}\n" + body,
                     name=f"{name}.yaml")
    return f"{name}.yaml"


def run(folder: Path, config: str, name: str, *flags: str) -> inprocess.Result:
    return inprocess.sweep(folder, "run", "--config", config, "--name", name, *flags)


def first_settings(folder: Path, name: str) -> list[float]:
    return [t.params["x"] for t in sorted(e2e.study(folder, name).trials, key=lambda t: t.number)]


def test_warm_start_changes_the_first_proposals_and_keeps_the_earlier_trials_out_of_the_new_sweep(tmp_path: Path):
    earlier = write(tmp_path, "earlier", f"trials: {EARLIER}\nsampler: {{name: random, seed: 1}}\n")
    assert run(tmp_path, earlier, "earlier").returncode == 0
    inside = sum(x >= 0.1 for x in first_settings(tmp_path, "earlier"))
    assert 10 <= inside < EARLIER, "the narrowed space below leaves some of the earlier trials out, not too many"

    cold = write(tmp_path, "cold", "trials: 3\nsampler: {name: tpe, seed: 0}\n", low=0.1)
    warm = write(tmp_path, "warm", "trials: 3\nsampler: {name: tpe, seed: 0}\nwarm_start: {sweep: earlier}\n", low=0.1)
    assert run(tmp_path, cold, "cold").returncode == 0
    result = run(tmp_path, warm, "warm")
    assert result.returncode == 0, result.stderr
    assert first_settings(tmp_path, "warm")[0] != first_settings(tmp_path, "cold")[0]
    assert "sweep warm finished: 3 trials" in result.stdout, result.stdout

    client = e2e.mlflow_client(tmp_path)
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("sweep").experiment_id])
                  if r.info.run_name == "warm")
    assert parent.data.tags["sweep.warm_start"] == "earlier"
    assert parent.data.tags["sweep.warm_start_trials"] == str(inside)
    assert parent.data.tags["sweep.warm_start_skipped"] == str(EARLIER - inside)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3
    assert " 3/3 " in next(line for line in inprocess.sweep(tmp_path, "ls").stdout.splitlines() if "warm" in line)

    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "warm", "--trials", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert len(e2e.study(tmp_path, "warm").trials) == 5
    assert len(e2e.study(tmp_path, "earlier").trials) == EARLIER, "the earlier sweep is only read"


def test_a_warm_start_that_cannot_help_is_refused_before_anything_is_written(tmp_path: Path):
    earlier = write(tmp_path, "earlier", "trials: 2\nsampler: {name: random, seed: 1}\n")
    assert run(tmp_path, earlier, "earlier").returncode == 0
    refused = {
        "missing": (write(tmp_path, "missing", "warm_start: {sweep: nowhere}\n"),
                    "warm_start.sweep: no sweep named 'nowhere'"),
        "outside": (write(tmp_path, "outside", "warm_start: {sweep: earlier}\n", low=0.999999), "fits this space"),
        "objective": (write(tmp_path, "objective", "warm_start: {sweep: earlier}\n", direction="maximize"),
                      "'earlier' minimizes 'value' and this sweep maximizes 'value'"),
    }
    for name, (config, message) in refused.items():
        result = run(tmp_path, config, name)
        assert result.returncode == 2 and message in result.stderr, (name, result.stderr)
    listed = inprocess.sweep(tmp_path, "ls").stdout
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["earlier"], listed
    _, runs = e2e.runs(tmp_path, experiment="sweep")
    assert len(runs) == 2, "no parent run beyond the earlier sweep's"
