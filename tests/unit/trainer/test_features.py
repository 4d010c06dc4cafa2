"""SparseBinary: the two products gradient descent needs, against a dense numpy matrix."""

import numpy as np
import pytest

from trainer.features import SparseBinary, featurize


def _dense_and_sparse(dense: np.ndarray) -> tuple[np.ndarray, SparseBinary]:
    rows = [np.flatnonzero(row).astype(np.int32) for row in dense]
    return dense.astype(np.float64), SparseBinary.from_rows(rows, dense.shape[1])


def _random_binary(rng: np.random.Generator, n_rows: int, n_cols: int, density: float) -> np.ndarray:
    dense = (rng.random((n_rows, n_cols)) < density).astype(np.int8)
    dense[::5] = 0  # empty rows: the first, and every fifth
    dense[:, ::7] = 0  # empty columns: the first, and every seventh
    dense[:, -1] = 0  # and the last one (a trailing empty segment)
    dense[-1] = 0
    return dense


@pytest.mark.parametrize(("n_rows", "n_cols", "density"), [(40, 30, 0.2), (200, 50, 0.05), (7, 300, 0.5)])
def test_dot_and_t_dot_equal_the_dense_products_with_empty_rows_and_columns(n_rows, n_cols, density):
    rng = np.random.default_rng(n_rows * n_cols)
    dense, sparse = _dense_and_sparse(_random_binary(rng, n_rows, n_cols, density))
    assert sparse.nnz == int(dense.sum())
    weights, values = rng.normal(size=n_cols), rng.normal(size=n_rows)
    np.testing.assert_allclose(sparse.dot(weights), dense @ weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sparse.t_dot(values), dense.T @ values, rtol=1e-12, atol=1e-12)
    assert not sparse.dot(weights)[::5].any(), "an empty row must give exactly 0"
    assert not sparse.t_dot(values)[::7].any(), "an empty column must give exactly 0"


def test_products_of_an_all_empty_matrix_are_zero():
    sparse = SparseBinary.from_rows([np.zeros(0, np.int32)] * 4, 3)
    assert sparse.nnz == 0
    np.testing.assert_array_equal(sparse.dot(np.ones(3)), np.zeros(4))
    np.testing.assert_array_equal(sparse.t_dot(np.ones(4)), np.zeros(3))


def test_products_of_a_matrix_without_rows_or_columns_have_the_right_shape():
    no_rows = SparseBinary.from_rows([], 3)
    assert no_rows.dot(np.ones(3)).shape == (0,)
    np.testing.assert_array_equal(no_rows.t_dot(np.ones(0)), np.zeros(3))
    no_cols = SparseBinary.from_rows([np.zeros(0, np.int32)] * 2, 0)
    np.testing.assert_array_equal(no_cols.dot(np.ones(0)), np.zeros(2))
    assert no_cols.t_dot(np.ones(2)).shape == (0,)


def test_featurize_keeps_known_tokens_once_and_drops_unknown_ones():
    index = {"good": 0, "bad": 1, "film": 2}
    sparse = featurize([["good", "good", "film", "unknown"], [], ["nothing", "known"], ["bad"]], index)
    dense = np.array([[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 0]], dtype=np.float64)
    assert (sparse.n_rows, sparse.n_cols, sparse.nnz) == (4, 3, 3)
    for column in range(3):
        unit = np.eye(3)[column]
        np.testing.assert_array_equal(sparse.dot(unit), dense[:, column])
    np.testing.assert_array_equal(sparse.t_dot(np.array([1.0, 10.0, 100.0, 1000.0])), [1.0, 1000.0, 1.0])
