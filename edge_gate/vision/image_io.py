"""Safe image loading (adapter): limits are checked before any pixel is decoded.

Order of checks for a file: regular file (no FIFOs/devices/directories) → byte size → format
sniffed from the magic bytes → dimensions read from the header (PNG IHDR, JPEG SOF, PNM, BMP,
WebP) → pixel-count limit (decompression bombs are refused without allocating) → truncation
check (JPEG end-of-image, PNG IEND) → ``cv2.imdecode``. Every failure is an :class:`ImageError`
with a message fit for an operator; nothing else escapes.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate.errors import ImageError

U8 = npt.NDArray[np.uint8]

SUPPORTED_FORMATS = ("png", "jpeg", "pnm", "bmp", "webp")
_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Refuse files above ``max_bytes`` and images above ``max_pixels`` or ``max_side_px``."""

    max_bytes: int = 50_000_000
    max_pixels: int = 40_000_000
    max_side_px: int = 30_000


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header says, before decoding."""

    format: str
    width: int
    height: int


def _fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n} bytes"


def _png_header(data: bytes) -> ImageHeader:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("truncated or corrupt PNG (no IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader("png", width, height)


def _jpeg_header(data: bytes) -> ImageHeader:
    pos, n = 2, len(data)
    while True:
        while pos < n and data[pos] != 0xFF:
            pos += 1  # tolerate junk between segments like libjpeg does
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise ImageError("truncated JPEG (no frame header)")
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):
            raise ImageError("corrupt JPEG (image data before the frame header)")
        if pos + 2 > n:
            raise ImageError("truncated JPEG (segment header cut off)")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ImageError("corrupt JPEG (bad segment length)")
        if marker in _SOF_MARKERS:
            if pos + 7 > n:
                raise ImageError("truncated JPEG (frame header cut off)")
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            if height == 0:
                raise ImageError("unsupported JPEG (height defined after the scan)")
            return ImageHeader("jpeg", width, height)
        pos += length


def _pnm_header(data: bytes) -> ImageHeader:
    tokens: list[bytes] = []
    pos, n = 2, min(len(data), 4096)
    while len(tokens) < 2 and pos < n:
        c = data[pos : pos + 1]
        if c == b"#":
            end = data.find(b"\n", pos)
            pos = n if end < 0 else end + 1
        elif c.isspace():
            pos += 1
        else:
            start = pos
            while pos < n and not data[pos : pos + 1].isspace() and data[pos : pos + 1] != b"#":
                pos += 1
            tokens.append(data[start:pos])
    if len(tokens) < 2 or not all(t.isdigit() and len(t) <= 9 for t in tokens):
        raise ImageError("truncated or corrupt PNM header")
    return ImageHeader("pnm", int(tokens[0]), int(tokens[1]))


def _bmp_header(data: bytes) -> ImageHeader:
    if len(data) < 26:
        raise ImageError("truncated BMP header")
    (hdr_size,) = struct.unpack("<I", data[14:18])
    if hdr_size == 12:
        width, height = struct.unpack("<HH", data[18:22])
        return ImageHeader("bmp", width, height)
    width, height = struct.unpack("<ii", data[18:26])
    return ImageHeader("bmp", abs(width), abs(height))


def _webp_header(data: bytes) -> ImageHeader:
    if len(data) < 30:
        raise ImageError("truncated WebP header")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        b = data[21:25]
        width = 1 + (b[0] | ((b[1] & 0x3F) << 8))
        height = 1 + ((b[1] >> 6) | (b[2] << 2) | ((b[3] & 0x0F) << 10))
        return ImageHeader("webp", width, height)
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return ImageHeader("webp", width, height)
    raise ImageError("unsupported WebP variant")


def probe(data: bytes) -> ImageHeader:
    """Identify the format from magic bytes and read the dimensions from the header only."""
    if len(data) == 0:
        raise ImageError("empty file")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_header(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header(data)
    if len(data) >= 2 and data[0:1] == b"P" and data[1:2] in b"123456":
        return _pnm_header(data)
    if data.startswith(b"BM"):
        return _bmp_header(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp_header(data)
    for magic, name in (
        (b"GIF8", "GIF"),
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
        (b"P7", "PAM"),
        (b"v/1\x01", "OpenEXR"),
    ):
        if data.startswith(magic):
            raise ImageError(f"unsupported image format: {name} (use PNG, JPEG, PNM, BMP or WebP)")
    raise ImageError("not an image (unrecognised file header)")


def _check_complete(data: bytes, header: ImageHeader) -> None:
    """Refuse truncated files that decoders would otherwise half-decode with a grey tail."""
    if header.format == "jpeg":
        sos = data.find(b"\xff\xda")
        if sos < 0 or data.rfind(b"\xff\xd9") < sos:
            raise ImageError("truncated JPEG (no end-of-image marker)")
    elif header.format == "png" and data.rfind(b"IEND") < 0:
        raise ImageError("truncated PNG (no IEND chunk)")


def decode_image(data: bytes, limits: ImageLimits | None = None) -> U8:
    """Decode image bytes to a BGR uint8 array after all the header checks."""
    limits = limits or ImageLimits()
    if len(data) > limits.max_bytes:
        raise ImageError(
            f"file is {_fmt_bytes(len(data))}, over the {_fmt_bytes(limits.max_bytes)} limit"
        )
    header = probe(data)
    if header.width <= 0 or header.height <= 0:
        raise ImageError(
            f"invalid dimensions {header.width}x{header.height} in the {header.format} header"
        )
    pixels = header.width * header.height
    if pixels > limits.max_pixels or max(header.width, header.height) > limits.max_side_px:
        raise ImageError(
            f"image too large: {header.width}x{header.height} pixels declared "
            f"(limit {limits.max_pixels:,} pixels, {limits.max_side_px} px per side); "
            "refused before decoding"
        )
    _check_complete(data, header)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise ImageError(f"corrupt {header.format} data: cannot be decoded") from e
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"corrupt {header.format} data: cannot be decoded")
    decoded_hw = (int(image.shape[0]), int(image.shape[1]))
    # EXIF orientation 5-8 makes imdecode return the image rotated by 90 degrees
    if decoded_hw not in ((header.height, header.width), (header.width, header.height)):
        raise ImageError(f"corrupt {header.format} data: decoded size does not match the header")
    out: U8 = np.ascontiguousarray(image, dtype=np.uint8)
    if header.format == "jpeg" and _jpeg_filled_in(out):
        raise ImageError(
            "truncated JPEG: the image data ends early (part of the picture is missing)"
        )
    return out


_JPEG_FILL = 128
"""What libjpeg paints where the entropy-coded data ran out (it only warns on stderr)."""


def _jpeg_filled_in(image: U8) -> bool:
    """True when a whole 8-px block row along one edge is libjpeg's exact fill grey.

    A file cut short and given back its end marker decodes "successfully", the missing part
    mid-grey. No photograph has a full-width block row of exactly (128, 128, 128); any edge is
    checked because EXIF orientation may have turned the stored bottom to another side.
    """
    h, w = image.shape[:2]
    if h < 16 or w < 16:
        return False
    strips = (image[-8:], image[:8], image[:, -8:], image[:, :8])
    return any(bool((strip == _JPEG_FILL).all()) for strip in strips)


def read_image_bytes(path: Path, limits: ImageLimits | None = None) -> bytes:
    """Read a regular file of at most ``limits.max_bytes`` without blocking on FIFOs or devices."""
    limits = limits or ImageLimits()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        raise ImageError("no such file") from e
    except IsADirectoryError as e:
        raise ImageError("not a regular file (directory)") from e
    except PermissionError as e:
        raise ImageError("permission denied") from e
    except OSError as e:
        raise ImageError(f"cannot open: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError("not a regular file")
        if st.st_size > limits.max_bytes:
            raise ImageError(
                f"file is {_fmt_bytes(st.st_size)}, over the {_fmt_bytes(limits.max_bytes)} limit"
            )
        chunks: list[bytes] = []
        remaining = limits.max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as e:
        raise ImageError(f"cannot read: {e.strerror}") from e
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limits.max_bytes:
        raise ImageError(f"file grew past the {_fmt_bytes(limits.max_bytes)} limit while reading")
    return data


def load_image(path: Path, limits: ImageLimits | None = None) -> U8:
    """Load an image file as BGR uint8; raise :class:`ImageError` with a clear message."""
    return decode_image(read_image_bytes(Path(path), limits), limits)
