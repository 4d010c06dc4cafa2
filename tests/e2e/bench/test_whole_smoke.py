"""bench/whole.py --quick runs end to end and prints every figure (no asserts on the figures: they are printed)."""

from tests.e2e.bench.quick_run import assert_figures, quick_output

S = r"\d+\.\d+ s"
FIGURES = [
    rf"^  sweep       pair 1: wall +{S}  CPU +{S}  sweep \S+ finished: 6 trials",
    rf"^  handwritten pair 1: wall +{S}  CPU +{S}  best val_accuracy \d\.\d+ in trial \d+ \(\d+\.\ds training\)$",
    rf"^  median wall: sweep {S}, hand-written {S} -> \d+\.\d+x \(target <= 0.9x",
    rf"^  median CPU:  sweep {S}, hand-written {S} -> \d+\.\d+x \(target <= 1.1x\)$",
    r"^at the end: load average",
]


def test_bench_quick_prints_every_figure(tmp_path):
    assert_figures(quick_output("whole.py", tmp_path), FIGURES)
