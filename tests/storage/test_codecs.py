"""Compressed chunks: the bytes each HDF5 filter decodes, and what hdf5plugin says it writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from rigd.storage._codecs import CODECS, codec

# What hdf5plugin itself writes for each format: the filter and its options.
PLUGIN = {
    "lz4": hdf5plugin.LZ4(),
    "zstd": hdf5plugin.Zstd(clevel=1),
    "bitshuffle-lz4": hdf5plugin.Bitshuffle(cname="lz4"),
}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_each_codec_names_the_filter_and_options_hdf5plugin_writes(name: str) -> None:
    assert codec(name).filter_id == PLUGIN[name].filter_id
    assert codec(name).filter_options == tuple(PLUGIN[name].filter_options)


@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize(
    ("kind", "dtype", "shape"),
    [
        ("incompressible", np.uint8, (3, 40, 40)),
        ("zeros", np.uint16, (2, 64, 64)),
        ("noisy image", np.float32, (1, 24, 32)),
        ("odd sizes", np.int16, (5, 7, 3)),
    ],
)
def test_a_chunk_written_directly_reads_back_bit_for_bit_through_the_filter(
    tmp_path: Path, name: str, kind: str, dtype: type, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(7)
    if kind == "incompressible":
        chunk = rng.integers(0, 256, shape).astype(dtype)
    elif kind == "zeros":
        chunk = np.zeros(shape, dtype)
    else:
        chunk = rng.normal(1000, 12, shape).astype(dtype)
    found = codec(name)
    path = tmp_path / "chunk.h5"
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset(
            "x",
            shape=shape,
            chunks=shape,
            dtype=dtype,
            compression=found.filter_id,
            compression_opts=found.filter_options,
        )
        dataset.id.write_direct_chunk((0,) * len(shape), found.compress(chunk))

    with h5py.File(path, "r") as f:
        assert np.array_equal(f["x"][:], chunk)


def test_a_chunk_that_is_not_contiguous_is_refused() -> None:
    chunk = np.zeros((8, 8), np.uint16)[:, ::2]

    with pytest.raises(ValueError, match="C-contiguous"):
        codec("lz4").compress(chunk)


def test_an_unknown_compression_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown compression 'gzip'.*bitshuffle-lz4"):
        codec("gzip")


def test_without_hdf5plugin_raw_runs_record_and_compressed_ones_say_what_to_install(
    tmp_path: Path,
) -> None:
    # A child in which hdf5plugin cannot be imported: HDF5 has no filter to
    # write compressed chunks with.
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hdf5plugin"] = None
        import numpy as np
        from rigd.storage import RunWriter, StreamSpec
        raw = {str(tmp_path / "raw.h5")!r}
        with RunWriter(raw, [StreamSpec("cam", (4, 4), np.uint16)], run_id="r") as w:
            w.write("cam", np.ones((4, 4), np.uint16), 0, 0)
        try:
            RunWriter({str(tmp_path / "lz4.h5")!r},
                      [StreamSpec("cam", (4, 4), np.uint16, compression="lz4")], run_id="c")
        except RuntimeError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )

    assert "needs HDF5 filter 32004" in out.stdout
    assert "pip install hdf5plugin" in out.stdout
    assert not (tmp_path / "lz4.h5").exists()
    with h5py.File(tmp_path / "raw.h5", "r") as f:
        assert f["cam/frames"].shape == (1, 4, 4)
