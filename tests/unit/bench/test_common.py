"""bench.common: a timing wrapper whose target left sweep/ fails loudly with its name, never prints "n/a"."""

from __future__ import annotations

import sys
import types

import pytest

import bench.common
import bench.coordination
import bench.function_trainer
import bench.load
from bench.common import MissingTarget, replaced, resolve, timed_calls, trainer_calls


@pytest.mark.parametrize(("target", "missing"), [
    ("sweep.no_such_module:run", "sweep.no_such_module"),
    ("sweep.engine.run:NoSuchClass.method", "NoSuchClass"),
    ("sweep.engine.run:no_such_function", "no_such_function"),
])
def test_a_target_that_left_sweep_raises_missing_target_naming_it(target, missing):
    with pytest.raises(MissingTarget, match=missing) as raised:
        resolve(target)
    assert target in str(raised.value)


def test_a_missing_target_fails_before_the_block_runs():
    ran = []
    with pytest.raises(MissingTarget), timed_calls("sweep.engine.run:renamed_take_census"):
        ran.append(True)
    assert ran == []


def test_every_target_the_benches_time_exists_in_sweep():
    targets = [bench.common.TRAINER_CALL, bench.function_trainer.TRAIN_CALL, bench.function_trainer.FIT,
               bench.load.SAMPLER_FACTORY, bench.load.PLOTS,
               *(target for target, _meaning in bench.load.PARTS.values()),
               *(target for target, _meaning in bench.coordination.PARTS.values())]
    for target in targets:
        assert callable(resolve(target)[2]), target


def test_the_function_contender_is_a_config_sweep_loads_and_a_function_it_imports(tmp_path):
    from sweep.config import load_config
    from sweep.trainers.function import load_function

    path = bench.common.sweep_yaml(5, tmp_path, trainer={"function": bench.function_trainer.FIT, "mlflow": "off"})
    config = load_config(path)
    assert config.trainer.function == bench.function_trainer.FIT and config.metric == bench.common.METRIC
    assert load_function(config.trainer) is bench.function_trainer.fit


def test_timed_calls_counts_each_call_and_puts_the_original_back(monkeypatch):
    module = types.ModuleType("bench_target_for_test")
    module.double = lambda value: 2 * value
    original = module.double
    monkeypatch.setitem(sys.modules, "bench_target_for_test", module)
    with timed_calls("bench_target_for_test:double") as calls:
        assert module.double(4) == 8 and module.double(5) == 10
    assert len(calls) == 2 and all(seconds >= 0 for _end, seconds in calls)
    assert module.double is original


def test_replaced_restores_the_original_when_the_block_fails():
    import sweep.trainers.sentiment

    original = sweep.trainers.sentiment.train
    with pytest.raises(RuntimeError), replaced("sweep.trainers.sentiment:train", lambda train: None):
        assert sweep.trainers.sentiment.train is None
        raise RuntimeError("boom")
    assert sweep.trainers.sentiment.train is original


def test_trainer_calls_times_every_train_call_of_the_built_in_trainer():
    import sweep.trainers.sentiment
    from trainer import TrainConfig, load_corpus, split

    data = split(load_corpus(), 0)
    with trainer_calls() as seconds:
        sweep.trainers.sentiment.train(TrainConfig(epochs=1, vocab_size=50), data)
    assert len(seconds) == 1
