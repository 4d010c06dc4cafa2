"""KeySharingDicts: dicts equal to plain ones in every way but their memory."""

from __future__ import annotations

import copy
import json
import pickle
import sys

import pytest

from sweep.study import key_sharing
from sweep.study.key_sharing import KeySharingDicts

METRICS = {"train_loss": 0.5, "val_accuracy": 0.75, "model_bytes": 880.0, "val/loss": 0.25, "__class__": 1.0}

shares_keys = pytest.mark.skipif(sys.implementation.name != "cpython" or sys.version_info < (3, 11),
                                 reason="key-sharing dicts sized as CPython >= 3.11 sizes them")


def made(count: int, source: dict) -> list[dict]:
    maker = KeySharingDicts()
    return [maker.like({**source, "train_loss": float(number)}) for number in range(count)]


def test_a_dict_made_equals_its_source_in_value_order_and_type():
    for found in made(50, METRICS):
        assert type(found) is dict
        assert list(found.items()) == list({**METRICS, "train_loss": found["train_loss"]}.items())
        assert repr(found).startswith("{'train_loss'")
    last = made(50, METRICS)[-1]
    copies = (copy.copy(last), copy.deepcopy(last), pickle.loads(pickle.dumps(last)), json.loads(json.dumps(last)))
    for copied in copies:
        assert copied == last and list(copied) == list(last)


def test_changing_a_dict_made_changes_no_other():
    first, second, *_ = made(40, METRICS)
    first["train_loss"] = -1.0
    first["new"] = 2.0
    del first["val/loss"]
    assert second == {**METRICS, "train_loss": 1.0}
    assert first == {"train_loss": -1.0, "val_accuracy": 0.75, "model_bytes": 880.0, "__class__": 1.0, "new": 2.0}


def test_keys_in_another_order_or_not_text_make_equal_dicts():
    maker = KeySharingDicts()
    maker.like({"a": 1, "b": 2})
    assert list(maker.like({"b": 3, "a": 4}).items()) == [("b", 3), ("a", 4)]
    assert maker.like({1: "one", 1.5: "x", None: 0}) == {1: "one", 1.5: "x", None: 0}
    assert maker.like({}) == {}


def test_past_the_limit_of_key_sets_a_dict_is_a_plain_copy(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(key_sharing, "KEY_SETS_LIMIT", 2)
    maker = KeySharingDicts()
    for keys in ("a", "b", "c", "d"):
        source = {keys: 1}
        assert maker.like(source) == source and maker.like(source) is not source


@shares_keys
def test_dicts_of_the_same_keys_take_less_memory_than_plain_ones():
    last = made(100, METRICS)[-1]
    # the shared table is not the dict's own: sys.getsizeof counts only the values it holds
    assert sys.getsizeof(last) < sys.getsizeof(dict(last)) * 0.7
