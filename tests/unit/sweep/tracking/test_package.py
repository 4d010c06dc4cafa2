"""The sweep.tracking package: its exported names, and imports that load no mlflow and change nothing."""

from __future__ import annotations

from pathlib import Path

import sweep.tracking
from tests.unit.sweep.test_exports import assert_ok, run_python


def test_the_package_exports_only_the_loops_light_names():
    assert sorted(sweep.tracking.__all__) == ["Recorder", "TrackingReport"]


def test_importing_every_tracking_module_changes_no_environment_and_adds_no_listener(tmp_path: Path):
    assert_ok(run_python("""
        import os
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        before = dict(os.environ)
        import sweep.tracking
        assert "mlflow" not in __import__("sys").modules, "import sweep.tracking imported mlflow"
        import sweep.tracking.artifacts, sweep.tracking.children, sweep.tracking.client, sweep.tracking.parent
        import sweep.tracking.publishing, sweep.tracking.server, sweep.tracking.store, sweep.tracking.tracker
        import sweep.tracking.training_run
        from sweep.tracking.settings import fast_sqlite
        assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
        assert not event.contains(Engine, "connect", fast_sqlite)
    """, tmp_path))


def test_tracking_knows_no_trainer_but_what_the_trainer_says():
    # the published model's kind comes with the request (ModelPublishing): no flag of the config is read here
    folder = Path(sweep.tracking.__file__).parent
    readers = [path.name for path in folder.glob("*.py") if "builtin" in path.read_text(encoding="utf-8")]
    assert readers == []
    assert not [path.name for path in folder.glob("*.py") if "pyfunc_model.py" in path.read_text(encoding="utf-8")]
