"""Which stores a Ray cluster's nodes can reach: files on this machine only serve a cluster on it."""

from __future__ import annotations

import pytest

from sweep.errors import SweepConfigError
from sweep.executors.reachable import address_host, check_reachable, cluster_address, on_this_machine
from sweep.locations import StorageLocation, TrackingLocation

HERE = {"gpu-box", "10.1.1.1"}


@pytest.mark.parametrize("address", [None, "auto", "local", "127.0.0.1:6379", "localhost:6379", "[::1]:6379",
                                     "ray://127.0.0.1:10001", "gpu-box:6379", "10.1.1.1:6379"])
def test_addresses_of_this_machine(address):
    assert on_this_machine(address, HERE)


@pytest.mark.parametrize("address", ["10.0.0.5:6379", "ray://head.example:10001", "head-svc:6379"])
def test_addresses_of_other_machines(address):
    assert not on_this_machine(address, HERE)


def test_address_host_and_ray_address_from_the_environment():
    assert address_host("ray://10.0.0.5:10001") == "10.0.0.5" and address_host("[fe80::1]:6379") == "fe80::1"
    assert cluster_address(None, {"RAY_ADDRESS": "10.0.0.5:6379"}) == "10.0.0.5:6379"
    assert cluster_address("auto", {"RAY_ADDRESS": "10.0.0.5:6379"}) == "auto"
    assert cluster_address(None, {}) is None


SERVER = TrackingLocation.resolve("http://mlflow:5000")
POSTGRES = StorageLocation.parse("postgresql://alice:secret@db/sweeps")


@pytest.mark.parametrize(("storage", "tracking", "expected"), [
    (StorageLocation.parse(None), SERVER, "storage: "),
    (StorageLocation.parse("sqlite:///optuna.db"), SERVER, "--storage postgresql://USER@HOST/DB"),
    (POSTGRES, TrackingLocation.resolve("sqlite:///mlflow.db"), "--tracking-uri http://HOST:5000"),
    (POSTGRES, TrackingLocation.resolve("./mlruns"), "tracking: ./mlruns is a store on this machine"),
])
def test_stores_in_files_are_refused_for_a_cluster_elsewhere_saying_what_to_use(storage, tracking, expected):
    with pytest.raises(SweepConfigError) as raised:
        check_reachable("the Ray cluster at 10.0.0.5:6379", storage, tracking)
    assert expected in str(raised.value) and "10.0.0.5:6379" in str(raised.value)
    assert "secret" not in str(raised.value)


def test_a_database_and_a_tracking_server_are_reachable_from_any_node():
    check_reachable("the Ray cluster at 10.0.0.5:6379", POSTGRES, SERVER)
    check_reachable("the Ray cluster at 10.0.0.5:6379", POSTGRES, TrackingLocation.resolve("databricks"))
