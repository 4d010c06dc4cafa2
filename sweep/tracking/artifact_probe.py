"""Can this host write, read and delete an object in the artifact store? One probe object, one line if not.

A sweep checks this before any trial runs (a child run's model.json written to an unreachable bucket
would otherwise fail quietly, trial after trial), and `sweep doctor` reports it. The probe goes where
the runs' artifacts go, the experiment's artifact location: a folder of S3 objects for a server with
`--default-artifact-root s3://...` (clients write there directly), `mlflow-artifacts:/...` for a server
that proxies them (`--serve-artifacts`: the server writes to its own destination).

Imports mlflow: only the tracking process and `sweep doctor` reach this module.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from sweep.errors import TrackingError
from sweep.urls import redact_text, redact_url

PROBE_TEXT = "sweep artifact store probe\n"

# (words in the error, what is wrong, how to fix it): the first match names the cause. A proxying server
# answers HTTP 500 whatever its own S3 error was: only its log says which.
CAUSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("error code 403", "Permission denied"), "the tracking server refused this user (HTTP 403)",
     "ask its admin for EDIT on the experiment"),
    (("NoSuchBucket", "bucket does not exist"), "the bucket does not exist",
     "create it, or fix the bucket in the server's artifact root"),
    (("InvalidAccessKeyId", "SignatureDoesNotMatch", "signature we calculated does not match",
      "AccessDenied", "Forbidden", "ExpiredToken",
      "InvalidToken"), "the S3 credentials were refused",
     "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the server's, when it proxies artifacts)"),
    (("Unable to locate credentials", "NoCredentialsError"), "no S3 credentials",
     "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use a server that proxies artifacts)"),
    (("500 error responses", "error code 500"), "the tracking server could not store it (HTTP 500)",
     "its artifact destination is wrong or unreachable (bucket, S3 endpoint or credentials): see the server's log"),
    (("Could not connect to the endpoint", "EndpointConnectionError", "Connection refused", "timed out",
      "Name or service not known"), "the S3 endpoint cannot be reached",
     "check MLFLOW_S3_ENDPOINT_URL and the network (the server's, when it proxies artifacts)"),
)


def is_local(artifact_location: str) -> bool:
    """Artifacts in a folder of this machine (the default ./mlruns): nothing to probe over a network."""
    return artifact_location.startswith(("/", "file:")) or ":" not in artifact_location.split("/")[0]


def probe_artifact_store(artifact_location: str) -> str:
    """Write, read back and delete one small object under ``artifact_location``; TrackingError naming
    the cause (endpoint, bucket, credentials) when writing or reading fails. Answers what was done.

    The object's name is fixed per host, so a probe that cannot be deleted is overwritten next time
    rather than piling up: with MLflow's basic auth, deleting a proxied artifact takes MANAGE on the
    experiment, which members who did not create it lack (a sweep never needs it to run trials). The
    processes of one host (`--jobs`, workers started together) therefore take turns: one's delete
    under another's write or read fails both.
    """
    folder = f"{artifact_location.rstrip('/')}/.sweep-probe/{socket.gethostname() or 'host'}"
    with probe_turn(folder):
        return probe_folder(artifact_location, folder)


@contextmanager
def probe_turn(folder: str) -> Iterator[None]:
    """Hold this host's lock for probing ``folder``: a file in the temporary folder, named by a digest of
    the location (it may hold a password, which must not land in a file name)."""
    digest = hashlib.sha256(folder.encode()).hexdigest()[:16]
    try:
        lock = open(Path(tempfile.gettempdir()) / f"sweep-artifact-probe-{digest}.lock", "a")  # noqa: SIM115
    except OSError:  # another user's lock file: probe without turns rather than not at all
        yield
        return
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def probe_folder(artifact_location: str, folder: str) -> str:
    """The probe itself: write, read back and delete one object in ``folder``."""
    step = "write"
    try:
        repository = get_artifact_repository(folder)
        with tempfile.TemporaryDirectory(prefix="sweep-probe-") as scratch:
            local = Path(scratch) / "probe.txt"
            local.write_text(PROBE_TEXT, encoding="utf-8")
            repository.log_artifact(str(local))
            step = "read"
            back_folder = Path(scratch) / "back"
            back_folder.mkdir()
            back = Path(repository.download_artifacts("probe.txt", dst_path=str(back_folder)))
            if back.read_text(encoding="utf-8") != PROBE_TEXT:
                raise TrackingError(f"artifact store {redact_url(artifact_location)}: the probe object read back "
                                    f"differs from what was written; check the store")
            step = "delete"
            repository.delete_artifacts()
    except TrackingError:
        raise
    except Exception as error:
        if step == "delete" and refused_by_tracking_server(error):
            return "write, read ok; delete refused by the tracking server (MANAGE permission; sweeps do not need it)"
        raise probe_error(artifact_location, step, error) from None
    return "write, read, delete ok"


def refused_by_tracking_server(error: BaseException) -> bool:
    """MLflow's auth app said no (HTTP 403), as opposed to the store behind it."""
    return "error code 403" in str(error) or "Permission denied" in str(error)


def probe_error(artifact_location: str, step: str, error: BaseException) -> TrackingError:
    """The failure of one probe step as one line: where, which cause, the fix."""
    text = f"{type(error).__name__}: {error}"
    where = f"artifact store {redact_url(artifact_location)}{describe_endpoint(artifact_location)}"
    if artifact_location.startswith("mlflow-artifacts:") and not refused_by_tracking_server(error):
        # the server answers its API (check_server said so), so what failed is behind it: only its log
        # says what. Usually its artifact destination, but a server whose own database refuses
        # connections answers the same way, so the cause is named as the likely one, not the only one.
        return TrackingError(f"{where}: cannot {step} a probe object: {server_answer(text)}; see the server's "
                             f"log: usually it could not reach its artifact destination (bucket, S3 endpoint, "
                             f"credentials)")
    for words, cause, fix in CAUSES:
        if any(word.lower() in text.lower() for word in words):
            return TrackingError(f"{where}: cannot {step} a probe object: {cause}; {fix}")
    detail = redact_text(" ".join(str(error).split()) or type(error).__name__)[:600]
    return TrackingError(f"{where}: cannot {step} a probe object ({detail}); check the artifact store")


def server_answer(text: str) -> str:
    """What the tracking server did, as the client saw it: an HTTP 500, no answer in time, or another failure."""
    if any(words in text for words in ("500 error responses", "error code 500", "status code 500", "HTTP 500")):
        return "the tracking server answered HTTP 500"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "the tracking server did not answer in time"
    return "the tracking server failed the request"


def describe_endpoint(artifact_location: str) -> str:
    """" (S3 endpoint http://...)" for an s3:// location with MLFLOW_S3_ENDPOINT_URL set, else ""."""
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    if artifact_location.startswith("s3://") and endpoint:
        return f" (S3 endpoint {redact_url(endpoint)})"
    if artifact_location.startswith("mlflow-artifacts:"):
        return " (proxied by the tracking server)"
    return ""
