"""Every end-to-end test is `slow`; each module also carries its kind, so a run can pick or skip a kind
(`-m team`, `-m "not ray"`). `full` marks what only `.ci/run --full` runs: the bench smoke runs and the
fault matrix's SIGINT and SIGTERM cases (every run keeps SIGKILL at every kill point)."""

from __future__ import annotations

import signal

import pytest

KINDS = {  # module -> its kind markers
    "test_faults": ("faults",),
    "test_faults_function": ("faults",),
    "test_startup_signals_e2e": ("faults",),
    "test_team_readme_e2e": ("team",),
    "test_team_s3_e2e": ("team",),
    "test_team_hosts_e2e": ("team",),
    "test_credentials_cli": ("team",),
    "test_artifact_probe_e2e": ("team",),
    "test_ray_e2e": ("ray",),
    "test_ui_e2e": ("browser",),
}
FULL_ONLY_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # the fault matrix's signals beyond SIGKILL


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" not in item.path.parts:
            continue
        item.add_marker(pytest.mark.slow)
        for kind in KINDS.get(item.path.stem, ()):
            item.add_marker(getattr(pytest.mark, kind))
        if item.path.parent.name == "bench":
            item.add_marker(pytest.mark.bench)
            item.add_marker(pytest.mark.full)
        callspec = getattr(item, "callspec", None)
        if item.get_closest_marker("faults") and callspec is not None and \
                callspec.params.get("signum") in FULL_ONLY_SIGNALS:
            item.add_marker(pytest.mark.full)
