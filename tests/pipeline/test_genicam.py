"""GenICamCamera on Aravis's GigE Vision simulator, over real GVCP and GVSP on loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

import rigd
from rigd._exceptions import RigdError
from rigd.pipeline import Pipeline, list_cameras, plan_pipeline
from tests.helpers import wait_until
from tests.pipeline.camera import DEVICE_ID, Simulator
from tests.pipeline.sources import ledger, read_stream, run, write

#: ``frame_info``'s status codes, in order (README, GenICamCamera).
FRAME_STATUS = (
    "delivered",
    "missing_packets",
    "timeout",
    "size_mismatch",
    "wrong_packet_id",
    "aborted",
    "cleared",
    "unknown",
    "ring_full",
    "underrun",
)

PIPELINE = """
name: genicam
actors:
  - name: camera
    class: rigd.pipeline.GenICamCamera
    options: {device_id: @DEVICE@, @OPTIONS@}
record: [camera.frames, camera.frame_info]
recording: {directory: "@DATA@"}
"""


def test_the_simulated_camera_is_listed_with_id_model_serial_interface_and_address(
    simulator: Simulator,
) -> None:
    cameras = {c.id: c for c in list_cameras()}

    camera = cameras[DEVICE_ID]
    assert (camera.vendor, camera.model, camera.serial) == ("Aravis", "Fake", "GV01")
    assert (camera.interface, camera.address) == ("GigEVision", "127.0.0.1")


def test_frames_keep_unique_ids_across_the_gige_block_id_wrap(
    simulator: Simulator, tmp_path: Path
) -> None:
    # The simulator's block ids start at 65400 (Aravis tests its own wrap
    # there), so 300 frames cross 65535 -> 1.
    path = write(
        tmp_path,
        PIPELINE,
        device=DEVICE_ID,
        options="width: 128, height: 96, frame_rate: 200, n_frames: 300",
    )

    report = run(path)

    frames = read_stream(report.files[0], "camera")
    info = read_stream(report.files[0], "camera_frame_info")
    delivered = info["frames"][info["frames"][:, 3] == 0]
    ids = frames["frame_id"]
    assert frames["frames"].shape[1:] == (96, 128)
    assert len(ids) == 300
    assert len(set(ids.tolist())) == 300
    assert np.all(np.diff(ids.astype(np.int64)) > 0)
    camera_ids = delivered[:, 0].astype(np.int64)
    # Near the wrap, not at it: on a loaded machine the frame-info ring may
    # drop a few entries (ring_full, in its ledger), and 65535 may be one.
    assert camera_ids.max() > 65500, "the block ids must come up to the wrap"
    assert camera_ids.min() < 300, "the block ids must wrap"
    # Each frame's camera id is its rigd id moved by one offset, modulo the wrap.
    unwrapped = (camera_ids - camera_ids[0]) % 65535 + ids[0]
    assert list(unwrapped) == list(info["frame_id"][info["frames"][:, 3] == 0])
    assert np.all(delivered[:, 1] > 0), "every frame has the camera's hardware timestamp"


def test_the_features_applied_are_read_back_into_the_run_metadata(
    simulator: Simulator, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        PIPELINE,
        device=DEVICE_ID,
        options=(
            "pixel_format: Mono16, offset_x: 8, offset_y: 4, width: 128, height: 96, "
            "exposure_us: 2500, gain: 3, frame_rate: 100, binning: 1, n_frames: 5"
        ),
    )

    report = run(path)

    stream = read_stream(report.files[0], "camera")
    attrs = stream["attrs"]
    assert stream["frames"].shape == (5, 96, 128)
    assert stream["frames"].dtype == np.uint16
    assert attrs["camera.PixelFormat"] == "Mono16"
    assert (attrs["camera.OffsetX"], attrs["camera.OffsetY"]) == (8, 4)
    assert (attrs["camera.Width"], attrs["camera.Height"]) == (128, 96)
    assert attrs["camera.ExposureTime"] == 2500.0
    assert attrs["camera.Gain"] == 3.0
    assert attrs["camera.AcquisitionFrameRate"] == 100.0
    assert attrs["camera.TriggerMode"] == "Off"
    assert attrs["camera.DeviceSerialNumber"] == "GV01"


def test_frame_info_columns_are_named_with_units_in_the_run_file(
    simulator: Simulator, tmp_path: Path
) -> None:
    # Was: field0..field3 (h5py, silx and h5dump showed no names).
    path = write(tmp_path, PIPELINE, device=DEVICE_ID, options="width: 64, height: 64, n_frames: 5")

    report = run(path)

    names = ["camera_frame_id", "hardware_timestamp_ns", "driver_timestamp_ns", "status"]
    with h5py.File(report.files[0], "r") as f:
        info = f["camera_frame_info/frames"]
        assert list(info.attrs["field_names"]) == names
        assert list(info.attrs["field_units"]) == ["", "ns", "ns", ""]
        assert info.shape == (5, 4)  # the N x 4 layout readers index stays
        data = f["entry/camera_frame_info"]
        assert data.attrs["signal"] == "camera_frame_id"
        for k, name in enumerate(names):
            np.testing.assert_array_equal(data[name][:], info[:, k])
        assert data["driver_timestamp_ns"].attrs["units"] == "ns"
        assert "block id" in data["camera_frame_id"].attrs["long_name"]
        host = data["driver_timestamp_ns"][:].astype(np.int64)
        recorded = f["camera_frame_info/timestamp_ns"][:].astype(np.int64)
    # The driver's time is the host's clock (ns since the epoch): within a
    # second of when the frame was recorded.
    assert np.all(np.abs(recorded - host) < 1_000_000_000)
    if shutil.which("h5dump"):
        shown = subprocess.run(
            ["h5dump", "-H", "-g", "/entry/camera_frame_info", report.files[0]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert all(f'DATASET "{name}"' in shown for name in names), shown


def test_a_software_trigger_produces_exactly_the_triggered_frames(
    simulator: Simulator, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        PIPELINE,
        device=DEVICE_ID,
        options="width: 128, height: 128, trigger: software, n_frames: 3",
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    camera = pipeline.handle("camera")

    try:
        for k in range(1, 4):
            rigd.get(camera.trigger.remote(), timeout=10)
            wait_until(
                lambda k=k: rigd.get(camera.status.remote(), timeout=10)["frames_delivered"] >= k,
                timeout=10,
                what=f"triggered frame {k}",
            )
        assert pipeline.wait(30)
    finally:
        report = pipeline.stop()

    info = read_stream(report.files[0], "camera_frame_info")["frames"]
    assert report.frames["camera"] == 3
    # Consecutive camera ids: the camera took no frame between the triggers.
    assert list(np.diff(info[:, 0].astype(np.int64)) % 65535) == [1, 1]


def test_buffers_the_driver_could_not_fill_are_in_the_ledger_with_their_reason(
    simulator: Simulator, tmp_path: Path
) -> None:
    # The simulator sends no GVSP packet in 100 of a thousand: at 64x64 (a
    # leader, 3 data packets and a trailer) about 4 frames in 10 miss one,
    # and Aravis hands their buffers back as missing_packets (or timeout).
    simulator.kill()
    simulator.start(lost_per_thousand=100)
    path = write(
        tmp_path,
        PIPELINE,
        device=DEVICE_ID,
        options="width: 64, height: 64, frame_rate: 200, n_frames: 20, timeout_s: 0.5",
    )

    report = run(path)

    stream = read_stream(report.files[0], "camera")
    info = read_stream(report.files[0], "camera_frame_info")
    recorded = set(stream["frame_id"].tolist())
    noted = [
        (k, reason) for first, count, reason in ledger(stream) for k in range(first, first + count)
    ]
    noted_ids = [k for k, _ in noted]
    assert len(recorded) == 20
    # Aravis names an incomplete buffer missing_packets, or timeout when the
    # trailer is lost too (more often on a loaded machine).
    assert {"missing_packets", "timeout"} & {reason for _, reason in noted}
    # Every id up to the last is recorded or in the ledger, once.
    assert len(noted_ids) == len(set(noted_ids))
    assert not recorded & set(noted_ids)
    assert recorded | set(noted_ids) == set(range(max(recorded | set(noted_ids)) + 1))
    # The ledger says for each id what frame_info says (its status code; ids
    # never handed over, underrun, have no frame_info row).
    codes = dict(enumerate(FRAME_STATUS))
    status = dict(zip(info["frame_id"].tolist(), info["frames"][:, 3].tolist(), strict=True))
    assert [codes[status[k]] if k in status else "underrun" for k, _ in noted] == [
        reason for _, reason in noted
    ]


def test_the_camera_killed_mid_run_ends_the_run_and_the_file_is_sealed(
    simulator: Simulator, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        PIPELINE,
        device=DEVICE_ID,
        options="width: 128, height: 128, frame_rate: 100, timeout_s: 0.5",
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()

    try:
        camera = pipeline.handle("camera")
        wait_until(
            lambda: rigd.get(camera.status.remote(), timeout=10)["frames_delivered"] >= 10,
            timeout=20,
            what="frames from the camera",
        )
        simulator.kill()
        assert pipeline.wait(30), "the run did not end after the camera was lost"
        assert rigd.get(camera.status.remote(), timeout=10)["lost"] is True
    finally:
        report = pipeline.stop()

    stream = read_stream(report.files[0], "camera")
    assert stream["attrs"]["run_state"] == "complete"
    assert len(stream["frame_id"]) >= 10


def test_a_wrong_device_id_fails_the_load_listing_the_cameras_found(
    simulator: Simulator, tmp_path: Path
) -> None:
    path = write(tmp_path, PIPELINE, device="No-Such-Camera", options="n_frames: 1")

    with pytest.raises(RigdError) as info:
        Pipeline(plan_pipeline(path)).start()

    assert str(info.value) == (
        "actor 'camera' could not open its device: ValueError: no GenICam camera "
        "'No-Such-Camera'; found 'Aravis-Fake-GV01' (Fake, 127.0.0.1); set device_id to one "
        "of these ids"
    )


def test_a_feature_value_out_of_range_fails_the_load_naming_the_range(
    simulator: Simulator, tmp_path: Path
) -> None:
    path = write(tmp_path, PIPELINE, device=DEVICE_ID, options="exposure_us: 1, n_frames: 1")

    with pytest.raises(RigdError, match=r"ExposureTime = 1 is out of the camera's range \[10, "):
        Pipeline(plan_pipeline(path)).start()


def test_a_pixel_format_rigd_does_not_take_is_refused_at_planning(tmp_path: Path) -> None:
    path = write(tmp_path, PIPELINE, device=DEVICE_ID, options="pixel_format: Mono12Packed")

    with pytest.raises(Exception, match=r"line 6, actors\[0\].options: camera: pixel_format"):
        plan_pipeline(path)


def test_planning_a_camera_pipeline_does_not_open_the_camera(tmp_path: Path) -> None:
    # No simulator runs: planning must not need the camera.
    path = write(tmp_path, PIPELINE, device=DEVICE_ID, options="width: 64")

    plan = plan_pipeline(path)

    assert plan.deferred == ("camera", "recorder")
    assert plan.rings == ()


def test_gigevision_block_ids_unwrap_past_65535_and_skipped_ids_are_counted() -> None:
    from rigd.pipeline._genicam_options import FrameIds

    ids = FrameIds(gigevision=True, base=0)

    got = [ids.unwrap(raw) for raw in (65534, 65535, 1, 3)]
    ids.restart(ids.last_id + 1)  # the camera came back: its ids start anew
    after = [ids.unwrap(raw) for raw in (7, 8)]

    assert got == [(0, 0), (1, 0), (2, 0), (4, 1)]
    assert after == [(5, 0), (6, 0)]


def test_a_camera_behind_a_slow_lossless_reader_drops_with_ring_full_in_the_ledger(
    simulator: Simulator, tmp_path: Path
) -> None:
    # A reader at 50 frames/s, 4 slots, behind a 200 fps camera: the camera
    # is not held back; its frames with no free slot are dropped and said so.
    path = write(
        tmp_path,
        PIPELINE.replace(
            "record:", "links:\n  - {link: camera.frames -> viewer.frames, slots: 4}\nrecord:"
        ).replace(
            "actors:",
            "actors:\n  - {name: viewer, class: tests.pipeline.actors.SlowViewer,"
            " options: {delay: 0.02}}",
        ),
        device=DEVICE_ID,
        options="width: 64, height: 64, frame_rate: 200, n_frames: 120",
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert pipeline.wait(60), "the camera did not finish at its own rate"
        drops = rigd.get(pipeline.handle("camera").status.remote(), timeout=10)["drops"]
    finally:
        report = pipeline.stop()
    frames = read_stream(report.files[0], "camera")
    ids = frames["frame_id"].astype(np.int64)
    assert np.all(np.diff(ids) > 0)
    # n_frames counts the frames delivered (in the file); the drops come on top.
    assert len(ids) == 120
    ledger = frames["dropped"]
    full = int(ledger[ledger["reason"] == b"ring_full"]["count"].sum())
    assert full == drops["ring_full"] > 0, (ledger, drops)
    # Every id the camera gave is recorded or in the ledger, once.
    noted = {int(r["first_id"]) + k for r in ledger for k in range(int(r["count"]))}
    assert noted.isdisjoint(ids.tolist())
    assert noted | set(ids.tolist()) == set(range(len(noted) + len(ids)))
