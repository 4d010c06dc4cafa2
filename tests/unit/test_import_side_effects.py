"""Importing any module of sweep/ or trainer/ changes nothing outside it.

One fresh interpreter imports every module, dependencies first, and compares after each import:
os.environ, the SIGINT/SIGTERM handlers, the levels of the root, optuna and mlflow loggers,
warnings.filters, optuna's verbosity, and the event listeners an SQLAlchemy engine gets. Packages
are created empty first and their __init__ runs after their submodules, so each module is blamed
for its own effects, not for what its package's __init__ pulls in. The third-party libraries are
imported before the first snapshot: their own import-time behaviour is not ours to check.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import sweep
import trainer

ROOTS = (sweep, trainer)

CHILD = textwrap.dedent('''
    import importlib, importlib.util, json, logging, os, signal, sys, types, warnings

    import click, mlflow, numpy, optuna, rich, sqlalchemy, typer, yaml  # noqa: F401 (not ours to check)
    from sqlalchemy import create_engine
    from sqlalchemy.events import ConnectionEvents, PoolEvents

    order, packages = json.loads(sys.argv[1])

    def listeners():
        engine = create_engine("sqlite://")  # a new engine shows every class-level listener
        counts = {}
        for label, dispatch, events in (("Engine", engine.dispatch, ConnectionEvents),
                                        ("Pool", engine.pool.dispatch, PoolEvents)):
            for name in vars(events):
                collection = getattr(dispatch, name, None) if not name.startswith("_") else None
                if collection is not None:
                    counts[f"{label}.{name}"] = len(collection)
        engine.dispose()
        return counts

    def snapshot():
        return {
            "os.environ": dict(os.environ),
            "signal handlers": {name: repr(signal.getsignal(getattr(signal, name))) for name in ("SIGINT", "SIGTERM")},
            "logger levels": {name or "root": logging.getLogger(name).level for name in ("", "optuna", "mlflow")},
            "warnings.filters": [repr(entry) for entry in warnings.filters],
            "optuna verbosity": optuna.logging.get_verbosity(),
            "sqlalchemy listeners": listeners(),
        }

    def describe(key, before, after):
        if isinstance(before, dict):
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            return f"{key}: " + ", ".join(f"{k} {before.get(k, '(unset)')!r} -> {after.get(k, '(unset)')!r}"
                                          for k in changed)
        if isinstance(before, list):
            added, removed = [e for e in after if e not in before], [e for e in before if e not in after]
            return f"{key}: added {added}, removed {removed}"
        return f"{key}: {before!r} -> {after!r}"

    for name in packages:  # empty until their __init__ runs, in its turn
        spec = importlib.util.find_spec(name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, module)

    problems = []
    for name in order:
        before, loaded = snapshot(), set(sys.modules)
        if name in packages:
            module = sys.modules[name]
            module.__spec__.loader.exec_module(module)
        else:
            importlib.import_module(name)
        after = snapshot()
        also = sorted(m for m in set(sys.modules) - loaded if m.split(".")[0] in ("sweep", "trainer") and m != name)
        for key in before:
            if before[key] != after[key]:
                problems.append(f"importing {name}" + (f" (which loaded {', '.join(also)})" if also else "")
                                + " changed " + describe(key, before[key], after[key]))
    print(json.dumps(problems))
''')


def module_names() -> tuple[list[str], set[str]]:
    """Every module of the project, and which of them are packages (their __init__ is a module too)."""
    names: list[str] = []
    packages: set[str] = set()
    for root in ROOTS:
        names.append(root.__name__)
        packages.add(root.__name__)
        for info in pkgutil.walk_packages(root.__path__, f"{root.__name__}."):
            names.append(info.name)
            if info.ispkg:
                packages.add(info.name)
    return names, packages


def top_level_imports(name: str, known: set[str]) -> list[str]:
    """The project modules ``name`` imports when it is imported (not those imported inside functions)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append(node.module)
                found.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, (ast.If, ast.Try)):  # guarded imports still run at import time
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return [module for module in dict.fromkeys(found) if module in known and module != name]


def import_order(names: list[str]) -> list[str]:
    """Dependencies first (a package's __init__ imports its submodules, so they come before it)."""
    known = set(names)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return
        visiting.add(name)
        for dependency in top_level_imports(name, known):
            visit(dependency)
        order.append(name)

    for name in names:
        visit(name)
    return order


def test_importing_any_module_changes_nothing_outside_it(tmp_path):
    names, packages = module_names()
    assert {"sweep.cli", "sweep.errors", "trainer.train"} <= set(names), names
    order = import_order(names)
    assert sorted(order) == sorted(names)
    parents_first = sorted(packages, key=lambda name: name.count("."))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps([order, parents_first])], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    problems = json.loads(result.stdout.strip().splitlines()[-1])
    assert problems == [], "\n".join(problems)
