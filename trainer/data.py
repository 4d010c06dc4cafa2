"""Data: the bundled corpus or a user's CSV/TSV/JSONL, a tokenizer, and a deterministic stratified split."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from trainer.errors import DataError, DataFileNotFoundError

BUNDLED = "bundled"  # the name `--data` and configs use for the corpus shipped in the package
FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)  # train / validation / test
MIN_PER_CLASS_PER_SPLIT = 1  # every split needs both classes, or its accuracy means nothing

_LABELS = {
    "1": 1, "pos": 1, "positive": 1, "true": 1,
    "0": 0, "neg": 0, "negative": 0, "false": 0,
}  # fmt: skip
_TOKEN = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Corpus:
    """Texts with 0/1 labels (1 = positive). ``source`` names where they came from, for messages."""

    texts: tuple[str, ...]
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """A short content hash: the same texts and labels in the same order give the same value."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels.tolist()):
            digest.update(f"{label}\t{text}\n".encode())
        return digest.hexdigest()[:16]


@dataclass
class Split:
    """A corpus cut into train / validation / test, with tokenizations memoised per n-gram order.

    A sweep trains hundreds of models on one split: tokenizing once per ``ngrams`` value keeps a
    trial's cost to building features and running gradient descent.
    """

    train: Corpus
    val: Corpus
    test: Corpus
    _tokens: dict[int, tuple[list[list[str]], list[list[str]], list[list[str]]]] = field(
        default_factory=dict, repr=False
    )
    _ranking: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def tokens(self, ngrams: int) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
        if ngrams not in self._tokens:
            self._tokens[ngrams] = tuple(  # type: ignore[assignment]
                [tokenize(text, ngrams) for text in part.texts] for part in (self.train, self.val, self.test)
            )
        return self._tokens[ngrams]

    def ranked_vocabulary(self, ngrams: int) -> list[str]:
        """Train-split tokens by document frequency, most frequent first, ties broken alphabetically."""
        if ngrams not in self._ranking:
            counts: dict[str, int] = {}
            for doc in self.tokens(ngrams)[0]:
                for token in set(doc):
                    counts[token] = counts.get(token, 0) + 1
            self._ranking[ngrams] = sorted(counts, key=lambda token: (-counts[token], token))
        return self._ranking[ngrams]

    @property
    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.train), "n_val": len(self.val), "n_test": len(self.test)}


def tokenize(text: str, ngrams: int = 1) -> list[str]:
    """Lower-case word tokens (letters, digits, apostrophes); with ngrams=2 also "word1 word2" pairs."""
    words = _TOKEN.findall(text.lower())
    if ngrams == 1:
        return words
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def load_corpus(path: str | Path | None = None, *, text_column: str = "text",
                label_column: str = "label") -> Corpus:
    """The bundled corpus (path None or "bundled"), or a CSV/TSV/JSONL file chosen by its extension."""
    if path is None or str(path) == BUNDLED:
        raw = resources.files("trainer").joinpath("corpus/reviews.jsonl").read_bytes()
        return _parse(raw, "jsonl", "bundled corpus", text_column="text", label_column="label")
    file = Path(path)
    fmt = FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{file}: unknown data format {file.suffix or '(no extension)'!r}; use .csv, .tsv or .jsonl"
        )
    if not file.is_file():
        raise DataFileNotFoundError(f"{file}: no such data file; check the path given to --data")
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise DataError(f"{file}: cannot read data file: {error.strerror}") from error
    return _parse(raw, fmt, str(file), text_column=text_column, label_column=label_column)


def _parse(raw: bytes, fmt: str, source: str, *, text_column: str, label_column: str) -> Corpus:
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{source}: not UTF-8 (byte {error.start}); re-save the file as UTF-8") from error
    if not content.strip():
        raise DataError(f"{source}: the file is empty; it needs a header and labelled rows")
    if "\x00" in content:  # a binary file, or UTF-16 read as UTF-8: its texts would train on garbage
        line = content.count("\n", 0, content.index("\x00")) + 1
        raise DataError(f"{source}:{line}: a NUL byte; the data file must be UTF-8 text (re-save it as UTF-8)")
    rows = _jsonl_rows(content, source) if fmt == "jsonl" else _delimited_rows(content, fmt, source)
    texts: list[str] = []
    labels: list[int] = []
    for line, row in rows:
        for column in (text_column, label_column):
            if column not in row:
                raise DataError(
                    f"{source}:{line}: missing column {column!r}; found {sorted(row)}; "
                    f"name the right one with --text-column/--label-column"
                )
        text = row[text_column]
        if not isinstance(text, str):
            raise DataError(f"{source}:{line}: text in column {text_column!r} is not a string")
        if "\x00" in text:  # a JSON "\u0000": the same garbage as a raw NUL byte
            raise DataError(f"{source}:{line}: a NUL character in the text; the data file must be plain text")
        texts.append(text)
        labels.append(_label(row[label_column], source, line))
    if not texts:
        raise DataError(f"{source}: no data rows; the file needs labelled examples")
    if not any(_TOKEN.search(text.lower()) for text in texts):
        raise DataError(f"{source}: no text holds a word (letters or digits); check --text-column")
    if len(set(labels)) < 2:
        only = "positive" if labels[0] == 1 else "negative"
        raise DataError(f"{source}: every example is {only}; a classifier needs both classes")
    return Corpus(tuple(texts), np.asarray(labels, dtype=np.int8), source)


def _label(value: object, source: str, line: int) -> int:
    key = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    if key not in _LABELS:
        raise DataError(
            f"{source}:{line}: unknown label {value!r}; the classifier is binary (positive/negative): "
            f"use 0/1, pos/neg, positive/negative or true/false, and leave out other classes"
        )
    return _LABELS[key]


def _jsonl_rows(content: str, source: str) -> list[tuple[int, dict[str, object]]]:
    rows = []
    for number, line in enumerate(content.split("\n"), start=1):  # not splitlines(): U+2028 may sit in a string
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{source}:{number}: invalid JSON ({error.msg}); one object per line") from error
        except (ValueError, RecursionError) as error:  # an int of 5,000 digits; thousands of nested brackets
            raise DataError(f"{source}:{number}: invalid JSON (a number too long or nesting too deep); "
                            f"one object per line") from error
        if not isinstance(row, dict):
            raise DataError(f"{source}:{number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def _delimited_rows(content: str, fmt: str, source: str) -> list[tuple[int, dict[str, object]]]:
    reader = csv.reader(io.StringIO(content, newline=""), delimiter="," if fmt == "csv" else "\t")
    try:
        header = next(reader)
        rows = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{source}:{reader.line_num}: {len(values)} fields where the header has {len(header)}; "
                    f"quote fields that contain the delimiter"
                )
            rows.append((reader.line_num, dict(zip(header, values))))
    except csv.Error as error:
        raise DataError(f"{source}:{reader.line_num}: malformed {fmt.upper()} ({error})") from error
    return rows


def split(corpus: Corpus, seed: int = 0, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> Split:
    """Stratified, seeded split: each class is shuffled and cut by ``fractions`` on its own."""
    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for label in (0, 1):
        members = np.flatnonzero(corpus.labels == label)
        rng.shuffle(members)
        n_train = round(len(members) * fractions[0])
        n_val = round(len(members) * fractions[1])
        cuts = (members[:n_train], members[n_train:n_train + n_val], members[n_train + n_val:])
        for part, chosen in zip(parts, cuts):
            if len(chosen) < MIN_PER_CLASS_PER_SPLIT:
                raise DataError(
                    f"{corpus.source}: too few examples to split ({len(members)} "
                    f"{'positive' if label else 'negative'}); each class needs at least 6"
                )
            part.extend(chosen.tolist())
    train, val, test = (_subset(corpus, sorted(part)) for part in parts)
    return Split(train, val, test)


def _subset(corpus: Corpus, indices: list[int]) -> Corpus:
    return Corpus(tuple(corpus.texts[i] for i in indices), corpus.labels[indices], corpus.source)
