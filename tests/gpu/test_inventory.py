"""The GPU inventory: simulated, without NVML, with a failing driver, and (on a GPU) real."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

from rigd.gpu import _inventory, inventory

RIGD = [sys.executable, "-m", "rigd"]
ROOT = Path(__file__).resolve().parents[2]


def run_gpus(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # RIGD_ADDRESS: a directory with no daemon, so the command asks NVML itself
    # even while the user's own `rigd serve` runs.
    with tempfile.TemporaryDirectory() as nowhere:
        return subprocess.run(
            [*RIGD, "gpus"],
            capture_output=True,
            text=True,
            env={**os.environ, "RIGD_ADDRESS": nowhere, **env},
            check=False,
        )


def test_simulated_gpus_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "2")
    gpus = inventory()
    assert [g.index for g in gpus] == [0, 1]
    assert all(g.simulated for g in gpus)
    assert len({g.uuid for g in gpus}) == 2
    assert all(g.uuid.startswith("GPU-") for g in gpus)
    assert gpus[1].pci_bus_id == "00000000:02:00.0"
    out = run_gpus({"RIGD_FAKE_GPUS": "2"})
    assert out.returncode == 0
    assert out.stdout.count("Simulated GPU (simulated)") == 2
    assert gpus[0].uuid in out.stdout


def test_a_bad_fake_count_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "two")
    with pytest.raises(ValueError, match=r"RIGD_FAKE_GPUS='two' must be a number"):
        inventory()
    out = run_gpus({"RIGD_FAKE_GPUS": "-1"})
    assert out.returncode == 2
    assert "must be 0 or more" in out.stderr


def test_without_nvml_the_inventory_is_empty_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RIGD_FAKE_GPUS", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    monkeypatch.setattr(_inventory, "_warned", False)
    with caplog.at_level(logging.INFO, logger="rigd.gpu._inventory"):
        assert inventory() == ()
        assert inventory() == ()
    lines = [r for r in caplog.records if "no GPUs" in r.getMessage()]
    assert len(lines) == 1
    assert "NVML is not installed" in lines[0].getMessage()


def test_a_driver_that_fails_gives_an_empty_inventory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class NVMLError(Exception):
        pass

    def fail() -> None:
        raise NVMLError("Driver Not Loaded")

    fake = types.SimpleNamespace(NVMLError=NVMLError, nvmlInit=fail)
    monkeypatch.delenv("RIGD_FAKE_GPUS", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(_inventory, "_warned", False)
    with caplog.at_level(logging.INFO, logger="rigd.gpu._inventory"):
        assert inventory() == ()
    assert "Driver Not Loaded" in caplog.text
    assert "is the NVIDIA driver loaded?" in caplog.text


@pytest.mark.gpu
def test_nvml_lists_the_real_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pynvml", reason="needs nvidia-ml-py (the gpu extra)")
    monkeypatch.delenv("RIGD_FAKE_GPUS", raising=False)
    gpus = inventory()
    if not gpus:
        pytest.skip("no NVIDIA GPU on this machine")
    for gpu in gpus:
        assert gpu.uuid.startswith(("GPU-", "MIG-"))
        assert gpu.memory_total > 0
        assert 0 <= gpu.memory_free <= gpu.memory_total
        assert not gpu.simulated
    out = run_gpus({})
    assert gpus[0].uuid in out.stdout


def test_cuda_uuids_are_spelled_as_nvml_spells_them() -> None:
    from rigd.gpu import cuda_uuid

    raw = bytes.fromhex("8f1c9e2ab3d44e7f9a0b1c2d3e4f5061")
    assert cuda_uuid(raw) == "GPU-8f1c9e2a-b3d4-4e7f-9a0b-1c2d3e4f5061"


def test_without_cupy_numpy_does_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from rigd.gpu import array_module, check_visible_devices

    monkeypatch.setitem(sys.modules, "cupy", None)
    assert array_module(has_gpu=True) is np
    assert array_module(has_gpu=False) is np
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-00000000-0000-4000-8000-000000000000")
    check_visible_devices()  # nothing to check without CuPy: no error


@pytest.mark.gpu
def test_cuda_devices_are_the_assigned_gpus() -> None:
    pytest.importorskip("cupy", reason="needs CuPy (the gpu extra)")
    pytest.importorskip("pynvml", reason="needs nvidia-ml-py (the gpu extra)")
    import rigd

    gpus = inventory()
    if not gpus:
        pytest.skip("no NVIDIA GPU on this machine")

    @rigd.remote(num_gpus=1)
    class OnGpu:
        def uuid(self) -> str:
            from rigd.gpu import cuda_device_uuid

            return cuda_device_uuid(0)

    rigd.init()
    actor = OnGpu.remote()
    assert rigd.get(actor.uuid.remote()) in {g.uuid for g in gpus}


class _Runtime:
    """CuPy's ``cupy.cuda.runtime`` as far as the UUID check reads it."""

    def __init__(self, uuids: list[bytes], buses: list[str]) -> None:
        self.uuids, self.buses = uuids, buses

    def getDeviceCount(self) -> int:
        return len(self.uuids)

    def getDeviceProperties(self, device: int) -> dict[str, bytes]:
        return {"uuid": self.uuids[device]}

    def deviceGetPCIBusId(self, device: int) -> str:
        return self.buses[device]


def _fake_cupy(monkeypatch: pytest.MonkeyPatch, runtime: _Runtime) -> None:
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    monkeypatch.delenv("RIGD_FAKE_GPUS", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", cupy)


H200_UUID = "GPU-1eec000e-cd65-b4f2-906e-432f9c7bd501"


def _gpu(uuid: str, bus: str) -> _inventory.GpuInfo:
    fake = _inventory._simulated("1")[0]
    return dataclasses.replace(fake, uuid=uuid, pci_bus_id=bus, simulated=False)


def test_a_uuid_cut_at_a_zero_byte_is_found_by_its_pci_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen on an H200: CuPy returned b"\x1e\xec" for GPU-1eec000e-...: the
    # 16 bytes as a C string, cut at the first zero byte.
    from rigd.gpu import _cuda, check_visible_devices, cuda_device_uuid

    _fake_cupy(monkeypatch, _Runtime([bytes.fromhex("1eec")], ["0000:00:06.0"]))
    monkeypatch.setattr(_cuda, "inventory", lambda: (_gpu(H200_UUID, "00000000:00:06.0"),))
    assert cuda_device_uuid(0) == H200_UUID
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", H200_UUID)
    check_visible_devices()  # the assigned GPU: accepted


def test_the_uuid_check_refuses_a_gpu_that_was_not_assigned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rigd.gpu import check_visible_devices

    other = bytes.fromhex("8f1c9e2ab3d44e7f9a0b1c2d3e4f5061")
    _fake_cupy(monkeypatch, _Runtime([other], ["0000:00:07.0"]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", H200_UUID)
    with pytest.raises(RuntimeError, match=r"CUDA device 0 is GPU-8f1c9e2a-.*but rigd assigned"):
        check_visible_devices()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{H200_UUID},GPU-00000000-0000-4000-8000-0")
    with pytest.raises(RuntimeError, match="CUDA sees 1 device"):
        check_visible_devices()


def test_a_short_uuid_of_a_gpu_nvml_does_not_know_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rigd.gpu import _cuda, cuda_device_uuid, cuda_uuid

    _fake_cupy(monkeypatch, _Runtime([b"\x1e"], ["0000:00:06.0"]))
    monkeypatch.setattr(_cuda, "inventory", lambda: ())
    with pytest.raises(RuntimeError, match=r"not in NVML's inventory; is nvidia-ml-py installed"):
        cuda_device_uuid(0)
    with pytest.raises(ValueError, match="16 bytes, got 1"):
        cuda_uuid(b"\x1e")


@pytest.mark.gpu
def test_on_a_real_gpu_a_wrong_assignment_is_refused() -> None:
    pytest.importorskip("cupy", reason="needs CuPy (the gpu extra)")
    gpus = inventory()
    if not gpus:
        pytest.skip("no NVIDIA GPU on this machine")
    check = "from rigd.gpu import check_visible_devices; check_visible_devices()"
    wrong = "GPU-00000000-0000-4000-8000-000000000000"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": wrong, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("RIGD_FAKE_GPUS", None)
    refused = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "refusing to run on GPUs that were not assigned" in refused.stderr
    env["CUDA_VISIBLE_DEVICES"] = gpus[0].uuid
    accepted = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, check=False
    )
    assert accepted.returncode == 0, accepted.stderr
