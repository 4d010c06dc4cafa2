"""The gradient-descent loop: the gradient itself, determinism, divergence, the per-epoch callback."""

import itertools
import warnings

import numpy as np
import pytest

from trainer import DivergenceError, TrainConfig, TrainerError, TrainResult, train
from trainer.data import Split, load_corpus, split
from trainer.features import SparseBinary, featurize
from trainer.model import sigmoid
from trainer.train import DIVERGED_LOSS, _log_loss

# -- the gradient ---------------------------------------------------------------------------------


def _objective(features: SparseBinary, labels: np.ndarray, l2: float, weights: np.ndarray, bias: float) -> float:
    """Mean log-loss + l2/2 * |w|^2: what one gradient-descent step must go down."""
    return _log_loss(features.dot(weights) + bias, labels) + l2 / 2 * float(weights @ weights)


def _finite_difference_gradient(features, labels, l2, weights, bias, eps=1e-6):
    grad_w = np.zeros_like(weights)
    for j in range(weights.size):
        step = np.zeros_like(weights)
        step[j] = eps
        grad_w[j] = (_objective(features, labels, l2, weights + step, bias)
                     - _objective(features, labels, l2, weights - step, bias)) / (2 * eps)
    grad_b = (_objective(features, labels, l2, weights, bias + eps)
              - _objective(features, labels, l2, weights, bias - eps)) / (2 * eps)
    return grad_w, grad_b


def _dense(features: SparseBinary) -> np.ndarray:
    return np.column_stack([features.dot(np.eye(features.n_cols)[j]) for j in range(features.n_cols)])


def _analytic_gradient(dense, labels, l2, weights, bias):
    residual = (sigmoid(dense @ weights + bias) - labels) / labels.size
    return dense.T @ residual + l2 * weights, float(residual.sum())


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_each_step_moves_the_weights_by_minus_lr_times_the_gradient(tiny_split: Split, l2: float):
    lr = 0.7
    before = train(TrainConfig(lr=lr, epochs=1, l2=l2), tiny_split).model  # one step from zero weights
    after = train(TrainConfig(lr=lr, epochs=2, l2=l2), tiny_split).model  # ... and one more from there
    index = {token: i for i, token in enumerate(before.vocabulary)}
    features = featurize(tiny_split.tokens(1)[0], index)
    labels = tiny_split.train.labels.astype(np.float64)
    dense = _dense(features)
    assert not dense[-1].any(), "the tiny split's last document has no vocabulary word (an empty row)"

    for start_w, start_b, end in ((np.zeros(len(index)), 0.0, before), (before.weights, before.bias, after)):
        grad_w, grad_b = _analytic_gradient(dense, labels, l2, start_w, start_b)
        np.testing.assert_allclose(end.weights - start_w, -lr * grad_w, rtol=1e-12, atol=1e-15)
        assert end.bias - start_b == pytest.approx(-lr * grad_b, rel=1e-12, abs=1e-15)
        fd_w, fd_b = _finite_difference_gradient(features, labels, l2, start_w, start_b)
        np.testing.assert_allclose(grad_w, fd_w, rtol=1e-6, atol=1e-9)
        assert grad_b == pytest.approx(fd_b, rel=1e-6, abs=1e-9)
    assert np.abs(before.weights).max() > 0, "the first step must move the weights"


def test_gradient_descent_lowers_the_training_loss(tiny_split: Split):
    losses = []
    train(TrainConfig(lr=0.5, epochs=30), tiny_split, lambda epoch, m: losses.append(m["train_loss"]))
    assert losses[0] < np.log(2)  # below the zero-weight loss, where every probability is 1/2
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))


def test_train_result_reports_sizes_vocab_and_final_metrics(synthetic_split: Split):
    result = train(TrainConfig(lr=0.5, epochs=50), synthetic_split)
    assert isinstance(result, TrainResult)
    assert result.sizes == {"n_train": 42, "n_val": 8, "n_test": 10}
    assert result.epochs == 50
    assert result.seconds > 0
    assert set(result.metrics) == {f"{part}_{kind}" for part in ("train", "val", "test")
                                   for kind in ("loss", "accuracy")}
    assert result.metrics["train_accuracy"] == 1.0
    assert result.model.metadata["metrics"] == result.metrics
    assert result.model.metadata["config"] == TrainConfig(lr=0.5, epochs=50).to_dict()


# -- determinism ----------------------------------------------------------------------------------


def test_same_config_and_data_give_bit_identical_weights_and_metrics(synthetic_csv):
    config = TrainConfig(lr=0.8, epochs=40, vocab_size=25, l2=1e-3, ngrams=2, seed=3)
    first = train(config, split(load_corpus(synthetic_csv), seed=config.seed))
    second = train(config, split(load_corpus(synthetic_csv), seed=config.seed))  # fresh split, fresh memo
    assert np.array_equal(first.model.weights, second.model.weights)
    assert first.model.bias == second.model.bias
    assert first.model.vocabulary == second.model.vocabulary
    assert first.metrics == second.metrics


def test_training_twice_on_one_split_gives_identical_models(synthetic_split: Split):
    config = TrainConfig(lr=0.8, epochs=40)
    assert train(config, synthetic_split).model.to_json() == train(config, synthetic_split).model.to_json()


# -- divergence -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [1e6, 1e300])
@pytest.mark.parametrize("epochs", [1, 2, 50])
def test_huge_learning_rate_raises_divergence_error_not_nan_weights(bundled_split: Split, lr: float, epochs: int):
    seen = []
    with warnings.catch_warnings(), pytest.raises(DivergenceError, match=r"lower --lr") as caught:
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to the error is expected
        train(TrainConfig(lr=lr, epochs=epochs), bundled_split, lambda epoch, m: seen.append(m))
    assert caught.value.lr == lr
    assert 1 <= caught.value.epoch <= epochs
    assert all(np.isfinite(list(m.values())).all() and m["train_loss"] <= DIVERGED_LOSS for m in seen)


def test_overshooting_on_the_last_step_raises_instead_of_returning_useless_weights(bundled_split: Split):
    # the loss is checked before each step; the final metrics must get the same check, or a run whose
    # last step explodes returns finite weights with a training loss in the thousands
    with pytest.raises(DivergenceError) as caught:
        train(TrainConfig(lr=1e6, epochs=1), bundled_split)
    assert caught.value.epoch == 1


def test_divergence_error_is_a_trainer_error_and_an_arithmetic_error(tiny_split: Split):
    with pytest.raises(DivergenceError) as caught:
        train(TrainConfig(lr=1e6, epochs=5), tiny_split)
    assert isinstance(caught.value, TrainerError)
    assert isinstance(caught.value, ArithmeticError)
    assert str(caught.value) == "training diverged at epoch 2: the loss exploded with lr=1e+06; lower --lr"


# -- the on_epoch callback ------------------------------------------------------------------------


def test_on_epoch_is_called_every_epoch_with_losses_and_accuracy(tiny_split: Split):
    calls = []
    train(TrainConfig(lr=0.5, epochs=5), tiny_split, lambda epoch, metrics: calls.append((epoch, dict(metrics))))
    assert [epoch for epoch, _ in calls] == [1, 2, 3, 4, 5]
    for _, metrics in calls:
        assert set(metrics) == {"train_loss", "val_loss", "val_accuracy"}
        assert all(isinstance(value, float) and np.isfinite(value) for value in metrics.values())
        assert 0.0 <= metrics["val_accuracy"] <= 1.0


def test_on_epoch_respects_eval_every_and_always_reports_the_last_epoch(tiny_split: Split):
    epochs = []
    train(TrainConfig(epochs=10), tiny_split, lambda epoch, metrics: epochs.append(epoch), eval_every=3)
    assert epochs == [3, 6, 9, 10]
    epochs.clear()
    train(TrainConfig(epochs=9), tiny_split, lambda epoch, metrics: epochs.append(epoch), eval_every=3)
    assert epochs == [3, 6, 9]


def test_on_epoch_sees_only_the_eval_epochs_and_the_last_with_the_same_metrics(tiny_split: Split):
    every: dict[int, dict[str, float]] = {}
    train(TrainConfig(lr=0.5, epochs=12), tiny_split, lambda epoch, metrics: every.update({epoch: dict(metrics)}))
    chosen: dict[int, dict[str, float]] = {}
    result = train(TrainConfig(lr=0.5, epochs=12), tiny_split,
                   lambda epoch, metrics: chosen.update({epoch: dict(metrics)}), eval_epochs={1, 4, 5})
    assert list(chosen) == [1, 4, 5, 12]
    assert chosen == {epoch: every[epoch] for epoch in chosen}  # skipping validation changes no step
    assert result.metrics["val_loss"] == every[12]["val_loss"]


def test_last_reported_metrics_match_the_final_model(synthetic_split: Split):
    last = {}
    result = train(TrainConfig(epochs=20), synthetic_split, lambda epoch, metrics: last.update(metrics))
    assert last == {name: result.metrics[name] for name in ("train_loss", "val_loss", "val_accuracy")}


def test_reported_train_loss_is_measured_after_the_epochs_step(tiny_split: Split):
    # the loss of the weights this epoch produced, like val_loss, not of the weights it started from
    reported = {}
    train(TrainConfig(epochs=5), tiny_split, lambda epoch, metrics: reported.update({epoch: metrics["train_loss"]}))
    for epochs in (1, 3, 5):
        assert reported[epochs] == train(TrainConfig(epochs=epochs), tiny_split).metrics["train_loss"]
    assert reported[1] < np.log(2)


def test_exception_in_on_epoch_stops_training_and_propagates(tiny_split: Split):
    class Pruned(Exception):
        pass

    epochs = []

    def stop_at_three(epoch, metrics):
        epochs.append(epoch)
        if epoch == 3:
            raise Pruned(f"pruned at {epoch}")

    with pytest.raises(Pruned, match="pruned at 3"):
        train(TrainConfig(epochs=100), tiny_split, stop_at_three)
    assert epochs == [1, 2, 3]


def test_callback_does_not_change_the_result(synthetic_split: Split):
    config = TrainConfig(epochs=30)
    quiet = train(config, synthetic_split)
    watched = train(config, synthetic_split, lambda epoch, metrics: None)
    assert np.array_equal(quiet.model.weights, watched.model.weights)
    assert quiet.metrics == watched.metrics
