"""The live view's parts in one process: the tap on a real ring, the
rendering with Pillow, and the browser's settings, hostile ones included."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from rigd.service._console import _Settings
from rigd.service._preview import PreviewTap, render
from rigd.storage import FrameRing


@pytest.fixture
def ring() -> Iterator[FrameRing]:
    with FrameRing.create(f"preview-{uuid.uuid4().hex[:8]}", (600, 800), np.uint16, 4) as r:
        yield r
        r.close()


def test_the_tap_takes_the_newest_frame_and_never_holds_the_writer_back(
    ring: FrameRing,
) -> None:
    tap = PreviewTap(ring.name)
    try:
        assert tap.take(256) is None  # nothing committed yet
        writer = ring.writer()
        frame = np.arange(600 * 800, dtype=np.uint16).reshape(600, 800)
        # A whole ring and more, without ever waiting: the tap holds no slot.
        for k in range(10):
            writer.put_nowait(frame + k, frame_id=100 + k, timestamp_ns=k)
        taken = tap.take(256, cursor=(799, 599))
        assert taken is not None
        assert (taken.frame_id, taken.seq, taken.timestamp_ns) == (109, 9, 9)
        assert taken.step == 4  # 800 / 4 = 200 <= 256
        assert taken.pixels.shape == (150, 200)
        assert np.array_equal(taken.pixels, (frame + 9)[::4, ::4])
        assert taken.cursor_value == float(frame[599, 799] + 9)
        (stats,) = ring.statistics().readers
        assert stats.frames_dropped == 0  # skipping to the newest is not a drop
        assert stats.frames_read == 1
        assert tap.take(256, cursor=(800, 0)).cursor_value is None  # outside the frame
    finally:
        tap.close()
    assert ring.statistics().readers == ()  # its reader slot is given back


def test_a_tap_on_a_ring_that_is_gone_says_so() -> None:
    with pytest.raises(FileNotFoundError, match="is its owner running"):
        PreviewTap("rigd-1-ring-no-such-ring")


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_render_maps_the_contrast_to_8_bits_and_encodes(fmt: str) -> None:
    from rigd.service._preview import PreviewFrame

    pixels = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (40, 1))  # 40 x 100
    taken = PreviewFrame(7, 7, 0, (40, 100), 1, pixels, None)
    meta, image = render(taken, (0.0, 990.0), fmt)
    decoded = np.asarray(Image.open(io.BytesIO(image)).convert("L"))  # WebP decodes as RGB
    assert decoded.shape == (40, 100)
    assert (meta["width"], meta["height"], meta["frame_id"]) == (100, 40, 7)
    assert meta["contrast"] == [0.0, 990.0]
    assert meta["mime"] == f"image/{fmt}"
    assert sum(meta["histogram"]["counts"]) == pixels.size
    assert (meta["histogram"]["min"], meta["histogram"]["max"]) == (0.0, 990.0)
    tolerance = 0 if fmt == "png" else 8  # lossy codecs
    assert abs(int(decoded[0, 0]) - 0) <= tolerance
    assert abs(int(decoded[0, -1]) - 255) <= tolerance
    auto, _ = render(taken, None, fmt)
    assert 0 <= auto["contrast"][0] < auto["contrast"][1] <= 990
    flat = PreviewFrame(1, 1, 0, (4, 4), 1, np.full((4, 4), 5, np.uint16), None)
    assert render(flat, None, fmt)[0]["contrast"] == [5.0, 6.0]  # no zero-width window


def test_render_refuses_a_format_it_does_not_encode() -> None:
    from rigd.service._preview import PreviewFrame

    taken = PreviewFrame(1, 1, 0, (2, 2), 1, np.zeros((2, 2), np.uint16), None)
    with pytest.raises(ValueError, match="format 'gif'"):
        render(taken, None, "gif")


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"fps": "fast"}, "fps"),
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"fps": True}, "fps"),
        ({"max_size": 8}, "max_size"),
        ({"max_size": 1e9}, "max_size"),
        ({"format": "bmp"}, "format"),
        ({"contrast": [5, 1]}, "contrast"),
        ({"contrast": "high"}, "contrast"),
        ({"contrast": [0, float("inf")]}, "contrast"),
        ({"cursor": [1.5, 2]}, "cursor"),
        ({"cursor": "here"}, "cursor"),
        ({"stream": 3}, "stream"),
        ({"ack": "yes"}, "ack"),
        ({"colour": "red"}, "unknown setting"),
        (["fps", 3], "JSON object"),
    ],
)
def test_a_wrong_setting_is_refused_naming_it_and_changes_nothing(
    message: object, field: str
) -> None:
    settings = _Settings()
    settings.update({"fps": 20, "contrast": [1, 2], "cursor": [3, 4]})
    before = _Settings(**vars(settings))
    with pytest.raises(ValueError, match=field):
        settings.update({"fps": 5, **message} if isinstance(message, dict) else message)
    assert settings == before


def test_settings_clamp_the_rate_and_take_auto_contrast() -> None:
    settings = _Settings()
    settings.update({"fps": 1000, "contrast": "auto", "cursor": None, "ack": 3})
    assert settings.fps == 60.0
    assert settings.contrast is None
    assert settings.acks == 1
