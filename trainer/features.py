"""Sparse binary document-term features and the two products gradient descent needs.

A document is the set of its in-vocabulary tokens (presence, not counts). Both products are segment
sums over contiguous index runs (``np.add.reduceat``), the same memory walk a CSR mat-vec does, so
there is never a dense documents x vocabulary matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseBinary:
    """An n_rows x n_cols 0/1 matrix kept twice: by row (for X.w) and by column (for X^T.g)."""

    n_rows: int
    n_cols: int
    row_starts: np.ndarray  # start offset of each non-empty row in col_ids
    row_nonempty: np.ndarray  # which rows have at least one entry
    col_ids: np.ndarray  # column of every entry, grouped by row
    col_starts: np.ndarray  # same three, grouped by column
    col_nonempty: np.ndarray
    row_ids: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[np.ndarray], n_cols: int) -> SparseBinary:
        """Build from one array of unique column ids per row."""
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        # intp (not int32) indices: numpy converts any other index type on every gather
        col_ids = np.concatenate(rows).astype(np.intp) if len(rows) else np.zeros(0, np.intp)
        row_ids = np.repeat(np.arange(len(rows), dtype=np.intp), lengths)
        by_col = np.argsort(col_ids, kind="stable")  # stable: deterministic order inside a column
        row_start, row_nonempty = _segments(lengths)
        col_start, col_nonempty = _segments(np.bincount(col_ids, minlength=n_cols))
        return cls(len(rows), n_cols, row_start, row_nonempty, col_ids,
                   col_start, col_nonempty, row_ids[by_col])

    @property
    def nnz(self) -> int:
        return int(self.col_ids.size)

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """X . weights  -> one value per row."""
        return _segment_sum(np.take(weights, self.col_ids), self.row_starts, self.row_nonempty, self.n_rows)

    def t_dot(self, values: np.ndarray) -> np.ndarray:
        """X^T . values -> one value per column."""
        return _segment_sum(np.take(values, self.row_ids), self.col_starts, self.col_nonempty, self.n_cols)


def _segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of the non-empty segments, and their indices.

    reduceat returns the element at a start, not 0, for an empty segment: skipping empty segments
    keeps every remaining segment's range exact.
    """
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else np.zeros(0, np.int64)
    nonempty = np.flatnonzero(lengths > 0)
    return starts[nonempty], nonempty


def _segment_sum(values: np.ndarray, starts: np.ndarray, nonempty: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float64)
    if starts.size:
        out[nonempty] = np.add.reduceat(values, starts)
    return out


def featurize(docs: Sequence[Sequence[str]], index: Mapping[str, int]) -> SparseBinary:
    """Map token lists to unique in-vocabulary column ids; unknown tokens are dropped."""
    rows = []
    for doc in docs:
        ids = {index[token] for token in doc if token in index}
        rows.append(np.fromiter(sorted(ids), dtype=np.int32, count=len(ids)))
    return SparseBinary.from_rows(rows, len(index))
