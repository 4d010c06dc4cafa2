"""The executor: and resources: config sections: parsed, checked in one line each, merged with the flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.config import config_from_yaml, load_config
from sweep.errors import SweepConfigError
from sweep.executors.spec import ExecutorSpec, Resources, parse_memory

FUNCTION = "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"


def config_file(folder: Path, body: str) -> Path:
    (folder / "train.py").write_text("def fit(trial):\n    return 1.0\n", encoding="utf-8")
    path = folder / "sweep.yaml"
    path.write_text(FUNCTION + body, encoding="utf-8")
    return path


def test_resources_map_to_ray_requests_with_memory_in_bytes(tmp_path: Path):
    config = load_config(config_file(tmp_path, "resources: {cpus: 2, gpus: 0.5, memory: 4GiB, custom: {TPU: 1}}\n"))
    assert config.resources.ray_options() == {"num_cpus": 2, "num_gpus": 0.5, "memory": 4 * 1024**3,
                                              "resources": {"TPU": 1}}
    assert Resources().ray_options() == {"num_cpus": 1}  # Ray's default for a task, said explicitly


@pytest.mark.parametrize(("text", "expected"), [("4GB", 4 * 1000**3), ("512MiB", 512 * 1024**2),
                                                ("1.5G", 1_500_000_000), (1024, 1024), ("100", 100)])
def test_memory_reads_si_and_iec_units(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("body", "named"), [
    ("resources: {gpus: -1}\n", "resources.gpus: must be a non-negative number"),
    ("resources: {gpus: 1.5}\n", "resources.gpus: above 1 it must be a whole number"),
    ("resources: {cpus: 0}\n", "resources.cpus: must be a positive number"),
    ("resources: {cpus: two}\n", "resources.cpus: must be a positive number"),
    ("resources: {memory: 4 gallons}\n", "resources.memory: '4 gallons' is not an amount of memory"),
    ("resources: {memory: 0}\n", "resources.memory: must be a positive number of bytes"),
    ("resources: {custom: {GPU: 1}}\n", "resources.custom.GPU: Ray's own resource"),
    ("resources: {custom: {TPU: 0}}\n", "resources.custom.TPU: must be a positive number"),
    ("resources: {disk: 1}\n", "resources: unknown key 'disk'"),
    ("resources: 4\n", "resources: expected a mapping"),
    ("executor: {on: k8s}\n", "executor.on: 'k8s' is unknown"),
    ("executor: {workers: 0}\n", "executor.workers: must be an integer from 1"),
    ("executor: {address: 10.0.0.5:6379}\n", "executor.address: only for on: ray"),
    ("executor: {on: ray, nodes: 3}\n", "executor: unknown key 'nodes'"),
], ids=lambda value: value.split(":")[0] if value.endswith("\n") else None)
def test_a_bad_resources_or_executor_section_is_one_line_naming_the_key(tmp_path: Path, body, named):
    with pytest.raises(SweepConfigError) as raised:
        load_config(config_file(tmp_path, body))
    message = str(raised.value)
    assert named in message and "\n" not in message and message.startswith(str(tmp_path / "sweep.yaml"))


def test_flags_go_over_the_executor_section(tmp_path: Path):
    path = config_file(tmp_path, "executor: {on: ray, address: 10.0.0.5:6379, workers: 4}\n")
    assert load_config(path).executor == ExecutorSpec("ray", "10.0.0.5:6379", 4)
    assert load_config(path, {"workers": 8}).executor == ExecutorSpec("ray", "10.0.0.5:6379", 8)
    assert load_config(path, {"address": "auto"}).executor == ExecutorSpec("ray", "auto", 4)
    # back on this machine the cluster's address no longer applies; the worker count still does
    assert load_config(path, {"on": "local"}).executor == ExecutorSpec("local", None, 4)
    assert load_config(config_file(tmp_path, ""), {"jobs": 3}).executor == ExecutorSpec("local", None, 3)


@pytest.mark.parametrize(("flags", "named"), [
    ({"on": "ray", "jobs": 2}, "--jobs: runs worker processes on this machine; with --on ray give --workers N"),
    ({"workers": 2}, "--workers: counts Ray tasks, for --on ray; on this machine give --jobs N"),
    ({"address": "10.0.0.5:6379"}, "--address: a Ray cluster's address, for --on ray; add --on ray"),
    ({"on": "slurm"}, "executor.on: 'slurm' is unknown"),
])
def test_flags_that_do_not_fit_the_executor_are_refused_naming_the_flag(tmp_path: Path, flags, named):
    with pytest.raises(SweepConfigError, match=r"^command-line flag: ") as raised:
        load_config(config_file(tmp_path, ""), flags)
    assert named in str(raised.value)


def test_resources_are_stored_with_the_sweep_and_the_executor_is_not(tmp_path: Path):
    config = load_config(config_file(tmp_path, "resources: {gpus: 1, memory: 2GB}\nexecutor: {on: ray}\n"))
    stored = config_from_yaml(config.to_yaml())
    assert stored.resources == Resources(gpus=1, memory=2_000_000_000)
    assert stored.executor == ExecutorSpec()  # where it runs is each invocation's own
    assert "executor" not in config.to_file_dict()
    assert "resources" not in load_config(config_file(tmp_path, "")).to_file_dict()
