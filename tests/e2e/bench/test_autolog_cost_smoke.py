"""bench/autolog_cost.py --quick runs end to end and prints every figure (no asserts on the figures: they are
printed)."""

import pytest

from tests.e2e.bench.quick_run import assert_figures, quick_output

S = r"\d+\.\d+ s"
FIGURES = [
    r"^machine: \d+ CPUs; at the start: load average",
    rf"^\[off\] 3 trials: median trial {S} \(trials 2-3\); first trial {S}; `sweep run` wall {S}$",
    rf"^\[autolog, log_models: false\] 3 trials: median trial {S} \(trials 2-3\), of which inside MLflow {S}; ",
    rf"^\[autolog\] 3 trials: median trial {S} \(trials 2-3\), of which inside MLflow {S}; ",
    r"^\[autolog\] median trial / off: \d+\.\dx$",
    # the sweep's own summary line, with the hint only where a model is autologged in every trial
    r"^\[autolog, log_models: false\] summary: MLflow logging inside fit: \d+\.\ds of \d+\.\ds trial time \(\d+%\)$",
    r"^\[autolog\] summary: MLflow logging inside fit: .*`mlflow: \{autolog: \{log_models: false\}\}` skips",
    r"^at the end: load average",
]


@pytest.mark.slow
def test_bench_quick_prints_every_figure(tmp_path):
    pytest.importorskip("sklearn")
    assert_figures(quick_output("autolog_cost.py", tmp_path), FIGURES)
