"""PhaseCorrelation: rigid registration of a 2-D frame to a template, in numpy or CuPy.

The method is the one CaImAn's online mode, suite2p and scikit-image use:
the normalised cross-power spectrum of the frame and the template gives the
integer shift at its inverse FFT's peak, and an upsampled DFT around that
peak (Guizar-Sicairos, Thurman and Fienup, Opt. Lett. 33, 156, 2008) gives
the sub-pixel shift. The frame is then shifted by the Fourier shift theorem,
from the FFT already computed. Shifts follow scikit-image's
``phase_cross_correlation`` convention: the shift that, applied to the
frame, registers it with the template. ``MotionCorrection``
(``rigd.pipeline._motion``) is the processor that runs it on a stream.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rigd.gpu import fft_module

__all__ = ["BORDERS", "NORMALIZATIONS", "PhaseCorrelation"]

#: How the edge a shift uncovers is filled.
BORDERS = ("copy", "zero", "wrap")
#: How the cross-power spectrum is weighted.
NORMALIZATIONS = ("phase", "none")


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


def _edge_taper(n: int, fraction: float) -> np.ndarray[Any, Any]:
    """1 in the middle, falling smoothly (logistic) to ~0 over ``fraction`` of
    each end."""
    x = np.arange(n, dtype=np.float64)
    edge = max(1.0, fraction * n)
    width = edge / 4
    rise = 1 / (1 + np.exp(-(x - edge) / width))
    fall = 1 / (1 + np.exp(-((n - 1 - x) - edge) / width))
    return rise * fall
