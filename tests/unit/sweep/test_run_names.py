"""sweep/run_names.py: a child run's name from the config's run_name template, the default, and the pruned mark."""

from __future__ import annotations

from sweep.run_names import run_name
from sweep.states import TrialState


def test_without_a_template_the_name_is_trial_n_and_a_pruned_one_says_so():
    assert run_name(None, 12, {"lr": 0.5}, TrialState.COMPLETE) == "trial-12"
    assert run_name(None, 12, {"lr": 0.5}, TrialState.PRUNED) == "trial-12 (pruned)"
    assert run_name(None, 12, {"lr": 0.5}, TrialState.FAIL) == "trial-12"


def test_a_template_is_filled_with_the_trial_number_and_params_in_their_format():
    template = "{trial}-lr{lr:.2g}-ep{epochs}-{opt}"
    params = {"lr": 0.012345, "epochs": 300, "opt": "adam"}
    assert run_name(template, 7, params, TrialState.COMPLETE) == "7-lr0.012-ep300-adam"
    assert run_name(template, 7, params, TrialState.PRUNED) == "7-lr0.012-ep300-adam (pruned)"


def test_a_trial_without_a_param_the_template_names_keeps_the_default_name():
    # a define-by-run fit that failed before suggesting `x`, or a value its spec does not fit
    assert run_name("{trial}-x{x:.2f}", 3, {}, TrialState.FAIL) == "trial-3"
    assert run_name("{trial}-x{x:.2f}", 3, {"x": "linear"}, TrialState.PRUNED) == "trial-3 (pruned)"
