"""Write the sample files the video and TIFF examples replay.

Run from the repository root: ``python examples/make_samples.py``. Needs
``rigd[video,tiff]`` (PyAV and tifffile).
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def make_video(path: Path, frames: int = 300, fps: int = 30) -> None:
    """A moving bright spot on noise, 320x240 gray, FFV1 (lossless)."""
    import av

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "gray"
        stream.time_base = Fraction(1, fps)
        for k in range(frames):
            cx, cy = 160 + 100 * np.cos(k / 20), 120 + 80 * np.sin(k / 20)
            image = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 200)
            image += rng.normal(20, 5, image.shape)
            frame = av.VideoFrame.from_ndarray(image.clip(0, 255).astype(np.uint8), "gray")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def make_stack(path: Path, frames: int = 300) -> None:
    """Two channels interleaved page by page, with ScanImage's channel count in the header."""
    import tifffile

    rng = np.random.default_rng(1)
    data = rng.poisson(100, (frames * 2, 256, 256)).astype(np.uint16)
    header = "state.configPath='C:\\\\rig'\nstate.acq.numberOfChannelsSave=2\n"
    tifffile.imwrite(path, data, description=header, metadata=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    make_video(HERE / "video" / "behaviour.mkv", args.frames)
    make_stack(HERE / "tiff" / "stack.tif", args.frames)
    print("wrote examples/video/behaviour.mkv and examples/tiff/stack.tif")


if __name__ == "__main__":
    main()
