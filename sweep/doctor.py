"""`sweep doctor`: from this host, can I join the sweep? One check per store, then the versions.

Each check is a line for the user: passed with what it found, or failed with the one-line error that
names the fix. A check that needs an earlier one (the artifact store needs the tracking server) fails
with that reason rather than being skipped: the command passes only when everything was verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sweep.errors import SweepError, first_line
from sweep.locations import TrackingLocation
from sweep.provenance import PACKAGES, installed_versions

T = TypeVar("T")
COMPARED = tuple(name for name in PACKAGES if name != "numpy")  # what the trials' results depend on


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str  # what was found, or what is wrong and how to fix it


def run_checks(*, storage: str | None, tracking_uri: str | None, name: str | None) -> list[Check]:
    """Every check, in the order a worker meets the stores: storage, tracking, artifacts, versions."""
    from sweep.study.health import check_storage
    from sweep.tracking.health import check_artifact_store, check_tracking, local_store_missing, sweep_versions

    checks: list[Check] = []
    found = attempt(checks, "optuna storage", lambda: check_storage(storage, name), lambda health: health.summary)
    attrs = found.sweep if found is not None else None
    tracking = TrackingLocation.resolve(tracking_uri, stored=attrs.stored_tracking if attrs else None)
    uri = tracking.secret_url
    reached = attempt(checks, "mlflow tracking", lambda: check_tracking(uri)) is not None
    experiment = attrs.experiment if attrs is not None else None
    if reached and local_store_missing(uri):
        checks.append(Check("artifact store", True, "a local folder beside the database, made by `sweep run`"))
    elif reached:
        attempt(checks, "artifact store", lambda: check_artifact_store(uri, experiment))
    else:
        checks.append(Check("artifact store", False, "not checked: the tracking store cannot be used"))
    if attrs is None or attrs.parent_run_id is None:
        checks.append(Check("versions", True, f"{local_versions_text()} (no sweep to compare with)"))
    elif not reached:
        checks.append(Check("versions", False, "not checked: the sweep's parent run is in the tracking store"))
    else:
        parent_run_id = attrs.parent_run_id
        attempt(checks, "versions", lambda: compare_versions(sweep_versions(uri, parent_run_id), found.sweep_name))
    return checks


def attempt(checks: list[Check], name: str, check: Callable[[], T], describe: Callable[[T], str] = str) -> T | None:
    """Run one check; its result (None when it failed), and its line added to ``checks``."""
    try:
        result = check()
    except SweepError as error:
        checks.append(Check(name, False, first_line(error)))
        return None
    except Exception as error:  # a doctor that crashes tells nothing: any failure is that check's line
        checks.append(Check(name, False, f"{type(error).__name__}: {first_line(error)}"))
        return None
    checks.append(Check(name, True, describe(result)))
    return result


def local_versions_text() -> str:
    local = installed_versions()
    return ", ".join(f"{package} {local[package]}" for package in COMPARED)


def compare_versions(started_with: dict[str, str], sweep_name: str | None) -> str:
    """The local versions of the packages the results depend on against the sweep's; SweepError on a difference."""
    local = installed_versions()
    differ = [package for package in COMPARED
              if started_with.get(package) not in (None, local[package])]
    if differ:
        wanted = " ".join(f"'{package}=={started_with[package]}'" for package in differ)
        here = ", ".join(f"{package} {local[package]} here, {started_with[package]} in the sweep" for package in differ)
        raise SweepError(f"{here}; pip install {wanted} before joining")
    return f"{local_versions_text()}, as sweep {sweep_name!r} was started with"
