"""RoiTraces: the fluorescence in regions of interest, one value per ROI per frame.

ROIs come from the pipeline file (rectangles and circles, in pixels) or
from a mask file, as suite2p and CaImAn hand them over:

- ``.npy`` of shape ``(n, height, width)``: one mask per ROI; with
  ``weighted: true`` the mask's values weigh the pixels (suite2p's
  ``lam``, CaImAn's spatial components ``A``), otherwise any value > 0 is in.
- ``.npy`` of shape ``(height, width)`` with integers: a label image, ROI k
  being the pixels labelled k (0 is background), as scikit-image's
  ``label`` and Cellpose write.

Each trace is the mean of the ROI's pixels (weighted: ``sum(w * F) /
sum(w)``), computed as one sparse matrix product per frame (``cupyx.scipy
.sparse`` on a GPU, ``scipy.sparse`` otherwise): ROIs may overlap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rigd.gpu import sparse_module
from rigd.pipeline._processor import Emission, FrameProcessor, Spec
from rigd.storage import RecordField

__all__ = ["RoiTraces", "roi_masks"]

_MAX_ROIS = 65536


def _rect(spec: Any, shape: tuple[int, int], where: str) -> np.ndarray[Any, Any]:
    if not (isinstance(spec, (list, tuple)) and len(spec) == 4):
        raise ValueError(f"{where}: rect is [y, x, height, width] in pixels, got {spec!r}")
    y, x, h, w = (int(v) for v in spec)
    if h < 1 or w < 1 or y < 0 or x < 0 or y + h > shape[0] or x + w > shape[1]:
        raise ValueError(
            f"{where}: rect {list(spec)} is not inside the {shape[0]} x {shape[1]} frame"
        )
    mask = np.zeros(shape, np.float32)
    mask[y : y + h, x : x + w] = 1
    return mask


def _circle(spec: Any, shape: tuple[int, int], where: str) -> np.ndarray[Any, Any]:
    if not (isinstance(spec, (list, tuple)) and len(spec) == 3):
        raise ValueError(f"{where}: circle is [center_y, center_x, radius] in pixels, got {spec!r}")
    cy, cx, r = (float(v) for v in spec)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)
    if not mask.any():
        raise ValueError(f"{where}: circle {list(spec)} covers no pixel of the frame")
    return mask


def _from_file(path: str, shape: tuple[int, int], weighted: bool) -> np.ndarray[Any, Any]:
    try:
        data = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"masks {path!r} could not be read as a .npy array ({exc}); save masks with "
            "numpy.save(path, masks): (n, height, width) or a (height, width) label image"
        ) from None
    if data.ndim == 2 and data.shape == shape:
        if data.dtype.kind not in "iu":
            raise ValueError(
                f"masks {path!r} is 2-D, so it must be a label image of integers, got {data.dtype}"
            )
        labels = np.asarray(data)
        count = int(labels.max(initial=0))
        if count > _MAX_ROIS:
            raise ValueError(f"masks {path!r} labels {count} ROIs; at most {_MAX_ROIS}")
        return (
            np.stack([(labels == k).astype(np.float32) for k in range(1, count + 1)])
            if count
            else np.zeros((0, *shape), np.float32)
        )
    if data.ndim == 3 and data.shape[1:] == shape:
        masks = np.asarray(data, dtype=np.float32)
        return masks if weighted else (masks > 0).astype(np.float32)
    raise ValueError(
        f"masks {path!r} has shape {list(data.shape)}; for {shape[0]} x {shape[1]} frames give "
        f"(n, {shape[0]}, {shape[1]}) masks or a ({shape[0]}, {shape[1]}) label image"
    )


def roi_masks(
    rois: Sequence[Mapping[str, Any]] | None,
    masks: str | None,
    shape: tuple[int, int],
    weighted: bool = False,
) -> tuple[np.ndarray[Any, Any], list[str]]:
    """The ROIs as masks ``(n, height, width)`` float32 and their names.

    ``rois``: a list of ``{rect: [y, x, h, w]}`` or ``{circle: [cy, cx, r]}``,
    each with an optional ``name``; ``masks``: a ``.npy`` file (module doc).
    ROIs from the file come first, named ``roi0``, ``roi1``, ...

    Raises:
        ValueError: no ROI, an ROI outside the frame or empty, a bad file,
            or two ROIs with one name.
    """
    found: list[np.ndarray[Any, Any]] = []
    names: list[str] = []
    if masks is not None:
        from_file = _from_file(os.fspath(masks), shape, weighted)
        found.extend(from_file)
        names.extend(f"roi{k}" for k in range(len(from_file)))
    for k, roi in enumerate(rois or []):
        where = f"rois[{k}]"
        if not isinstance(roi, Mapping):
            raise ValueError(
                f"{where}: an ROI is {{rect: [y, x, h, w]}} or {{circle: [cy, cx, r]}}"
            )
        unknown = set(roi) - {"rect", "circle", "name"}
        if unknown or ("rect" in roi) == ("circle" in roi):
            raise ValueError(
                f"{where}: give exactly one of rect or circle (and optionally name), "
                f"got {sorted(roi)}"
            )
        found.append(
            _rect(roi["rect"], shape, where)
            if "rect" in roi
            else _circle(roi["circle"], shape, where)
        )
        names.append(str(roi.get("name", f"roi{len(names)}")))
    if not found:
        raise ValueError("RoiTraces needs ROIs: give rois (rect/circle) or masks (a .npy file)")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"ROI names must be unique; {dup} appear more than once")
    stack = np.stack(found)
    empty = [names[k] for k in range(len(stack)) if not stack[k].any()]
    if empty:
        raise ValueError(f"ROIs {empty} have no pixel with weight > 0")
    return stack, names


class RoiTraces(FrameProcessor):
    """The mean fluorescence in each ROI, per frame.

    Reads ``frames`` (2-D); writes ``traces``: a record per frame of ``n``
    float64 values, one per ROI, in the order of ``names`` (``status()``
    lists them).

    Args:
        rois: ``[{rect: [y, x, height, width], name: ...}, {circle: [cy, cx, r]}]``.
        masks: a ``.npy`` mask or label file (module documentation).
        weighted: use the mask file's values as weights.

    Raises:
        ValueError: at load, what ``roi_masks`` raises, with the file's line.
    """

    output_names = ("traces",)
    #: Options that name places, for the daemon's confinement (rigd.service).
    place_options: ClassVar[dict[str, str]] = {"masks": "data_file"}

    def __init__(
        self,
        rois: list[dict[str, Any]] | None = None,
        masks: str | None = None,
        weighted: bool = False,
    ) -> None:
        self.rois = rois
        self.masks = masks
        self.weighted = bool(weighted)
        self.names: list[str] = []

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        shape, _ = cls.frame_shape(inputs, "RoiTraces")
        if len(shape) != 2:
            raise ValueError(f"RoiTraces takes 2-D frames, got shape {list(shape)}")
        stack, _ = roi_masks(
            options.get("rois"),
            options.get("masks"),
            (shape[0], shape[1]),
            bool(options.get("weighted")),
        )
        return {"traces": ((len(stack),), "<f8")}

    @classmethod
    def describe_fields(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, tuple[RecordField, ...]]:
        """One field per ROI, named as the ROI (a recorder names its datasets so)."""
        shape, _ = cls.frame_shape(inputs, "RoiTraces")
        _, names = roi_masks(
            options.get("rois"),
            options.get("masks"),
            (shape[0], shape[1]),
            bool(options.get("weighted")),
        )
        return {"traces": tuple(RecordField(n, "counts", f"ROI {n} mean") for n in names)}

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        stack, self.names = roi_masks(self.rois, self.masks, (shape[0], shape[1]), self.weighted)
        weights = stack.reshape(len(stack), -1)
        weights /= weights.sum(axis=1, keepdims=True)
        import scipy.sparse

        # Built on the host, then moved whole (data, indices, indptr: the
        # form every CSR implementation takes).
        host = scipy.sparse.csr_matrix(weights.astype(np.float32))
        xp = self.xp
        self._matrix = sparse_module(xp).csr_matrix(
            (
                xp.asarray(host.data),
                xp.asarray(host.indices.astype(np.int32)),
                xp.asarray(host.indptr.astype(np.int32)),
            ),
            shape=host.shape,
        )

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        xp = self.xp
        frame = xp.asarray(data, dtype=xp.float32).reshape(-1)
        traces = (self._matrix @ frame).astype(xp.float64)
        return [Emission(frame_id, timestamp_ns, {"traces": traces})]

    def status(self) -> dict[str, Any]:
        """Frames in and out, the backend, and the ROIs' names in trace order."""
        return {**super().status(), "rois": list(self.names)}
