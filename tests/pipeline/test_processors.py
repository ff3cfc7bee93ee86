"""The processors (MotionCorrection, DeltaFOverF, Bin, RoiTraces) against independent
references, on numpy always and on CuPy where a GPU is there (the ``gpu`` marker).

The algorithm tests drive a processor's own ``prepare``/``process``/``flush`` in
this process (what its actor runs per frame); the pipeline tests run the actors
in their own processes, linked by rings, recorded to HDF5.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from scipy import ndimage

from rigd.pipeline import (
    Bin,
    DeltaFOverF,
    FrameProcessor,
    MotionCorrection,
    PhaseCorrelation,
    Pipeline,
    RoiTraces,
    plan_pipeline,
)

SIZE = 128
MARGIN = 16


def scene(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A field of cell-sized blobs, wider than a frame so shifted frames have real edges."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(size + 2 * MARGIN,) * 2), 2.0)
    return field / field.std() * 300 + 2000


def view(field: np.ndarray, shift: tuple[float, float], noise: float, rng: Any) -> np.ndarray:
    """The frame a camera sees when the sample moved by ``shift`` pixels (cubic, not periodic)."""
    moved = ndimage.shift(field, shift, order=3, mode="nearest")[MARGIN:-MARGIN, MARGIN:-MARGIN]
    return moved + rng.normal(0, noise, moved.shape)


def drive(
    processor: FrameProcessor,
    frames: list[np.ndarray] | np.ndarray,
    xp: Any = np,
    fps: float = 100.0,
    ids: list[int] | None = None,
) -> list[Any]:
    """Run a processor's per-frame code here, as its actor does: every emission, in order."""
    processor.xp = xp
    processor.prepare(tuple(frames[0].shape), np.dtype(frames[0].dtype))
    out = []
    for k, frame in enumerate(frames):
        frame_id = k if ids is None else ids[k]
        stamp = 1_000_000_000 + round(frame_id * 1e9 / fps)
        out.extend(processor.process(xp.asarray(frame), frame_id, stamp))
    out.extend(processor.flush())
    return [(e.frame_id, e.timestamp_ns, {k: _host(v) for k, v in e.outputs.items()}) for e in out]


def _host(array: Any) -> np.ndarray:
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else array


SHIFTS = [(1.3, -2.7), (0.25, 0.6), (-5.45, 3.05), (0.0, 0.0), (2.05, 2.95), (-0.35, -0.8)]


# -- motion correction ---------------------------------------------------------------


@pytest.mark.parametrize("normalization", ["phase", "none"])
def test_sub_pixel_shifts_are_recovered_within_a_tenth_of_a_pixel(normalization: str) -> None:
    rng = np.random.default_rng(1)
    field = scene()
    template = field[MARGIN:-MARGIN, MARGIN:-MARGIN]
    reg = PhaseCorrelation(np, (SIZE, SIZE), upsample=20, normalization=normalization)
    reg.set_template(template)
    for true in SHIFTS:
        frame = view(field, true, noise=30, rng=rng)
        dy, dx, peak = reg.register(reg.spectrum(frame))
        # The shift that registers the frame undoes the motion.
        assert abs(float(dy) + true[0]) < 0.1, (true, float(dy))
        assert abs(float(dx) + true[1]) < 0.1, (true, float(dx))
        assert 0.3 < float(peak) <= 1.0


def test_shifts_agree_with_scikit_image_phase_cross_correlation() -> None:
    from skimage.registration import phase_cross_correlation

    rng = np.random.default_rng(2)
    template = scene(3)[:SIZE, :SIZE]
    spectrum = np.fft.fft2(template)
    ky = np.fft.fftfreq(SIZE)[:, None]
    kx = np.fft.fftfreq(SIZE)[None, :]
    # Shifted by the Fourier shift theorem (periodic): where scikit-image's
    # method, which does not taper, is exact too.
    reg = PhaseCorrelation(np, (SIZE, SIZE), upsample=20, taper=0, smooth_sigma=0)
    reg.set_template(template)
    for true in SHIFTS:
        ramp = np.exp(-2j * np.pi * (ky * true[0] + kx * true[1]))
        frame = np.fft.ifft2(spectrum * ramp).real + rng.normal(0, 5, template.shape)
        ours = reg.register(reg.spectrum(frame))
        theirs, _, _ = phase_cross_correlation(template, frame, upsample_factor=20)
        assert np.allclose([float(ours[0]), float(ours[1])], theirs, atol=0.1), (ours, theirs)
        assert np.allclose(theirs, [-true[0], -true[1]], atol=0.1)


def test_corrected_frames_match_the_template_and_the_shifts_are_recorded(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    field = scene(4)
    template = field[MARGIN:-MARGIN, MARGIN:-MARGIN]
    np.save(tmp_path / "template.npy", template)
    frames = [view(field, s, noise=10, rng=rng).astype(np.uint16) for s in SHIFTS]
    out = drive(MotionCorrection(template=str(tmp_path / "template.npy")), frames)
    assert [frame_id for frame_id, _, _ in out] == list(range(len(SHIFTS)))
    for (_, _, result), true in zip(out, SHIFTS, strict=True):
        y, x, _ = result["shifts"]
        assert abs(y + true[0]) < 0.1
        assert abs(x + true[1]) < 0.1
        corrected = result["frames"]
        assert corrected.dtype == np.float32
        assert corrected.shape == (SIZE, SIZE)
        inner = (slice(8, -8), slice(8, -8))
        # Only the noise (sd 10, and the uint16 rounding) is left.
        assert np.abs(corrected[inner] - template[inner]).mean() < 15


def test_the_template_is_built_from_the_first_frames_and_they_go_out_corrected() -> None:
    rng = np.random.default_rng(5)
    field = scene(5)
    jitter = [(rng.uniform(-3, 3), rng.uniform(-3, 3)) for _ in range(12)]
    frames = [view(field, s, noise=10, rng=rng) for s in jitter]
    out = drive(MotionCorrection(template_frames=8), frames)
    assert [frame_id for frame_id, _, _ in out] == list(range(12))
    shifts = np.array([result["shifts"][:2] for _, _, result in out])
    # Against its own template the shifts are the motion undone, up to one
    # offset for all frames (where the template sits).
    offset = shifts + np.array(jitter)
    assert np.ptp(offset, axis=0).max() < 0.2, offset


def test_a_stream_shorter_than_the_template_still_goes_out() -> None:
    frames = [scene(6)[:SIZE, :SIZE]] * 3
    out = drive(MotionCorrection(template_frames=50), frames)
    assert [frame_id for frame_id, _, _ in out] == [0, 1, 2]


@pytest.mark.parametrize("border", ["copy", "zero", "wrap"])
def test_the_uncovered_edge_is_filled_as_asked(border: str) -> None:
    field = scene(7)
    template = field[MARGIN:-MARGIN, MARGIN:-MARGIN]
    reg = PhaseCorrelation(np, (SIZE, SIZE))
    reg.set_template(template)
    frame = view(field, (-3.0, 4.0), noise=0, rng=np.random.default_rng(0)).astype(np.float32)
    mean = frame.mean()
    spectrum = np.fft.fft2(frame - mean)
    dy, dx, _ = reg.register(reg.spectrum(frame))
    out = reg.shift(spectrum, dy, dx, mean, border)
    # Undoing (-3, +4) moves the frame down 3 and left 4: rows 0-2 and columns
    # 124-127 were not in the frame.
    if border == "zero":
        assert (out[:3] == 0).all()
        assert (out[:, -4:] == 0).all()
        assert (out[3:, :-4] != 0).all()
    elif border == "copy":
        assert np.array_equal(out[0], out[3])
        assert np.array_equal(out[:, -1], out[:, -5])
    else:
        assert not np.array_equal(out[0], out[3])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"border": "mirror"}, "border must be one of"),
        ({"update_rate": 2}, "update_rate must be between 0 and 1"),
        ({"template_frames": 0}, "template_frames must be a whole number"),
        ({"upsample": 0.5}, "upsample must be a whole number"),
        ({"normalization": "cross"}, "normalization must be one of"),
        ({"taper": 0.7}, "taper must be a fraction"),
    ],
)
def test_bad_motion_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MotionCorrection(**options)


def test_a_template_of_the_wrong_shape_is_refused_at_load(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.zeros((10, 10)))
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    for name, message in (("t.npy", r"shape \[10, 10\]"), ("objects.npy", "could not be read")):
        path = tmp_path / "p.yaml"
        path.write_text(
            textwrap.dedent(
                f"""
                name: p
                actors:
                  - name: camera
                    class: rigd.pipeline.SimulatedCamera
                    options: {{shape: [32, 32]}}
                  - name: motion
                    class: rigd.pipeline.MotionCorrection
                    options: {{template: "{tmp_path / name}"}}
                links:
                  - {{link: camera.frames -> motion.frames}}
                """
            )
        )
        with pytest.raises(ValueError, match=r"p.yaml, line \d+, actors\[1\].*" + message):
            plan_pipeline(path)


def test_a_template_of_the_wrong_shape_is_refused_with_both_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.zeros((10, 10)))
    processor = MotionCorrection(template=str(tmp_path / "t.npy"))
    with pytest.raises(ValueError, match=r"shape \[10, 10\], but the frames are \[128, 128\]"):
        drive(processor, [np.zeros((SIZE, SIZE), np.uint16)])


# -- ΔF/F ------------------------------------------------------------------------------


def test_dff_recovers_planted_transients_on_a_steady_baseline() -> None:
    rng = np.random.default_rng(8)
    fps, seconds = 20.0, 30
    n = int(fps * seconds)
    f0 = rng.uniform(200, 2000, (4, 5))
    transient = np.zeros((n, 4, 5))
    for start in rng.integers(0, n - 20, 12):
        pixel = (rng.integers(0, 4), rng.integers(0, 5))
        transient[start : start + 10, pixel[0], pixel[1]] += 0.8
    frames = (f0 * (1 + transient)).astype(np.float32)
    out = drive(DeltaFOverF(window_s=10, percentile=10, bin_s=0.5), frames, fps=fps)
    dff = np.array([result["dff"] for _, _, result in out])
    assert dff.dtype == np.float32
    assert dff.shape == frames.shape
    settled = int(fps * 5)  # after 10 bins the 10th percentile is the baseline
    np.testing.assert_allclose(dff[settled:], transient[settled:], atol=1e-4)


def reference_percentile_dff(
    frames: np.ndarray, fps: float, window_s: float, bin_s: float, q: float
) -> np.ndarray:
    """ΔF/F written out directly: bins of ``bin_s`` seconds by the frames' own times;
    F0 is the q-th percentile of the last ``window_s / bin_s`` bin means."""
    bin_frames = round(bin_s * fps) + 1  # a bin closes once bin_s has passed since it opened
    keep = int(np.ceil(window_s / bin_s))
    closed: list[np.ndarray] = []
    out = []
    for k, frame in enumerate(frames):
        start = (k // bin_frames) * bin_frames
        if (k + 1) % bin_frames == 0:
            closed.append(frames[start : k + 1].mean(axis=0))
        f0 = (
            np.percentile(np.array(closed[-keep:]), q, axis=0)
            if closed
            else frames[start : k + 1].mean(axis=0)
        )
        f0 = np.maximum(f0, 1.0)
        out.append((frame - f0) / f0)
    return np.array(out)


def test_dff_with_a_drifting_baseline_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(9)
    fps = 10.0
    t = np.arange(400) / fps
    frames = (1000 * np.exp(-t / 60)[:, None] + rng.normal(0, 20, (400, 6))).astype(np.float64)
    out = drive(DeltaFOverF(window_s=5, percentile=20, bin_s=1.0), frames, fps=fps)
    dff = np.array([result["dff"] for _, _, result in out])
    assert dff.dtype == np.float64  # float64 records stay float64
    np.testing.assert_allclose(dff, reference_percentile_dff(frames, fps, 5, 1.0, 20), rtol=1e-9)


def test_dff_exponential_baseline_follows_with_its_time_constant() -> None:
    fps, tau = 50.0, 2.0
    frames = np.concatenate([np.full((10, 3), 100.0), np.full((500, 3), 200.0)])
    out = drive(DeltaFOverF(window_s=tau, baseline="exponential"), frames, fps=fps)
    dff = np.array([result["dff"] for _, _, result in out])[:, 0]
    f0 = 100.0
    alpha = 1 - np.exp(-1 / fps / tau)
    expected = []
    for k, f in enumerate(frames[:, 0]):
        if k:
            f0 += alpha * (f - f0)
        expected.append((f - f0) / f0)
    np.testing.assert_allclose(dff, expected, rtol=1e-6)
    assert abs(dff[-1]) < 0.01  # after 10 s (5 time constants) the baseline caught up


def test_dff_keeps_dark_pixels_finite() -> None:
    frames = np.zeros((30, 4, 4), np.uint16)
    frames[20:, 0, 0] = 50
    out = drive(DeltaFOverF(window_s=1, bin_s=0.1, min_baseline=1.0), frames)
    dff = np.array([result["dff"] for _, _, result in out])
    assert np.isfinite(dff).all()
    assert dff[-1, 0, 0] == pytest.approx(49.0)  # (50 - 1) / 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_s": 0}, "window_s must be a positive"),
        ({"baseline": "median"}, "baseline must be one of"),
        ({"percentile": 120}, "percentile must be from 0 to 100"),
        ({"window_s": 600, "bin_s": 0.1}, "make bin_s at least"),
        ({"min_baseline": -1}, "min_baseline must be positive"),
    ],
)
def test_bad_dff_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeltaFOverF(**options)


# -- binning ---------------------------------------------------------------------------


def test_spatial_binning_matches_scikit_image_downscale_local_mean() -> None:
    from skimage.transform import downscale_local_mean

    frames = np.random.default_rng(10).integers(0, 4096, (3, 64, 96)).astype(np.uint16)
    out = drive(Bin(factor=[2, 4]), frames)
    for (_, _, result), frame in zip(out, frames, strict=True):
        assert result["frames"].dtype == np.float32
        np.testing.assert_allclose(
            result["frames"], downscale_local_mean(frame.astype(np.float64), (2, 4)), rtol=1e-6
        )
    assert [frame_id for frame_id, _, _ in out] == [0, 1, 2]


def test_sizes_that_are_not_multiples_drop_the_last_rows_and_columns() -> None:
    frame = np.arange(7 * 5, dtype=np.float32).reshape(7, 5)
    ((_, _, result),) = drive(Bin(factor=2, mode="sum"), [frame])
    assert result["frames"].shape == (3, 2)
    assert result["frames"].dtype == np.float64
    assert result["frames"][0, 0] == frame[:2, :2].sum()


def test_temporal_bins_follow_frame_ids_and_survive_a_dropped_frame() -> None:
    ids = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]  # frame 4 was dropped upstream
    frames = np.stack([np.full((4, 4), k, np.float32) for k in ids])
    out = drive(Bin(factor=1, frames=3), frames, ids=ids)
    # Bins: {0,1,2} {3,5} {6,7,8} {9,10}: ids 0..3, consecutive.
    assert [frame_id for frame_id, _, _ in out] == [0, 1, 2, 3]
    means = [float(result["frames"][0, 0]) for _, _, result in out]
    assert means == pytest.approx([1.0, 4.0, 7.0, 9.5])
    # Each carries the time of the last frame in its bin.
    assert out[0][1] == 1_000_000_000 + round(2 * 1e9 / 100)


def test_bad_bin_options_are_refused() -> None:
    with pytest.raises(ValueError, match="factor must be a whole number"):
        Bin(factor=[2, 0])
    with pytest.raises(ValueError, match="frames must be a whole number"):
        Bin(frames=0)
    with pytest.raises(ValueError, match="larger than the frames"):
        Bin.describe_outputs({"factor": 64}, {"frames": ((32, 32), "<u2")})


# -- ROI traces ------------------------------------------------------------------------


def test_roi_traces_are_the_masked_means(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    frames = rng.integers(0, 4096, (5, 40, 50)).astype(np.uint16)
    labels = np.zeros((40, 50), np.int32)
    labels[30:35, 40:48] = 1
    labels[2:4, 2:9] = 2
    np.save(tmp_path / "labels.npy", labels)
    rois = [{"rect": [5, 6, 10, 12], "name": "soma"}, {"circle": [20, 25, 6.5]}]
    processor = RoiTraces(rois=rois, masks=str(tmp_path / "labels.npy"))
    out = drive(processor, frames)
    assert processor.names == ["roi0", "roi1", "soma", "roi3"]
    yy, xx = np.ogrid[:40, :50]
    circle = (yy - 20) ** 2 + (xx - 25) ** 2 <= 6.5**2
    for (_, _, result), frame in zip(out, frames, strict=True):
        f = frame.astype(np.float64)
        expected = [
            f[labels == 1].mean(),
            f[labels == 2].mean(),
            f[5:15, 6:18].mean(),
            f[circle].mean(),
        ]
        assert result["traces"].dtype == np.float64
        np.testing.assert_allclose(result["traces"], expected, rtol=1e-5)


def test_weighted_overlapping_masks(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    frame = rng.uniform(0, 100, (16, 16)).astype(np.float32)
    masks = rng.uniform(0, 1, (3, 16, 16)).astype(np.float32)
    masks[masks < 0.5] = 0
    np.save(tmp_path / "masks.npy", masks)
    ((_, _, result),) = drive(RoiTraces(masks=str(tmp_path / "masks.npy"), weighted=True), [frame])
    expected = [(m * frame).sum() / m.sum() for m in masks]
    np.testing.assert_allclose(result["traces"], expected, rtol=1e-5)
    ((_, _, binary),) = drive(RoiTraces(masks=str(tmp_path / "masks.npy")), [frame])
    np.testing.assert_allclose(binary["traces"], [frame[m > 0].mean() for m in masks], rtol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "RoiTraces needs ROIs"),
        ({"rois": [{"rect": [30, 0, 5, 5]}]}, r"rect \[30, 0, 5, 5\] is not inside the 32 x 32"),
        ({"rois": [{"circle": [100, 100, 2]}]}, "covers no pixel"),
        ({"rois": [{"rect": [0, 0, 2, 2], "circle": [1, 1, 1]}]}, "exactly one of rect or circle"),
        (
            {"rois": [{"rect": [0, 0, 2, 2], "name": "a"}, {"rect": [2, 2, 2, 2], "name": "a"}]},
            "unique",
        ),
        ({"masks": "/nonexistent/masks.npy"}, "could not be read as a .npy array"),
    ],
)
def test_bad_rois_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoiTraces.describe_outputs(options, {"frames": ((32, 32), "<u2")})


def test_a_mask_file_of_the_wrong_shape_names_both_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.ones((2, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"has shape \[2, 8, 8\]; for 32 x 32 frames give"):
        RoiTraces.describe_outputs(
            {"masks": str(tmp_path / "m.npy")}, {"frames": ((32, 32), "<u2")}
        )


# -- pipelines ---------------------------------------------------------------------------

PIPELINE = """
name: calcium
actors:
  - name: camera
    class: tests.pipeline.actors.ArraySource
    options: {path: "@DIR@/frames.npy", fps: 20}
  - name: motion
    class: rigd.pipeline.MotionCorrection
    options: {template: "@DIR@/template.npy"}@GPU@
  - name: dff
    class: rigd.pipeline.DeltaFOverF
    options: {window_s: 2, bin_s: 0.25}@GPU@
  - name: rois
    class: rigd.pipeline.RoiTraces
    options: {rois: [{rect: [10, 10, 20, 20], name: a}, {circle: [80, 70, 9]}]}@GPU@
  - name: binned
    class: rigd.pipeline.Bin
    options: {factor: 4, frames: 2}@GPU@
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {directory: "@DIR@/data"}
links:
  - {link: camera.frames -> motion.frames, slots: 8}
  - {link: motion.frames -> dff.frames, slots: 8}
  - {link: motion.frames -> binned.frames, slots: 8}
  - {link: dff.dff -> rois.frames, slots: 8}
  - {link: motion.shifts -> recorder.shifts, slots: 64}
  - {link: dff.dff -> recorder.dff, slots: 8}
  - {link: rois.traces -> recorder.traces, slots: 64}
  - {link: binned.frames -> recorder.binned, slots: 8}
"""


def run_calcium_pipeline(
    tmp_path: Path, gpu: bool
) -> tuple[str, list[tuple[float, float]], dict[str, str]]:
    rng = np.random.default_rng(13)
    field = scene(13)
    np.save(tmp_path / "template.npy", field[MARGIN:-MARGIN, MARGIN:-MARGIN])
    shifts = [(rng.uniform(-4, 4), rng.uniform(-4, 4)) for _ in range(60)]
    frames = np.stack([view(field, s, noise=10, rng=rng) for s in shifts]).astype(np.uint16)
    np.save(tmp_path / "frames.npy", frames)
    text = PIPELINE.replace("@DIR@", str(tmp_path)).replace(
        "@GPU@", "\n    num_gpus: 0.25" if gpu else ""
    )
    path = tmp_path / "calcium.yaml"
    path.write_text(textwrap.dedent(text))
    import rigd

    rigd.init(num_gpus=1 if gpu else None)
    pipeline = Pipeline(plan_pipeline(path), run_id="calcium")
    pipeline.start()
    try:
        assert pipeline.wait(120), "the pipeline did not finish in time"
        backends = {
            name: rigd.get(pipeline.handle(name).status.remote())["backend"]
            for name in ("motion", "dff", "rois", "binned")
        }
    finally:
        report = pipeline.stop()
    assert report.files, report
    return str(report.files[0]), shifts, backends


def check_calcium_file(path: str, shifts: list[tuple[float, float]]) -> None:
    with h5py.File(path, "r") as f:
        assert f.attrs["run_state"] == "complete"
        for stream in ("shifts", "dff", "traces"):
            assert list(f[stream]["frame_id"][:]) == list(range(60)), stream
            assert len(f[stream]["dropped"]) == 0
        assert list(f["binned"]["frame_id"][:]) == list(range(30))
        assert f["binned"]["frames"].shape == (30, 32, 32)
        recorded = f["shifts"]["frames"][:]
        dff = f["dff"]["frames"][:]
        traces = f["traces"]["frames"][:]
    np.testing.assert_allclose(recorded[:, :2], -np.array(shifts), atol=0.1)
    yy, xx = np.ogrid[:SIZE, :SIZE]
    circle = (yy - 80) ** 2 + (xx - 70) ** 2 <= 81
    expected = np.stack([dff[:, 10:30, 10:30].mean(axis=(1, 2)), dff[:, circle].mean(axis=1)], 1)
    np.testing.assert_allclose(traces, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.integration
def test_motion_dff_rois_and_bins_in_one_pipeline_on_the_cpu(tmp_path: Path) -> None:
    path, shifts, backends = run_calcium_pipeline(tmp_path, gpu=False)
    assert set(backends.values()) == {"numpy"}
    check_calcium_file(path, shifts)


def test_a_bad_processor_option_names_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: bad
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {shape: [32, 32]}
              - name: rois
                class: rigd.pipeline.RoiTraces
                options: {rois: [{rect: [30, 30, 8, 8]}]}
            links:
              - {link: camera.frames -> rois.frames}
            """
        )
    )
    pattern = r"bad.yaml, line \d+, actors\[1\]\.options: .*not inside the 32 x 32 frame"
    with pytest.raises(ValueError, match=pattern):
        plan_pipeline(path)


# -- on a GPU ------------------------------------------------------------------------------


def _cupy_or_skip() -> Any:
    cupy = pytest.importorskip("cupy", reason="needs CuPy (the gpu extra)")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    return cupy


@pytest.mark.gpu
def test_every_processor_gives_the_numpy_result_on_cupy(tmp_path: Path) -> None:
    cupy = _cupy_or_skip()
    rng = np.random.default_rng(14)
    field = scene(14)
    frames = [
        view(field, (rng.uniform(-3, 3), rng.uniform(-3, 3)), 10, rng).astype(np.uint16)
        for _ in range(40)
    ]
    np.save(tmp_path / "template.npy", field[MARGIN:-MARGIN, MARGIN:-MARGIN])
    cases = [
        (lambda: MotionCorrection(template=str(tmp_path / "template.npy")), 1e-3, 0.06),
        (lambda: MotionCorrection(template_frames=8, update_rate=0.05), 1e-3, 0.06),
        (lambda: DeltaFOverF(window_s=0.1, bin_s=0.02), 1e-4, 1e-4),
        (lambda: DeltaFOverF(window_s=0.1, baseline="exponential"), 1e-4, 1e-4),
        (lambda: Bin(factor=[2, 4], frames=3), 1e-5, 1e-5),
        (lambda: RoiTraces(rois=[{"rect": [5, 5, 30, 40]}, {"circle": [64, 64, 20]}]), 1e-5, 1e-5),
    ]
    for make, rtol, shift_tol in cases:
        on_cpu = drive(make(), frames)
        on_gpu = drive(make(), frames, xp=cupy)
        assert [e[:2] for e in on_gpu] == [e[:2] for e in on_cpu]
        for (_, _, gpu), (_, _, cpu) in zip(on_gpu, on_cpu, strict=True):
            for name in cpu:
                if name == "shifts":
                    np.testing.assert_allclose(gpu[name][:2], cpu[name][:2], atol=shift_tol)
                else:
                    scale = np.abs(cpu[name]).max() or 1.0
                    np.testing.assert_allclose(gpu[name], cpu[name], atol=rtol * scale * 10)


@pytest.mark.gpu
@pytest.mark.integration
def test_the_calcium_pipeline_runs_on_the_gpu(tmp_path: Path) -> None:
    _cupy_or_skip()
    os.environ.pop("RIGD_FAKE_GPUS", None)
    path, shifts, backends = run_calcium_pipeline(tmp_path, gpu=True)
    assert set(backends.values()) == {"cupy"}
    check_calcium_file(path, shifts)
