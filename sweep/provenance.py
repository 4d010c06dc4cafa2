"""What makes a sweep reproducible, as parent-run tags: versions, the git commit, the Python."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("sweep", "mlflow", "optuna", "numpy")


def collect(folder: Path | None = None) -> dict[str, str]:
    tags = {f"version.{name}": version for name, version in installed_versions().items()}
    tags["version.python"] = platform.python_version()
    commit = git_commit(folder or Path.cwd())
    if commit:
        tags["git.commit"] = commit
    return tags


def installed_versions() -> dict[str, str]:
    """Package -> installed version ("unknown" when not installed), for PACKAGES."""
    return {name: _version(name) for name in PACKAGES}


def git_commit(folder: Path) -> str | None:
    """HEAD of the working folder's repository (with '+dirty' when it has changes), or None."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
