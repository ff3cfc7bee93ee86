"""MotionCorrection: rigid registration of each frame to a template by phase correlation.

Each frame is registered by ``PhaseCorrelation``
(``rigd.pipeline._phase_correlation``, where the method and its sources are
described), then shifted by the Fourier shift theorem from the FFT already
computed; the template is built from the first frames or read from a file.

Piecewise-rigid correction (a shift per patch, as NoRMCorre does) is a
later step; this is rigid only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rigd.pipeline._phase_correlation import BORDERS, NORMALIZATIONS, PhaseCorrelation
from rigd.pipeline._processor import Emission, FrameProcessor, Spec
from rigd.storage import RecordField

__all__ = ["MotionCorrection", "load_template"]


class MotionCorrection(FrameProcessor):
    """Rigid motion correction of each frame against a template (phase correlation).

    Reads ``frames`` (2-D, any real dtype); writes ``frames`` (the corrected
    frame, float32, same shape) and ``shifts`` (a record per frame: ``[y, x,
    peak]``, float64: the shift applied in pixels, rows then columns, and the
    correlation's peak from 0 to 1).

    Args:
        template_frames: the template is the mean of the first this many
            frames, registered to their own mean once more and averaged
            again; those frames go out corrected once it is built.
        template: a ``.npy`` file holding the template (2-D, the frames'
            shape), instead of building one.
        update_rate: after each frame the template becomes
            ``(1 - rate) * template + rate * corrected`` (0: fixed).
        upsample: sub-pixel resolution, ``1 / upsample`` pixels.
        max_shift: the largest shift searched, in pixels (``None``: half the frame).
        normalization: ``phase`` (phase correlation) or ``none`` (plain
            cross-correlation: better for very smooth images).
        smooth_sigma: with ``phase``, the low-pass on the cross-power, in
            pixels (suite2p's default, 1.15).
        taper: the edge taper before correlating, a fraction of each side.
        border: fill for the uncovered edge: ``copy``, ``zero`` or ``wrap``.

    Runs on the GPU (CuPy, cuFFT) when the actor has ``num_gpus``; on the CPU
    with scipy's FFT otherwise. Method: ``rigd.pipeline._phase_correlation``.
    """

    output_names = ("frames", "shifts")
    #: Options that name places, for the daemon's confinement (rigd.service).
    place_options: ClassVar[dict[str, str]] = {"template": "data_file"}

    def __init__(
        self,
        template_frames: int = 32,
        template: str | None = None,
        update_rate: float = 0.0,
        upsample: int = 20,
        max_shift: float | None = None,
        normalization: str = "phase",
        smooth_sigma: float = 1.15,
        taper: float = 0.1,
        border: str = "copy",
    ) -> None:
        self._check(template_frames, update_rate, upsample, max_shift, normalization, border)
        if not isinstance(smooth_sigma, (int, float)) or smooth_sigma < 0:
            raise ValueError(f"smooth_sigma must be a width in pixels >= 0, got {smooth_sigma!r}")
        if not isinstance(taper, (int, float)) or not 0 <= taper < 0.5:
            raise ValueError(f"taper must be a fraction from 0 to 0.5, got {taper!r}")
        self.smooth_sigma = float(smooth_sigma)
        self.taper = float(taper)
        self.template_frames = int(template_frames)
        self.template_path = template
        self.update_rate = float(update_rate)
        self.upsample = int(upsample)
        self.max_shift = max_shift
        self.normalization = normalization
        self.border = border
        self.last_shift: tuple[float, float, float] | None = None

    @staticmethod
    def _check(
        template_frames: Any,
        update_rate: Any,
        upsample: Any,
        max_shift: Any,
        normalization: Any,
        border: Any,
    ) -> None:
        if not isinstance(template_frames, int) or template_frames < 1:
            raise ValueError(
                f"template_frames must be a whole number >= 1, got {template_frames!r}"
            )
        if not isinstance(update_rate, (int, float)) or not 0.0 <= update_rate <= 1.0:
            raise ValueError(f"update_rate must be between 0 and 1, got {update_rate!r}")
        if not isinstance(upsample, int) or not 1 <= upsample <= 1000:
            raise ValueError(f"upsample must be a whole number from 1 to 1000, got {upsample!r}")
        if max_shift is not None and (not isinstance(max_shift, (int, float)) or max_shift < 0):
            raise ValueError(
                f"max_shift must be a number of pixels >= 0 or null, got {max_shift!r}"
            )
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}"
            )
        if border not in BORDERS:
            raise ValueError(f"border must be one of {list(BORDERS)}, got {border!r}")

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        shape, _ = cls.frame_shape(inputs, "MotionCorrection")
        cls(**options)  # every option checked at load, with the file's line
        if len(shape) != 2:
            raise ValueError(f"MotionCorrection registers 2-D frames, got shape {list(shape)}")
        if options.get("template") is not None:
            load_template(str(options["template"]), (shape[0], shape[1]))  # checked at load
        return {"frames": (shape, "<f4"), "shifts": ((3,), "<f8")}

    @classmethod
    def describe_fields(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[RecordField, ...]]:
        """What the columns of ``shifts`` mean (a recorder names its datasets so)."""
        return {
            "shifts": (
                RecordField("y", "pixel", "shift applied, rows"),
                RecordField("x", "pixel", "shift applied, columns"),
                RecordField("peak", "", "correlation peak (0 to 1)"),
            )
        }

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        xp = self.xp
        self._reg = PhaseCorrelation(
            xp,
            (shape[0], shape[1]),
            self.upsample,
            self.max_shift,
            self.normalization,
            self.smooth_sigma,
            self.taper,
        )
        self._gathered: list[tuple[Any, int, int]] = []
        if self.template_path is not None:
            template = load_template(self.template_path, (shape[0], shape[1]))
            self._template = xp.asarray(template, dtype=xp.float32)
            self._reg.set_template(self._template)

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        xp = self.xp
        if not self._reg.has_template:
            self._gathered.append((xp.array(data, dtype=xp.float32), frame_id, timestamp_ns))
            if len(self._gathered) < self.template_frames:
                return []
            return self._build_template()
        return [self._correct(data, frame_id, timestamp_ns)]

    def flush(self) -> list[Emission]:
        # The stream ended before the template was complete: use what came.
        return self._build_template() if self._gathered else []

    def _build_template(self) -> list[Emission]:
        xp = self.xp
        stack = xp.stack([frame for frame, _, _ in self._gathered])
        self._reg.set_template(stack.mean(axis=0))
        # Once more, with the gathered frames registered to the first mean.
        aligned = [
            self._correct(f, i, t, update=False, frame_needed=True) for f, i, t in self._gathered
        ]
        self._template = xp.stack([e.outputs["frames"] for e in aligned]).mean(axis=0)
        self._reg.set_template(self._template)
        emissions = [self._correct(f, i, t) for f, i, t in self._gathered]
        self._gathered = []
        return emissions

    def _correct(
        self,
        data: Any,
        frame_id: int,
        timestamp_ns: int,
        update: bool = True,
        frame_needed: bool = False,
    ) -> Emission:
        xp = self.xp
        reg = self._reg
        update = update and self.update_rate > 0
        linked = self.linked_outputs
        if not (frame_needed or update or linked is None or "frames" in linked):
            # Only the shifts are read: no corrected frame to make.
            dy, dx, peak = reg.register(reg.spectrum(data))
            return Emission(frame_id, timestamp_ns, {"shifts": np.array([dy, dx, peak])})
        mean, spectrum, tapered = reg.spectra(data)
        dy, dx, peak = reg.register(tapered)
        corrected = reg.shift(spectrum, dy, dx, mean, self.border)
        if update:
            rate = xp.float32(self.update_rate)
            self._template *= 1 - rate
            self._template += rate * corrected
            reg.set_template(self._template)
        record = np.array([dy, dx, peak])
        return Emission(frame_id, timestamp_ns, {"frames": corrected, "shifts": record})

    def _send(self, emissions: list[Emission]) -> None:
        super()._send(emissions)
        if emissions:
            y, x, p = (float(v) for v in emissions[-1].outputs["shifts"])
            self.last_shift = (y, x, p)

    def status(self) -> dict[str, Any]:
        """Frames in and out, the backend, and the last shift ``[y, x, peak]``."""
        return {**super().status(), "last_shift": self.last_shift}


def load_template(path: str, shape: tuple[int, int]) -> np.ndarray[Any, Any]:
    """A template from a ``.npy`` file (no pickles), checked against ``shape``.

    Raises:
        ValueError: the file is missing, not a ``.npy`` array, or of another shape.
    """
    try:
        template: np.ndarray[Any, Any] = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"template {path!r} could not be read as a .npy array ({exc}); "
            "save one with numpy.save(path, image)"
        ) from None
    if template.shape != shape:
        raise ValueError(
            f"template {path!r} has shape {list(template.shape)}, but the frames are "
            f"{list(shape)}; give a template of the frames' shape"
        )
    return template
