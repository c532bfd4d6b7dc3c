"""V4L2 device checks that turn "cannot open" into "no such device" / "permission denied" / ….

OpenCV's V4L2 backend only says that opening failed. Before handing a path to it we resolve the
udev symlink, open the node ourselves and ask ``VIDIOC_QUERYCAP`` whether it captures video.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError

# _IOR('V', 0, struct v4l2_capability); the struct is 104 bytes
VIDIOC_QUERYCAP = 0x80685600
_CAPABILITY = struct.Struct("=16s32s32sIII3I")
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
V4L2_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
V4L2_CAP_DEVICE_CAPS = 0x80000000


def check_v4l2_device(path: str) -> str:
    """Raise :class:`CaptureOpenError` unless ``path`` is a V4L2 capture node; return its card."""
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        raise CaptureOpenError(CaptureFailure.NO_SUCH_DEVICE, f"{path} does not exist") from e
    except PermissionError as e:
        raise CaptureOpenError(CaptureFailure.PERMISSION_DENIED, f"cannot look up {path}") from e
    except OSError as e:
        raise CaptureOpenError(CaptureFailure.NO_SUCH_DEVICE, f"{path}: {e.strerror}") from e
    if not stat.S_ISCHR(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a character device"
        raise CaptureOpenError(CaptureFailure.NOT_A_VIDEO_DEVICE, f"{path} is {kind}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError as e:
        raise CaptureOpenError(
            CaptureFailure.PERMISSION_DENIED,
            f"cannot open {path}; add the service user to the device's group (usually 'video')",
        ) from e
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT):
            raise CaptureOpenError(CaptureFailure.NO_SUCH_DEVICE, f"{path}: {e.strerror}") from e
        raise CaptureOpenError(CaptureFailure.OPEN_FAILED, f"{path}: {e.strerror}") from e
    try:
        buf = bytearray(_CAPABILITY.size)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buf, True)
    except OSError as e:
        raise CaptureOpenError(
            CaptureFailure.NOT_A_VIDEO_DEVICE, f"{path} does not answer VIDIOC_QUERYCAP"
        ) from e
    finally:
        os.close(fd)
    _driver, card, _bus, _version, caps, device_caps, *_ = _CAPABILITY.unpack(bytes(buf))
    effective = device_caps if caps & V4L2_CAP_DEVICE_CAPS else caps
    if not effective & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE):
        raise CaptureOpenError(
            CaptureFailure.NOT_A_VIDEO_DEVICE,
            f"{path} is a V4L2 node without video capture (a metadata or output node?)",
        )
    return bytes(card).split(b"\0", 1)[0].decode("utf-8", "replace")
