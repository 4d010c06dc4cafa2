"""The layers point one way: no module of trainer/ imports the sweep, mlflow or optuna, not even lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import trainer

FORBIDDEN = ("sweep", "mlflow", "optuna")
TRAINER_DIR = Path(trainer.__file__).parent


def imported_modules(source: str) -> set[str]:
    """Every absolute module name an ``import`` or ``from ... import`` names, at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_trainer_module_imports_sweep_mlflow_or_optuna():
    modules = sorted(TRAINER_DIR.rglob("*.py"))
    assert len(modules) >= 7, modules  # the walk found the package
    offending = {
        str(path.relative_to(TRAINER_DIR.parent)): sorted(
            name for name in imported_modules(path.read_text(encoding="utf-8"))
            if name.split(".")[0] in FORBIDDEN)
        for path in modules}
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_import_check_sees_lazy_and_from_imports():
    source = "import os\ndef f():\n    from sweep.tracking import x\n    import mlflow.client\n"
    assert imported_modules(source) == {"os", "sweep.tracking", "mlflow.client"}
