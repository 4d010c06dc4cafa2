"""Where a sweep's trial loops run: this process, `--jobs` worker processes, or tasks on a Ray cluster.

Every worker runs the same pull-based loop (`sweep worker`) on the sweep's study; an executor only
decides where those loops start. Nothing here imports Ray unless a sweep runs on it.

    spec.py         the executor: and resources: config sections, checked without Ray
    gpus.py         this machine's GPUs shared round-robin between --jobs workers
    reachable.py    which stores the nodes of a Ray cluster can reach
    local.py        --jobs: worker processes on this machine
    ray_cluster.py  --on ray: the workers as Ray tasks (the only module that imports Ray)
    task.py         what one Ray task runs on its node
    lifetime.py     a worker process that dies with the process that started it
    opening.py      check_executor, open_executor: the executor a spec asks for, refused early when it cannot work

The names below are imported on first use: the config (sweep/config.py) reads spec.py, and `sweep best/ls/show`
import the config without paying for the executors (multiprocessing, the tracking transport).
"""

from __future__ import annotations

from sweep.lazy import lazy_exports

_EXPORTS = {  # name -> the module defining it
    "Executor": "sweep.executors.base",
    "ExecutorSpec": "sweep.executors.spec",
    "Pool": "sweep.executors.base",
    "Resources": "sweep.executors.spec",
    "check_executor": "sweep.executors.opening",
    "check_executor_packages": "sweep.executors.spec",
    "open_executor": "sweep.executors.opening",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
