"""bench/startup.py --quick runs end to end and prints every figure (no asserts on the figures: they are printed)."""

from tests.e2e.bench.quick_run import assert_figures, quick_output

S = r"\d+\.\d+ s"
FIGURES = [
    rf"^  run 1: first line {S}, exit {S}; ui URL {S}, stopped {S} after Ctrl-C$",
    rf"^  run first line: median {S} .*\(target <= 1 s\)$",
    rf"^  ui URL: median {S} .*\(target <= 5 s\)$",
    r"^at the end: load average",
]


def test_bench_quick_prints_every_figure(tmp_path):
    assert_figures(quick_output("startup.py", tmp_path), FIGURES)
