"""Storage and tracking locations: parsed once, defaulted once, the password never shown."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sweep.locations import DEFAULT_TRACKING_URI, JOURNAL_FILE, StorageLocation, StoredTracking, TrackingLocation

SECRET_PG = "postgresql+psycopg://alice:s3cret@db.example:5432/optuna"


def test_no_storage_is_the_journal_file_in_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    location = StorageLocation.parse(None)
    assert location.is_journal and not location.is_database and not location.given
    assert location.journal_path == tmp_path / JOURNAL_FILE
    assert location.flag == ""


def test_a_journal_path_is_a_journal_with_its_own_path():
    location = StorageLocation.parse("runs/team.journal")
    assert location.scheme == "" and location.is_journal and location.given
    assert location.journal_path == Path("runs/team.journal")
    assert location.local_file == Path("runs/team.journal")
    assert location.flag == " --storage runs/team.journal"


def test_a_postgres_url_is_a_database_without_a_local_file():
    location = StorageLocation.parse(SECRET_PG)
    assert location.scheme == "postgresql"
    assert location.is_database and location.is_postgres and not location.is_journal
    assert location.journal_path is None and location.local_file is None
    assert location.secret_url == SECRET_PG


def test_a_sqlite_url_is_a_database_in_a_local_file():
    location = StorageLocation.parse("sqlite:////data/optuna.db")
    assert location.is_database and location.is_sqlite and not location.is_postgres
    assert location.local_file == Path("/data/optuna.db")


def test_an_unknown_scheme_is_neither_a_journal_nor_a_database():
    location = StorageLocation.parse("mongodb://localhost:27017")
    assert location.scheme == "mongodb"
    assert not location.is_journal and not location.is_database and location.journal_path is None
    assert not location.is_redis and not location.is_grpc


def test_a_storage_password_is_hidden_in_str_repr_and_flag():
    location = StorageLocation.parse(SECRET_PG)
    for shown in (str(location), repr(location), location.flag, f"{location}"):
        assert "s3cret" not in shown and "alice" in shown


def test_tracking_given_wins_over_the_environment():
    location = TrackingLocation.resolve("http://mlflow:5000", environ={"MLFLOW_TRACKING_URI": "sqlite:///x.db"})
    assert location.explicit == "http://mlflow:5000" and location.secret_url == "http://mlflow:5000"
    assert location.is_remote


def test_tracking_falls_back_to_the_environment_then_mlflows_default():
    from_env = TrackingLocation.resolve(None, environ={"MLFLOW_TRACKING_URI": "sqlite:///x.db"})
    assert from_env.explicit is None and from_env.secret_url == "sqlite:///x.db"
    default = TrackingLocation.resolve(None, environ={})
    assert default.explicit is None and default.secret_url == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    assert not default.is_remote


def test_a_stored_tracking_uri_is_used_only_when_it_kept_no_secret():
    usable = StoredTracking("http://mlflow:5000", has_secret=False)
    assert TrackingLocation.resolve(None, stored=usable, environ={}).explicit == "http://mlflow:5000"
    redacted = StoredTracking("http://bob:***@mlflow:5000", has_secret=True)
    assert not redacted.usable
    assert TrackingLocation.resolve(None, stored=redacted, environ={}).secret_url == DEFAULT_TRACKING_URI
    assert TrackingLocation.resolve("sqlite:///given.db", stored=usable, environ={}).explicit == "sqlite:///given.db"


def test_tracking_password_is_hidden_and_stored_with_the_flag_that_says_so():
    location = TrackingLocation.resolve("https://bob:t0ken@mlflow.example", environ={})
    assert location.has_secret
    assert "t0ken" not in str(location) and "t0ken" not in repr(location)
    stored = location.stored()
    assert stored.has_secret and "t0ken" not in stored.shown
    plain = TrackingLocation.resolve("sqlite:///mlflow.db", environ={})
    assert not plain.has_secret and plain.stored() == StoredTracking("sqlite:///mlflow.db", False)


def test_a_redis_url_is_a_journal_in_redis_with_its_key_prefix_taken_out_for_the_driver():
    location = StorageLocation.parse("redis://:s3cret@cache.example:6380/2?prefix=team&socket_timeout=9")
    assert location.is_redis and not location.is_journal and not location.is_database
    assert location.journal_path is None and location.local_file is None
    assert location.redis_prefix == "team"
    assert location.redis_url == "redis://:s3cret@cache.example:6380/2?socket_timeout=9"
    assert StorageLocation.parse("rediss://cache.example").is_redis
    assert StorageLocation.parse("redis://cache.example").redis_prefix == ""


def test_a_redis_password_is_hidden_in_str_repr_and_flag():
    location = StorageLocation.parse("redis://default:s3cret@cache.example:6379/0?prefix=team")
    for shown in (str(location), repr(location), location.flag):
        assert "s3cret" not in shown and "cache.example:6379/0?prefix=team" in shown


@pytest.mark.parametrize("url", ["redis://cache.example:6379/0?prefix=team", "runs/my team.journal",
                                 "postgresql://alice:s3cret@db/optuna"])
def test_the_storage_flag_a_user_is_told_to_run_reaches_a_real_shell_as_one_word(url: str, tmp_path: Path):
    """A space, ``?`` or ``***`` in a hint's URL must not split it or glob it in the user's shell."""
    flag = StorageLocation.parse(url).flag
    shell = subprocess.run(["sh", "-c", f"printf '%s\\n'{flag}"], cwd=tmp_path, capture_output=True, text=True,
                           check=True)
    assert shell.stdout.splitlines() == ["--storage", str(StorageLocation.parse(url))]


def test_a_grpc_url_names_the_storage_proxy_host_and_port():
    location = StorageLocation.parse("grpc://proxy.example:13001")
    assert location.is_grpc and not location.is_journal and not location.is_database and location.local_file is None
    assert location.grpc_address == ("proxy.example", 13001)
    assert StorageLocation.parse("grpc://proxy.example").grpc_address == ("proxy.example", 13000)
    assert StorageLocation.parse("grpc://[::1]:5").grpc_address == ("[::1]", 5)


@pytest.mark.parametrize("url", ["grpc://proxy.example:port", "grpc://:13000", "grpc://proxy.example:1/db",
                                 "grpc://proxy.example:70000"])
def test_a_malformed_grpc_url_is_a_config_error_showing_the_form(url: str):
    from sweep.errors import SweepConfigError

    with pytest.raises(SweepConfigError, match="grpc://HOST:PORT"):
        _ = StorageLocation.parse(url).grpc_address


STORAGES = ["runs/team.journal", SECRET_PG, "sqlite:////data/optuna.db", "redis://:s3cret@cache.example:6380/2?prefix=t",
            "grpc://proxy.example:13001", "grpc://proxy.example:port", "mongodb://localhost:27017"]


def read_every_part(location: StorageLocation) -> list[object]:
    parts: list[object] = [location.scheme, location.secret_url, location.is_journal, location.is_database,
                           location.is_redis, location.is_grpc, location.is_postgres, location.is_sqlite,
                           location.journal_path, location.local_file, location.redis_prefix, location.redis_url,
                           location.flag, str(location), repr(location)]
    try:
        parts.append(location.grpc_address)
    except Exception as error:  # a malformed or other storage: its one-line error is a part too
        parts.append(str(error))
    return parts


def read_every_tracking_part(location: TrackingLocation) -> list[object]:
    return [location.explicit, location.secret_url, location.scheme, location.is_remote, location.has_secret,
            location.stored(), str(location), repr(location)]


def test_a_location_reads_every_part_without_parsing_its_url_again(monkeypatch: pytest.MonkeyPatch):
    from sweep.urls import URL

    storages = [StorageLocation.parse(url) for url in STORAGES]
    trackings = [TrackingLocation.resolve(uri, environ={}) for uri in ("https://bob:t0ken@mlflow.example", None)]
    expected = [read_every_part(location) for location in storages]
    expected_tracking = [read_every_tracking_part(location) for location in trackings]

    def parsed_again(*_args, **_kwargs):
        raise AssertionError("a URL was parsed (or made) again")

    monkeypatch.setattr(URL, "parse", parsed_again)
    monkeypatch.setattr(URL, "__post_init__", parsed_again)
    assert [read_every_part(location) for location in storages] == expected
    assert [read_every_tracking_part(location) for location in trackings] == expected_tracking


def test_locations_are_immutable_and_equal_when_parsed_from_the_same_text():
    location = StorageLocation.parse(SECRET_PG)
    assert location == StorageLocation.parse(SECRET_PG) and location != StorageLocation.parse("sqlite:///x.db")
    with pytest.raises(AttributeError):
        location.given = False  # type: ignore[misc]
    assert location.url.host == "db.example" and location.url.port_number == 5432 and location.url.path == "/optuna"


def test_an_in_memory_sqlite_storage_has_no_local_file():
    assert StorageLocation.parse("sqlite://").local_file is None
    assert StorageLocation.parse("sqlite:///runs/optuna.db?timeout=5").local_file == Path("runs/optuna.db")


@pytest.mark.parametrize(("uri", "seen"), [
    ("sqlite:///mlflow.db", "sqlite:////base/mlflow.db"),
    ("sqlite:///runs/x.db?mode=ro", "sqlite:////base/runs/x.db?mode=ro"),
    ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
    ("file://mlruns", "file:///base/mlruns"),
    ("file:///abs/mlruns", "file:///abs/mlruns"),
    ("mlruns", "/base/mlruns"),
    ("https://bob:t0ken@mlflow.example", "https://bob:t0ken@mlflow.example"),
])
def test_a_relative_tracking_store_is_made_absolute_for_commands_in_other_folders(uri: str, seen: str):
    assert TrackingLocation.resolve(uri, environ={}).absolute_uri(Path("/base")) == seen
