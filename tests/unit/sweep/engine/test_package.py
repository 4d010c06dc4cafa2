"""sweep/engine: the application reaches Optuna through the study layer only (sweep/study/, SweepStudy)."""

from __future__ import annotations

import ast
from pathlib import Path

import sweep.engine

ENGINE = Path(sweep.engine.__file__).parent


def optuna_uses(path: Path) -> list[str]:
    """Every import of optuna (at the top, or inside a function) and every use of a name ``optuna`` in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"import {alias.name}" for alias in node.names if alias.name.split(".")[0] == "optuna"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "optuna":
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id == "optuna":
            found.append("the name optuna")
    return [f"{path.name}:{use}" for use in found]


def test_the_engine_imports_nothing_from_optuna():
    modules = sorted(ENGINE.glob("*.py"))
    assert {"loop.py", "jobs.py", "run.py", "ending.py", "sync.py"} <= {module.name for module in modules}
    assert [use for module in modules for use in optuna_uses(module)] == []


def test_the_check_sees_every_way_a_module_imports_optuna(tmp_path: Path):
    module = tmp_path / "module.py"
    module.write_text("import optuna\nfrom optuna.trial import TrialState\n\n\ndef f():\n    import optuna.samplers\n"
                      "    return optuna.Study\n", encoding="utf-8")
    assert optuna_uses(module) == ["module.py:import optuna", "module.py:from optuna.trial import ...",
                                   "module.py:import optuna.samplers", "module.py:the name optuna"]
