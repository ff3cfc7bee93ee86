"""MotionCorrection: rigid registration of each frame to a template by phase correlation.

The method is the one CaImAn's online mode, suite2p and scikit-image use:
the normalised cross-power spectrum of the frame and the template gives the
integer shift at its inverse FFT's peak, and an upsampled DFT around that
peak (Guizar-Sicairos, Thurman and Fienup, Opt. Lett. 33, 156, 2008) gives
the sub-pixel shift. The frame is then shifted by the Fourier shift theorem,
from the FFT already computed. Shifts follow scikit-image's
``phase_cross_correlation`` convention: the shift that, applied to the
frame, registers it with the template.

Piecewise-rigid correction (a shift per patch, as NoRMCorre does) is a
later step; this is rigid only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rigd.gpu import fft_module
from rigd.pipeline._processor import Emission, FrameProcessor, Spec
from rigd.storage import RecordField

__all__ = ["MotionCorrection", "PhaseCorrelation"]

_BORDERS = ("copy", "zero", "wrap")
_NORMALIZATIONS = ("phase", "none")


class PhaseCorrelation:
    """Registers 2-D frames to a template, in the array module ``xp``.

    Args:
        xp: ``numpy`` or ``cupy``.
        shape: ``(height, width)`` of the frames.
        upsample: sub-pixel resolution is ``1 / upsample`` pixels (20: 0.05 px).
        max_shift: the largest shift searched, in pixels (``None``: up to half
            the frame).
        normalization: ``"phase"`` (each frequency weighted alike, as
            scikit-image's default and suite2p do) or ``"none"`` (plain
            cross-correlation, as CaImAn does; better for very smooth images).
        smooth_sigma: with ``phase``, the cross-power is low-passed by a
            gaussian of this width in pixels (suite2p's ``smooth_sigma``), so
            that noise at high frequencies does not drown the peak.
        taper: the width of the smooth edge taper applied to frames before
            they are correlated, as a fraction of each side: it stops the
            frame's edges (which the FFT wraps around) from pulling the shift
            toward zero. 0 turns it off.

    Arrays are float32 (frames) and complex64 (spectra).
    """

    def __init__(
        self,
        xp: Any,
        shape: tuple[int, int],
        upsample: int = 20,
        max_shift: float | None = None,
        normalization: str = "phase",
        smooth_sigma: float = 1.15,
        taper: float = 0.1,
    ) -> None:
        self.xp = xp
        self.fft = fft_module(xp)
        self.shape = (int(shape[0]), int(shape[1]))
        self.upsample = int(upsample)
        self.normalization = normalization
        h, w = self.shape
        # Signed integer frequencies, the order FFTs use (host copies for the
        # per-frame phase vectors, which are built on the host: a few
        # hundred numbers, where a kernel launch would cost more).
        self._ky_host = np.fft.fftfreq(h) * h
        self._kx_host = np.fft.fftfreq(w) * w
        ky, kx = self._ky_host, self._kx_host
        self._region = math.ceil(1.5 * self.upsample)
        self._steps = (np.arange(self._region) - self._region // 2) / self.upsample
        # The upsampled DFT around an integer peak (py, px) is
        # rows(py) @ product @ cols(px), with rows(py) = base_rows * e^{2 pi i py ky / h}:
        # the base matrices are fixed, only a phase vector changes per frame.
        self._base_rows = xp.asarray(
            np.exp(2j * math.pi * self._steps[:, None] * ky[None, :] / h), dtype=xp.complex64
        )
        self._base_cols = xp.asarray(
            np.exp(2j * math.pi * kx[:, None] * self._steps[None, :] / w), dtype=xp.complex64
        )
        self._mask = None
        if max_shift is not None:
            dy = np.minimum(np.arange(h), h - np.arange(h))
            dx = np.minimum(np.arange(w), w - np.arange(w))
            self._mask = xp.asarray((dy[:, None] > max_shift) | (dx[None, :] > max_shift))
        self._lowpass = None
        self._scale = 1.0
        if normalization == "phase" and smooth_sigma > 0:
            lowpass = np.exp(
                -2
                * math.pi**2
                * smooth_sigma**2
                * ((ky / h)[:, None] ** 2 + (kx / w)[None, :] ** 2)
            )
            self._lowpass = xp.asarray(lowpass, dtype=xp.float32)
            self._scale = h * w / float(lowpass.sum())
        self._taper = None
        if taper > 0:
            self._taper = xp.asarray(
                np.outer(_edge_taper(h, taper), _edge_taper(w, taper)), dtype=xp.float32
            )
        self._template_f: Any = None
        self._template_power = 0.0

    def spectra(self, frame: Any) -> tuple[Any, Any, Any]:
        """A frame's mean (a device scalar), its plain spectrum (what ``shift``
        takes) and its tapered spectrum (what ``register`` takes; the same
        array without a taper), complex64."""
        xp = self.xp
        f = xp.asarray(frame, dtype=xp.float32)
        mean = f.mean()
        centered = f - mean
        plain = self.fft.fft2(centered)
        if self._taper is None:
            return mean, plain, plain
        return mean, plain, self.fft.fft2(centered * self._taper)

    def spectrum(self, frame: Any) -> Any:
        """The tapered spectrum of a frame (mean removed): what ``register`` takes."""
        xp = self.xp
        f = xp.asarray(frame, dtype=xp.float32)
        f = f - f.mean()
        if self._taper is not None:
            f = f * self._taper
        return self.fft.fft2(f)

    @property
    def tapers(self) -> bool:
        """Whether ``spectrum`` tapers (then the shift needs the plain spectrum)."""
        return self._taper is not None

    def set_template(self, template: Any) -> None:
        """Register to ``template`` (2-D, any real dtype) from now on."""
        xp = self.xp
        self._template_f = self.spectrum(template)
        if self.normalization != "phase":
            self._template_power = float(xp.sqrt(xp.sum(xp.abs(self._template_f) ** 2)))

    @property
    def has_template(self) -> bool:
        return self._template_f is not None

    def register(self, spectrum: Any) -> tuple[float, float, float]:
        """The shift ``(dy, dx)`` in pixels that registers the frame whose
        (tapered) ``spectrum`` is given to the template, and the correlation's
        peak (0 to 1: 1 is a perfect match up to the shift).

        Two small reads come back to the host (the integer peak, then the
        refined one); everything else stays on the device.
        """
        xp = self.xp
        h, w = self.shape
        product = self._template_f * xp.conj(spectrum)
        if self.normalization == "phase":
            product /= xp.maximum(xp.abs(product), xp.float32(1e-20))
            if self._lowpass is not None:
                product *= self._lowpass
            scale = self._scale
        else:
            power_f = float(xp.sqrt(xp.sum(xp.abs(spectrum) ** 2)))
            scale = (h * w) / max(self._template_power * power_f, 1e-20)
        # Real: the spectra are of real images, so their product is Hermitian.
        corr = self.fft.ifft2(product).real
        if self._mask is not None:
            corr[self._mask] = -xp.inf
        py, px = divmod(int(xp.argmax(corr)), w)
        py = py - h if py > h // 2 else py
        px = px - w if px > w // 2 else px
        if self.upsample <= 1:
            return float(py), float(px), float(corr[py, px]) * scale
        # The inverse DFT evaluated on a fine grid around the integer peak.
        two_pi_i = 2j * math.pi
        row_phase = np.exp(two_pi_i * py * self._ky_host / h).astype(np.complex64)
        col_phase = np.exp(two_pi_i * px * self._kx_host / w).astype(np.complex64)
        rows = self._base_rows * xp.asarray(row_phase)[None, :]
        cols = self._base_cols * xp.asarray(col_phase)[:, None]
        fine = (rows @ product @ cols).real
        u, v = divmod(int(xp.argmax(fine)), self._region)
        value = float(fine[u, v])
        return (
            py + float(self._steps[u]),
            px + float(self._steps[v]),
            value / (h * w) * scale,
        )

    def shift(self, spectrum: Any, dy: float, dx: float, mean: Any, border: str = "copy") -> Any:
        """The frame shifted by ``(dy, dx)`` pixels (float32), from its plain
        spectrum and mean.

        ``border``: what fills the edge the shift uncovers: ``copy`` (the
        nearest pixel that was in the frame), ``zero``, or ``wrap`` (what the
        FFT gives: the opposite edge).
        """
        xp = self.xp
        h, w = self.shape
        two_pi_i = -2j * math.pi
        ramp_y = np.exp(two_pi_i * self._ky_host * dy / h).astype(np.complex64)
        ramp_x = np.exp(two_pi_i * self._kx_host * dx / w).astype(np.complex64)
        ramp = xp.asarray(ramp_y)[:, None] * xp.asarray(ramp_x)[None, :]
        out = self.fft.ifft2(spectrum * ramp).real + mean
        out = out.astype(xp.float32, copy=False)
        if border == "wrap":
            return out
        top, left = math.ceil(max(dy, 0.0)), math.ceil(max(dx, 0.0))
        bottom, right = math.ceil(max(-dy, 0.0)), math.ceil(max(-dx, 0.0))
        top, bottom = min(top, h - 1), min(bottom, h - 1 - min(top, h - 1))
        left, right = min(left, w - 1), min(right, w - 1 - min(left, w - 1))
        if border == "zero":
            if top:
                out[:top] = 0
            if bottom:
                out[h - bottom :] = 0
            if left:
                out[:, :left] = 0
            if right:
                out[:, w - right :] = 0
            return out
        # copy: each uncovered pixel takes the nearest pixel that was in the frame.
        if top:
            out[:top] = out[top]
        if bottom:
            out[h - bottom :] = out[h - bottom - 1]
        if left:
            out[:, :left] = out[:, left : left + 1]
        if right:
            out[:, w - right :] = out[:, w - right - 1 : w - right]
        return out


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
    with scipy's FFT otherwise. Method: see the module's documentation.
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
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {list(_NORMALIZATIONS)}, got {normalization!r}"
            )
        if border not in _BORDERS:
            raise ValueError(f"border must be one of {list(_BORDERS)}, got {border!r}")

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


def _edge_taper(n: int, fraction: float) -> np.ndarray[Any, Any]:
    """1 in the middle, falling smoothly (logistic) to ~0 over ``fraction`` of
    each end."""
    x = np.arange(n, dtype=np.float64)
    edge = max(1.0, fraction * n)
    width = edge / 4
    rise = 1 / (1 + np.exp(-(x - edge) / width))
    fall = 1 / (1 + np.exp(-((n - 1 - x) - edge) / width))
    return rise * fall


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
