"""Property tests: whatever broken input `sweep run` is given, it fails cleanly and writes nothing.

Broken configs (random text, random YAML structures, the default config with one part broken, bad
encodings), broken data files behind a valid config, and names that could escape a folder or break a
store query. Every case exits 2 (1 when something named does not exist), prints exactly one
`error:` line on stderr naming the problem, never a traceback, and leaves no store behind: no
sweep.journal, no mlflow.db, no mlruns/ in the working folder.

Broken data is checked in-process for many examples (the sweep stops once its data is loaded), and
through the real `run_sweep`, which starts the tracking process before it reads the data, for a few
examples marked slow.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import sweep.engine
from sweep.cli import app
from sweep.config import default_config_text, load_config
from tests.unit.trainer.test_data_properties import assume_invalid_data, broken_data
from trainer import TrainConfig, load_corpus, split

STORES = ("sweep.journal", "mlflow.db", "mlruns", "mlartifacts")
CONFIG = "bad.yaml"
BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # the documented rule, checked with fullmatch


@pytest.fixture(scope="module", autouse=True)
def no_outside_stores():
    """No store may be chosen by the environment: an unset MLFLOW_TRACKING_URI / SWEEP_STORAGE means
    the working folder, where the tests look for stray files."""
    patch = pytest.MonkeyPatch()
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.delenv("SWEEP_STORAGE", raising=False)
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield
    patch.undo()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


@contextlib.contextmanager
def workdir(base: Path):
    """A fresh, empty working folder for one example; the old one is restored and the folder removed."""
    folder = Path(tempfile.mkdtemp(dir=base))
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)
        shutil.rmtree(folder, ignore_errors=True)


class InputAccepted(AssertionError):
    """The CLI accepted the input and called run_sweep: a wrongly accepted input fails the test."""


@contextlib.contextmanager
def no_sweep_starts():
    """A name or config wrongly accepted must fail the test, not start a real sweep."""

    def refuse(*_args, **_kwargs):
        raise InputAccepted("the input was accepted: a sweep would have started")

    patch = pytest.MonkeyPatch()
    patch.setattr(sweep.engine, "run_sweep", refuse)
    try:
        yield
    finally:
        patch.undo()


@contextlib.contextmanager
def sweep_stops_after_loading_data():
    """run_sweep reads the config's data before it touches a store; this stand-in does only that, in
    this process, without the tracking process the real one starts first. Data that loads fails the test."""

    def load_data_only(config, **_kwargs):
        corpus = load_corpus(config.data, text_column=config.text_column, label_column=config.label_column)
        split(corpus, TrainConfig.from_mapping(config.fixed).seed)
        raise AssertionError("the data was accepted: a sweep would have started")

    patch = pytest.MonkeyPatch()
    patch.setattr(sweep.engine, "run_sweep", load_data_only)
    try:
        yield
    finally:
        patch.undo()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def error_line(result, *codes: int) -> str:
    """The one stderr line of a cleanly failed command: the expected exit code, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in codes, (result.exit_code, result.stderr, result.stdout)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, f"not one line: {result.stderr!r}"
    assert result.stdout == ""
    return result.stderr[:-1]


def assert_nothing_written(folder: Path, *expected: str) -> None:
    assert sorted(os.listdir(folder)) == sorted(expected)
    for store in STORES:
        assert not (folder / store).exists(), f"{store} was written"


def run_bad_config(base: Path, content: str | bytes) -> str:
    """`sweep run --config bad.yaml` in a fresh folder: exit 2, one line naming the file, nothing written.

    A generated config that happens to be valid reaches the guard instead of a sweep, and the example
    is skipped (load_config decides, as the CLI calls it; the guard's own test is at the end).
    """
    with workdir(base) as folder:
        path = folder / CONFIG
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        with no_sweep_starts():
            result = invoke("run", "--config", CONFIG, "--trials", "1")
        if isinstance(result.exception, InputAccepted):
            assert load_config(path) is not None  # valid indeed, not a bug of the CLI
            assume(False)
        line = error_line(result, 2)
        assert CONFIG in line
        assert_nothing_written(folder, CONFIG)
        return line


# -- strategies: garbage values, YAML documents, broken configs -------------------------------------

KEY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(10**400), max_value=10**400),  # huge, but printable by YAML
    st.floats(allow_nan=True, allow_infinity=True),
    KEY_TEXT, st.sampled_from(["", " ", "\n", "val_loss", "tpe", "none", "float", "int", "categorical",
                               "lr", "epochs", "../x", "x' OR 1=1", "a\nb"]),
)
GARBAGE = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(KEY_TEXT, st.integers(), st.none(), st.booleans()), children, max_size=4),
    max_leaves=12,
)
SECTIONS = {"objective": ("metric", "direction"), "sampler": ("name", "seed"),
            "pruner": ("name", "startup_trials", "warmup_epochs"),
            "data": ("source", "text_column", "label_column"), "fixed": ("seed", "l2", "lr", "epochs")}
PLAIN = ("name", "experiment", "trials", "timeout", "storage", "tracking_uri", "heartbeat")
TOP_KEYS = {*PLAIN, *SECTIONS, "space"}
DIMENSION_FIELDS = ("type", "low", "high", "log", "step", "choices")


def default_document() -> dict:
    return yaml.safe_load(default_config_text())


def dump(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


@st.composite
def broken_defaults(draw) -> tuple[str, tuple[object, ...]]:
    """The built-in config with one part replaced by garbage: (YAML text, the path of the broken part)."""
    document = default_document()
    kind = draw(st.sampled_from(["plain", "section", "section-key", "dimension", "dimension-field",
                                 "space", "unknown-top-key", "unknown-section-key"]))
    if kind == "plain":
        path: tuple[object, ...] = (draw(st.sampled_from(PLAIN)),)
        document[path[0]] = draw(GARBAGE)
    elif kind == "section":
        path = (draw(st.sampled_from(sorted(SECTIONS))),)
        document[path[0]] = draw(GARBAGE)
    elif kind == "section-key":
        section = draw(st.sampled_from(sorted(SECTIONS)))
        path = (section, draw(st.sampled_from(SECTIONS[section])))
        document.setdefault(section, {})[path[1]] = draw(GARBAGE)
        if section == "fixed":
            document["space"].pop(path[1], None)  # a setting tuned and fixed is a different mistake
    elif kind == "dimension":
        path = ("space", draw(st.sampled_from(sorted(document["space"]))))
        document["space"][path[1]] = draw(GARBAGE)
    elif kind == "dimension-field":
        name = draw(st.sampled_from(sorted(document["space"])))
        path = ("space", name, draw(st.sampled_from(DIMENSION_FIELDS)))
        document["space"][name][path[2]] = draw(GARBAGE)
    elif kind == "space":
        path = ("space",)
        document["space"] = draw(st.one_of(st.just({}), st.just([]), st.none(), GARBAGE))
    elif kind == "unknown-top-key":
        key = draw(KEY_TEXT.filter(lambda text: text not in TOP_KEYS))
        path = ("unknown key",)
        document[key] = draw(GARBAGE)
    else:
        section = draw(st.sampled_from(["objective", "sampler", "pruner", "data"]))
        key = draw(KEY_TEXT.filter(lambda text, s=section: text not in SECTIONS[s]))
        path = ("unknown key",)
        document[section][key] = draw(GARBAGE)
    return dump(document), path


FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@st.composite
def broken_bounds(draw) -> tuple[str, str]:
    """One dimension of the space with bounds Optuna or the trainer refuses: (YAML text, its name)."""
    document = default_document()
    name = draw(st.sampled_from(["lr", "epochs", "vocab_size", "l2"]))
    kind = "float" if name in ("lr", "l2") else "int"
    number = FINITE if kind == "float" else st.integers(min_value=-(10**6), max_value=10**6)
    low, high = draw(number), draw(number)
    spec: dict = {"type": draw(st.sampled_from([kind, kind, "float" if kind == "int" else "int"])),
                  "low": low, "high": high}
    problem = draw(st.sampled_from(["swapped", "log-not-positive", "step", "free"]))
    if problem == "swapped":
        spec["low"], spec["high"] = max(low, high), min(low, high)
    elif problem == "log-not-positive":
        spec["low"], spec["log"] = -abs(low), True
    elif problem == "step":
        spec["step"] = draw(st.one_of(number.map(lambda value: -abs(value)), st.just(0),
                                      st.floats(allow_nan=True, allow_infinity=True)))
    elif draw(st.booleans()):
        spec["log"] = draw(st.booleans())
    document["space"] = {name: spec}
    document["fixed"].pop(name, None)  # tuned and fixed at once is a different mistake
    return dump(document), name


# -- configs ----------------------------------------------------------------------------------------

YAML_NOISE = st.text(st.one_of(st.sampled_from(list(":{}[]-,#&*!|>'\"%@`?\\ \t\n\r")), st.characters(codec="utf-8")),
                     max_size=80)


@BOUNDED
@given(text=YAML_NOISE)  # deep nesting ("[" * 1000, ...) is in NASTY_CONFIGS: seconds per example
@example(text="trials: 10\nspace:\n\tlr: 1\n")
def test_random_text_as_config_exits_2_with_one_line_and_writes_nothing(base, text):
    run_bad_config(base, text)


@BOUNDED
@given(document=GARBAGE)
def test_random_yaml_structure_as_config_exits_2_with_one_line_and_writes_nothing(base, document):
    run_bad_config(base, dump(document))


@BOUNDED
@given(case=broken_defaults())
def test_default_config_with_one_broken_part_exits_2_naming_that_part(base, case):
    text, path = case
    line = run_bad_config(base, text)
    assert str(path[0]) in line, (path, line)


@BOUNDED
@given(case=broken_bounds())
def test_space_with_bounds_the_trainer_or_optuna_refuse_exits_2_naming_the_setting(base, case):
    text, name = case
    line = run_bad_config(base, text)
    assert f"space.{name}" in line


@SMALL
@given(content=st.binary(min_size=1, max_size=200))
def test_binary_junk_as_config_exits_2(base, content):
    run_bad_config(base, content)


@SMALL
@given(encoding=st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "utf-16-be"]),
       word=st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1, max_size=5))
def test_config_not_in_utf8_exits_2_naming_the_file(base, encoding, word):
    text = f"# {word}\n" + default_config_text()
    run_bad_config(base, text.encode(encoding))


NASTY_CONFIGS = {  # found by the properties above; kept as named regressions
    "impossible-date": "trials: 2001-02-30\n",
    "int-of-5000-digits": "trials: " + "1" * 5000 + "\n",
    "float-bound-of-400-digits": "space: {lr: {type: float, low: 0.1, high: " + "1" * 400 + "}}\n",
    "int-bound-of-400-digits": "space: {epochs: {type: int, low: 1, high: " + "1" * 400 + "}}\n",
    "float-step-of-400-digits": "space: {lr: {type: float, low: 0.1, high: 1, step: " + "1" * 400 + "}}\n",
    "infinite-step": "space: {lr: {type: float, low: 0.1, high: 1, step: .inf}}\n",
    "fixed-lr-of-400-digits": "fixed: {l2: " + "1" * 400 + "}\nspace: {lr: {type: float, low: 0.1, high: 1}}\n",
    "choice-of-400-digits": "space: {lr: [" + "1" * 400 + ", 2]}\n",
    "metric-is-a-list": "objective: {metric: [val_loss]}\nspace: {lr: [0.1]}\n",
    "metric-is-a-mapping": "objective: {metric: {a: 1}}\nspace: {lr: [0.1]}\n",
    "type-is-a-list": "space: {lr: {type: [float], low: 0.1, high: 1}}\n",
    "section-key-with-newline": 'objective: {"a\\nb": 1}\nspace: {lr: [0.1]}\n',
    "space-key-with-newline": 'space: {"a\\nb": {type: float, low: 0.1, high: 1}}\n',
    "space-key-with-newline-not-a-mapping": 'space: {"a\\nb": 3}\n',
    "fixed-key-with-newline": 'fixed: {"a\\nb": 1}\nspace: {lr: [0.1]}\n',
    "name-ending-in-newline": 'name: "abc\\n"\nspace: {lr: [0.1]}\n',
    "experiment-ending-in-newline": 'experiment: "abc\\n"\nspace: {lr: [0.1]}\n',
    "deep-list": "[" * 1000,  # deeper than Python's recursion limit; PyYAML's cost grows much faster than the depth
    "deep-mapping": "a: " + "{b: " * 1500,
    "empty-space": "space: {}\n",
    "no-space": "trials: 3\n",
    "tab-indent": "trials: 10\nspace:\n\tlr: 1\n",
}


@pytest.mark.parametrize("text", NASTY_CONFIGS.values(), ids=NASTY_CONFIGS.keys())
def test_nasty_config_exits_2_with_one_line_and_writes_nothing(base, text):
    run_bad_config(base, text)


def test_missing_config_file_exits_2_and_writes_nothing(base):
    with workdir(base) as folder, no_sweep_starts():
        line = error_line(invoke("run", "--config", "nothere.yaml"), 2)
        assert "nothere.yaml" in line
        assert_nothing_written(folder)


# -- names ------------------------------------------------------------------------------------------

BAD_NAMES = ["../x", "a/b", "x' OR 1=1", 'say "hi"', "it's", "a\nb", "abc\n", "\nabc", "a b", " abc", "abc ",
             "a" * 101, "", "-x", ".hidden", "..", "a\\b", "a;b", "%", "x\x00y", "naïve", "a\tb", "a\rb"]
NAME_FLAGS = ("--name", "--experiment", "--register")


@pytest.mark.parametrize("flag", NAME_FLAGS)
@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(name)[:20] for name in BAD_NAMES])
def test_unsafe_name_flag_exits_2_naming_the_flag_and_writes_nothing(base, flag, name):
    with workdir(base) as folder, no_sweep_starts():
        line = error_line(invoke("run", flag, name, "--trials", "1"), 2)
        assert flag.removeprefix("--") in line
        assert_nothing_written(folder)


@BOUNDED
@given(flag=st.sampled_from(NAME_FLAGS),
       name=st.one_of(st.text(max_size=120), st.text("abcAZ09._-/\\ '\"\n", max_size=110)))
def test_any_name_outside_the_rule_exits_2_and_writes_nothing(base, flag, name):
    assume(not VALID_NAME.fullmatch(name))
    with workdir(base) as folder, no_sweep_starts():
        line = error_line(invoke("run", flag, name, "--trials", "1"), 2)
        assert flag.removeprefix("--") in line
        assert_nothing_written(folder)


@pytest.mark.parametrize("key", ["name", "experiment"])
@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(name)[:20] for name in BAD_NAMES])
def test_unsafe_name_in_the_config_file_exits_2_naming_the_key(base, key, name):
    document = default_document()
    document[key] = name
    line = run_bad_config(base, dump(document))
    assert f"{key}:" in line


# -- data behind a valid config ---------------------------------------------------------------------

def run_with_bad_data(base: Path, name: str, content: bytes) -> None:
    """`sweep run --data NAME` in a fresh folder: exit 2, one line naming the file, nothing written."""
    with workdir(base) as folder:
        (folder / name).write_bytes(content)
        assume_invalid_data(folder / name)
        line = error_line(invoke("run", "--data", name, "--trials", "1"), 2)
        assert name in line
        assert_nothing_written(folder, name)


@BOUNDED
@given(case=broken_data())
def test_valid_config_with_bad_data_exits_2_with_one_line_and_writes_nothing(base, case):
    with sweep_stops_after_loading_data():
        run_with_bad_data(base, *case)


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=broken_data())
@example(case=("data.csv", b"text,label\ngood,1\nmeh,maybe\n"))
def test_bad_data_through_the_real_sweep_exits_2_and_leaves_no_store_behind(base, case):
    """The real run_sweep: its tracking process is started and stopped again, no store is left."""
    run_with_bad_data(base, *case)


def test_valid_config_with_missing_data_file_exits_1_and_writes_nothing(base):
    with workdir(base) as folder, sweep_stops_after_loading_data():
        line = error_line(invoke("run", "--data", "missing.csv", "--trials", "1"), 1)
        assert "missing.csv" in line
        assert_nothing_written(folder)


def test_bad_config_wins_over_bad_data_and_writes_nothing(base):
    with workdir(base) as folder, no_sweep_starts():
        (folder / CONFIG).write_text("space: {}\n", encoding="utf-8")
        (folder / "data.csv").write_bytes(b"\xff\xfe junk")
        line = error_line(invoke("run", "--config", CONFIG, "--data", "data.csv"), 2)
        assert CONFIG in line and "space" in line
        assert_nothing_written(folder, CONFIG, "data.csv")


def test_the_generated_names_respect_the_documented_rule():
    assert all(not VALID_NAME.fullmatch(name) for name in BAD_NAMES)


def test_the_guard_stops_a_valid_input_before_any_sweep_starts(base):
    """The seam the name tests rely on: a valid invocation reaches run_sweep, which the guard refuses."""
    with workdir(base) as folder, no_sweep_starts():
        result = invoke("run", "--name", "fine-name", "--trials", "1")
        assert isinstance(result.exception, InputAccepted)
        assert_nothing_written(folder)
