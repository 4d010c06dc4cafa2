"""bench/whole.py --quick runs end to end and prints every figure (no asserts on the figures: they are printed)."""

from tests.e2e.bench.quick_run import assert_figures, quick_output

S = r"\d+\.\d+ s"
FIGURES = [
    rf"^  sweep       pair 1: wall +{S}  CPU +{S}  \(last process ended at +{S}\)  sweep \S+ finished: 6 trials",
    rf"^  handwritten pair 1: wall +{S}  CPU +{S}  \(last process ended at +{S}\)  best val_accuracy \d\.\d+ in trial "
    r"\d+ \(\d+\.\ds training\)$",
    rf"^  median wall: sweep {S}, hand-written {S} -> \d+\.\d+x \(target <= 0.9x",
    rf"^  median CPU:  sweep {S}, hand-written {S} -> \d+\.\d+x \(target <= 1.1x; every process of each, sweep's "
    r"background publisher included\)$",
    rf"^  median until sweep's last process ended \(its background publisher\): {S}$",
    r"^at the end: load average",
]


def test_bench_quick_prints_every_figure(tmp_path):
    assert_figures(quick_output("whole.py", tmp_path), FIGURES)
