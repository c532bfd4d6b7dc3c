"""Safe image loading: limits before decoding, clear errors, never a crash (hypothesis fuzz)."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_gate.errors import ImageError
from edge_gate.vision.image_io import ImageLimits, decode_image, load_image, probe


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width``x``height`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _encoded(ext: str, shape: tuple[int, ...] = (48, 64, 3)) -> bytes:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 255, size=shape, dtype=np.uint8)
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".ppm", ".pgm"])
def test_valid_formats_decode_to_bgr(ext: str) -> None:
    """Each supported format decodes to an (H, W, 3) uint8 array of the header's size."""
    shape = (48, 64) if ext == ".pgm" else (48, 64, 3)
    data = _encoded(ext, shape)
    header = probe(data)
    assert (header.width, header.height) == (64, 48)
    image = decode_image(data)
    assert image.shape == (48, 64, 3)
    assert image.dtype == np.uint8


def test_exif_rotated_jpeg_is_upright() -> None:
    """A phone JPEG with EXIF orientation 6 decodes rotated (W and H swapped), not refused."""
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    data = buf.tobytes()
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 6) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", 8 + len(tiff)) + b"Exif\x00\x00" + tiff
    assert decode_image(data[:2] + app1 + data[2:]).shape == (80, 40, 3)


def test_decompression_bomb_refused_before_decoding() -> None:
    """A 100000x100000 PNG header is refused from the header alone, with a clear message."""
    data = bomb_png(100_000, 100_000)
    assert len(data) < 2000
    with pytest.raises(ImageError, match=r"too large: 100000x100000"):
        decode_image(data)


def test_jpeg_with_huge_declared_size_refused() -> None:
    """A JPEG whose SOF declares 65000x65000 is refused before libjpeg allocates."""
    data = bytearray(_encoded(".jpg"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    with pytest.raises(ImageError, match="too large"):
        decode_image(bytes(data))


def test_pixel_limit_is_configurable() -> None:
    """A normal image above a configured pixel limit is refused."""
    with pytest.raises(ImageError, match="too large"):
        decode_image(_encoded(".png"), ImageLimits(max_pixels=1000))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"hello world, not an image", "not an image"),
        (b"GIF89a" + b"\x00" * 20, "unsupported image format: GIF"),
        (b"II*\x00" + b"\x00" * 20, "unsupported image format: TIFF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated or corrupt PNG"),
        (b"\xff\xd8\xff", "truncated JPEG"),
        (b"P5\n# only a comment", "PNM header"),
    ],
)
def test_bad_inputs_give_clear_errors(data: bytes, message: str) -> None:
    """Garbage, foreign formats and cut-off headers give a specific ImageError message."""
    with pytest.raises(ImageError, match=message):
        decode_image(data)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_files_refused(ext: str) -> None:
    """A file cut in the middle of its pixel data is refused (no half-decoded grey image)."""
    data = _encoded(ext, (120, 160, 3))
    with pytest.raises(ImageError, match=r"truncated|corrupt"):
        decode_image(data[: len(data) * 2 // 3])


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.8])
def test_truncated_jpeg_with_its_end_marker_put_back_is_refused(
    testdata: Path, keep: float
) -> None:
    """A real photo cut short and given back its FF D9 end marker decodes without an error
    (libjpeg only warns and paints the missing part mid-grey): it is refused as truncated, so
    a half-grey face is never enrolled. The whole photo still decodes."""
    photo = sorted((testdata / "johns" / "John_Schneider").glob("*.jpg"))[0].read_bytes()
    assert decode_image(photo).shape == (150, 150, 3)
    forged = photo[: int(len(photo) * keep)] + b"\xff\xd9"
    with pytest.raises(ImageError, match="truncated JPEG: the image data ends early"):
        decode_image(forged)


def test_every_cached_real_picture_decodes(testdata: Path) -> None:
    """No false alarm from the truncation checks on the real pictures we have (ORL, johns,
    dlib scenes, scikit-image), 500 files."""
    paths = [
        p
        for p in sorted(testdata.rglob("*"))
        if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg", ".png", ".pgm"}
    ]
    assert len(paths) >= 450
    for path in paths:
        decode_image(path.read_bytes())


def test_oversized_file_refused_without_reading(tmp_path: Path) -> None:
    """A file above max_bytes is refused from its size (sparse 200 MB file, nothing read)."""
    path = tmp_path / "big.png"
    with open(path, "wb") as fh:
        fh.truncate(200_000_000)
    with pytest.raises(ImageError, match="over the"):
        load_image(path, ImageLimits(max_bytes=50_000_000))


def test_non_regular_files_refused(tmp_path: Path) -> None:
    """Directories, FIFOs and missing files are refused without blocking."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_load_image_from_file(tmp_path: Path) -> None:
    """A real file round-trips through load_image."""
    path = tmp_path / "ok.png"
    path.write_bytes(_encoded(".png"))
    assert load_image(path).shape == (48, 64, 3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_garbage_never_crashes(data: bytes) -> None:
    """Arbitrary bytes either decode or raise ImageError — nothing else."""
    try:
        image = decode_image(data, ImageLimits(max_pixels=4_000_000))
    except ImageError:
        return
    assert image.ndim == 3


_SEEDS = {ext: _encoded(ext, (40, 56, 3)) for ext in (".png", ".jpg", ".bmp", ".webp", ".ppm")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(_SEEDS)),
    st.integers(min_value=0, max_value=10_000),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
)
def test_fuzz_mutated_and_truncated_images(
    ext: str, cut: int, flips: list[tuple[int, int]]
) -> None:
    """Valid images truncated and with flipped bytes (headers included) never crash the loader."""
    data = bytearray(_SEEDS[ext][: max(cut, 1)])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        image = decode_image(bytes(data), ImageLimits(max_pixels=4_000_000))
    except ImageError:
        return
    assert image.dtype == np.uint8
    assert image.shape[0] * image.shape[1] <= 4_000_000


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_fuzz_declared_dimensions(width: int, height: int) -> None:
    """Any declared PNG size is either within limits or refused as too large, never allocated."""
    limits = ImageLimits(max_pixels=1_000_000, max_side_px=5000)
    too_large = width * height > limits.max_pixels or max(width, height) > limits.max_side_px
    message = ""
    try:
        decode_image(bomb_png(width, height), limits)
    except ImageError as e:
        message = str(e)
    assert ("too large" in message) == too_large


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(_SEEDS)),
    st.integers(min_value=0, max_value=10_000),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=32),
)
def test_fuzz_mutated_images_long(ext: str, cut: int, flips: list[tuple[int, int]]) -> None:
    """Long fuzz run (make test-slow): mutated/truncated images → decoded or ImageError only."""
    data = bytearray(_SEEDS[ext][: max(cut, 1)])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        decode_image(bytes(data), ImageLimits(max_pixels=4_000_000))
    except ImageError:
        return
