"""`sweep storage-proxy` for tests: a real proxy process on a free port."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import e2e


@contextmanager
def storage_proxy(folder: Path, storage: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`sweep storage-proxy` serving ``storage`` on a free port: (the grpc:// URL it printed, its process)."""
    port = e2e.free_port()
    process = subprocess.Popen([*e2e.SWEEP, "storage-proxy", "--storage", storage, "--port", str(port)], cwd=folder,
                               env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = f"grpc://127.0.0.1:{port}"
        assert f"workers use --storage {url}" in line, (line, process.stderr.read() if process.stderr else "")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
