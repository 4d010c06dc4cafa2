"""sweep/urls.py: redact_url hides passwords and secret query values, and changes nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sweep.urls import URL, hide_secrets, misread_password, redact_text, redact_url, secrets_in


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://alice:s3cret@db/optuna", "postgresql://alice:***@db/optuna"),
    ("postgresql+psycopg2://alice:s3cret@db.example.com:5432/optuna",
     "postgresql+psycopg2://alice:***@db.example.com:5432/optuna"),
    ("http://bob:hunter2@mlflow:5000", "http://bob:***@mlflow:5000"),
    ("mysql://u:@db/x", "mysql://u:***@db/x"),
    ("postgresql://:s3cret@db/x", "postgresql://:***@db/x"),
], ids=["postgres", "driver-and-port", "http", "empty-password", "no-user"])
def test_password_in_userinfo_is_replaced(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("password", ["p%40ss%2Fw%3Ard", "pa:ss", "p!#$%^&*()=+ss", "pa?ss", "pä§ß"],
                         ids=["percent-encoded", "colon", "punctuation", "question-mark", "non-ascii"])
def test_password_with_special_characters_is_hidden_entirely(password):
    shown = redact_url(f"postgresql://alice:{password}@db:5432/optuna")
    assert shown == "postgresql://alice:***@db:5432/optuna"


@pytest.mark.parametrize("url", [
    "postgresql://alice@db/optuna", "postgresql://db:5432/optuna", "http://mlflow:5000",
    "https://mlflow.example.com/path?x=1&y=2",
])
def test_url_without_password_is_unchanged(url):
    assert redact_url(url) == url


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://db/optuna?password=s3cret", "postgresql://db/optuna?password=***"),
    ("postgresql://db/optuna?sslmode=require&password=s3cret&x=1",
     "postgresql://db/optuna?sslmode=require&password=***&x=1"),
    ("https://mlflow/api?token=abc123", "https://mlflow/api?token=***"),
    ("https://mlflow/api?a=1&TOKEN=abc123", "https://mlflow/api?a=1&TOKEN=***"),
    ("https://mlflow/?secret=x&pwd=y&passwd=z", "https://mlflow/?secret=***&pwd=***&passwd=***"),
], ids=["password", "password-among-others", "token", "upper-case", "secret-pwd-passwd"])
def test_secret_query_values_are_replaced(url, shown):
    assert redact_url(url) == shown


def test_password_and_query_secret_together_are_both_hidden():
    assert redact_url("http://u:p@host:5000/x?token=abc&x=1") == "http://u:***@host:5000/x?token=***&x=1"


@pytest.mark.parametrize("url", [
    "sqlite:///mlflow.db", "sqlite:////tmp/sweeps/optuna.db", "sqlite:////tmp/odd:name@host/x.db",
    "/home/alice/sweep.journal", "journal:./runs/sweep.journal", "file:///tmp/mlruns",
])
def test_sqlite_urls_and_file_paths_are_unchanged(url):
    assert redact_url(url) == url


def test_redact_url_is_idempotent():
    once = redact_url("postgresql://alice:s3cret@db/optuna?password=x")
    assert redact_url(once) == once


def test_password_with_an_unencoded_slash_is_hidden():
    assert redact_url("postgresql://alice:pa/ss@db/optuna") == "postgresql://alice:***@db/optuna"


@pytest.mark.parametrize("url", ["postgresql://u@db/optuna?sslpassword=s3cret",
                                 "https://mlflow/api?access_token=s3cret"])
def test_other_secret_query_parameters_are_hidden(url):
    assert "s3cret" not in redact_url(url)


# -- passwords that are not percent-encoded: redaction must not depend on a well-formed URL ---------------------

PASSWORDS = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=6, max_size=30)
URL_SHAPES = [
    "postgresql://postgres:{}@127.0.0.1:5432/optuna",
    "postgresql+psycopg://alice:{}@db.example.com/optuna?sslmode=require",
    "mysql://u:{}@db/x",
    "http://bob:{}@mlflow:5000",
    "https://bob:{}@mlflow.example.com/path?x=1",
]
TEXT_SHAPES = [
    "cannot open Optuna storage {}: connection refused",
    "Could not parse SQLAlchemy URL from string '{}'",
    "sweep run --storage {} --tracking-uri http://u:other-secret@h:5000 --trials 3",
    'error at "{}" (attempt 2)',
]





@pytest.mark.parametrize("shape", URL_SHAPES)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=PASSWORDS)
def test_redact_url_never_shows_any_password(shape, password):
    assume(password not in redact_url(shape.format("benign")))
    assert password not in redact_url(shape.format(password))


@pytest.mark.parametrize("text_shape", TEXT_SHAPES)
@pytest.mark.parametrize("shape", URL_SHAPES[:3])
@settings(max_examples=60)
@given(password=PASSWORDS)
def test_redact_text_never_shows_any_password(text_shape, shape, password):
    benign = redact_text(text_shape.format(shape.format("benign")))
    assume(password not in benign)
    shown = redact_text(text_shape.format(shape.format(password)))
    assert password not in shown and "other-secret" not in shown


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://postgres:p@ss/word@host/db", "postgresql://postgres:***@host/db"),
    ("postgresql://postgres:p@ss word@host:5432/db", "postgresql://postgres:***@host:5432/db"),
    ("http://u:a'b\"c@mlflow:5000", "http://u:***@mlflow:5000"),
], ids=["at-and-slash", "at-and-space", "quotes"])
def test_password_with_unencoded_at_is_hidden_up_to_the_last_at(url, shown):
    assert redact_url(url) == shown
    assert redact_text(f"error: {url}: refused") == f"error: {shown}: refused"


def test_misread_password_is_detected_only_when_the_driver_would_split_it():
    assert misread_password(URL.parse("postgresql://postgres:p@ss/word@host/db"))
    assert not misread_password(URL.parse("postgresql://postgres:pa/ss@host/db"))
    assert not misread_password(URL.parse("postgresql://postgres:p%40ss@host/db"))
    assert not misread_password(URL.parse("postgresql://postgres@host/db"))


# -- URL: parsed once into parts, immutable, the password masked ------------------------------------------------


def test_a_url_is_parsed_into_its_parts_as_written():
    url = URL.parse("postgresql+psycopg://alice:p%40ss@db.example:5432/optuna?sslmode=require&x=1#top")
    assert (url.scheme, url.kind) == ("postgresql+psycopg", "postgresql")
    assert (url.username, url.password) == ("alice", "p%40ss")  # as written: the driver decodes it
    assert (url.host, url.port, url.port_number) == ("db.example", "5432", 5432)
    assert (url.path, url.query, url.fragment) == ("/optuna", "sslmode=require&x=1", "top")
    assert url.params == (("sslmode", "require"), ("x", "1"))


def test_a_text_without_a_scheme_is_a_path():
    for text in ("runs/team.journal", "journal:./runs/sweep.journal", "/abs/sweep.journal", "://odd", "databricks"):
        url = URL.parse(text)
        assert (url.scheme, url.kind, url.path, url.host, url.username) == ("", "", text, "", None)
        assert url.secret == str(url) == text


def test_an_ipv6_host_keeps_its_brackets_and_a_port_that_is_no_number_is_kept_as_written():
    assert (URL.parse("grpc://[::1]:5").host, URL.parse("grpc://[::1]:5").port_number) == ("[::1]", 5)
    odd = URL.parse("grpc://proxy.example:port")
    assert (odd.host, odd.port, odd.port_number) == ("proxy.example", "port", None)
    assert URL.parse("grpc://proxy.example:70000").port_number is None
    assert URL.parse("http://mlflow").port is None and URL.parse("http://mlflow:").port == ""


def test_a_password_with_an_unencoded_at_and_slash_runs_to_the_last_at():
    url = URL.parse("postgresql://postgres:p@ss/word@host:5432/db")
    assert (url.username, url.password) == ("postgres", "p@ss/word")
    assert (url.host, url.port, url.path) == ("host", "5432", "/db")
    assert str(url) == "postgresql://postgres:***@host:5432/db"


def test_a_sqlite_path_with_a_colon_and_an_at_holds_no_password():
    url = URL.parse("sqlite:////tmp/odd:name@host/x.db")
    assert (url.username, url.password, url.host, url.path) == (None, None, "", "//tmp/odd:name@host/x.db")
    assert not url.has_secret


def test_the_password_is_masked_in_str_and_repr_and_only_secret_holds_it():
    url = URL.parse("https://bob:t0ken@mlflow.example/api?token=abc&x=1")
    for shown in (str(url), repr(url), f"{url}"):
        assert "t0ken" not in shown and "abc" not in shown and "bob" in shown and "x=1" in shown
    assert url.secret == "https://bob:t0ken@mlflow.example/api?token=abc&x=1"
    assert url.has_secret and not URL.parse("http://mlflow:5000").has_secret


def test_copy_with_replaces_parts_and_leaves_the_url_it_came_from_unchanged():
    url = URL.parse("redis://:s3cret@cache.example:6380/2?prefix=team&socket_timeout=9")
    changed = url.copy_with(host="other.example", params=[("socket_timeout", "9")])
    assert changed.secret == "redis://:s3cret@other.example:6380/2?socket_timeout=9"
    assert changed.params == (("socket_timeout", "9"),) and str(changed) == "redis://:***@other.example:6380/2?socket_timeout=9"
    assert url.secret == "redis://:s3cret@cache.example:6380/2?prefix=team&socket_timeout=9"
    assert url.copy_with(params={}).query is None and url.copy_with(params={}).secret.endswith("/2")
    assert url.copy_with(params={"a": 1}).query == "a=1"
    with pytest.raises(AttributeError):
        url.host = "elsewhere"  # type: ignore[misc]


def test_urls_with_the_same_parts_are_equal_and_hash_alike():
    assert URL.parse("http://u:p@h:1/x") == URL.parse("http://u:p@h:1/x")
    assert len({URL.parse("http://u:p@h:1/x"), URL.parse("http://u:p@h:1/x")}) == 1
    assert URL.parse("http://u:p@h:1/x") != URL.parse("http://u:q@h:1/x")


@pytest.mark.parametrize("shape", URL_SHAPES)
@settings(max_examples=100)
@given(password=PASSWORDS)
def test_a_parsed_url_gives_its_text_back_and_shows_what_redact_url_shows(shape, password):
    text = shape.format(password)
    url = URL.parse(text)
    assert url.secret == text and url.password == password
    assert str(url) == redact_url(text) and repr(url) == f"URL({redact_url(text)!r})"
    assume(password not in redact_url(shape.format("benign")))
    assert password not in str(url) and password not in repr(url)


@settings(max_examples=300)
@given(text=st.one_of(st.text(), st.builds("{}://{}".format, st.sampled_from(["http", "sqlite", "redis", "x+y"]),
                                           st.text())))
def test_any_text_parses_and_gives_itself_back_whole(text):
    assert URL.parse(text).secret == text


def test_secrets_in_an_environment_are_named_like_secrets_or_url_passwords_longest_first():
    found = secrets_in({"MLFLOW_TRACKING_PASSWORD": "hunter2", "AWS_SECRET_ACCESS_KEY": "abcd/efgh",
                        "DB": "postgresql://me:p%40ss-word@db/x", "HOME": "/root", "DEBUG": "1",
                        "GITHUB_TOKEN": "abc"})  # too short to hide: would mask ordinary words
    assert found == ("p%40ss-word", "abcd/efgh", "p@ss-word", "hunter2")


def test_hide_secrets_masks_each_secret_and_every_url_password():
    text = "uri=http://u:other-pw@h:5000 token=hunter2 key=abcd/efgh"
    assert hide_secrets(text, ("abcd/efgh", "hunter2")) == "uri=http://u:***@h:5000 token=*** key=***"
