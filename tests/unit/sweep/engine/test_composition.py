"""sweep/engine/composition.py: how a config's trainer publishes its best model, said without making the trainer."""

from __future__ import annotations

import pytest

from sweep.config import config_from_yaml
from sweep.engine.composition import model_publishing
from sweep.records import TRIAL_LOGGED_MODEL
from sweep.trainers.command import CommandTrainer
from sweep.trainers.function import FunctionTrainer
from sweep.trainers.sentiment import SentimentTrainer

USER_OBJECTIVE = "objective: {metric: f1, direction: maximize}\n"


@pytest.mark.parametrize(("text", "trainer"), [
    ("trials: 1\n", SentimentTrainer),
    ("trainer: {function: my_module:fit}\n" + USER_OBJECTIVE, FunctionTrainer),
    ("trainer: {command: python train.py}\n" + USER_OBJECTIVE, CommandTrainer),
])
def test_a_configs_model_publishing_is_its_trainers_own(text, trainer):
    assert model_publishing(config_from_yaml(text)) == trainer.model_publishing()


def test_a_user_trainers_best_model_is_the_one_its_best_trial_logged():
    for trainer in (FunctionTrainer, CommandTrainer):
        publishing = trainer.model_publishing()
        assert publishing == TRIAL_LOGGED_MODEL and publishing.pyfunc is None
        assert publishing.shown_as == "best model"  # what `sweep sync` says it published
