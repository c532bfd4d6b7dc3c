"""Files that hold secrets or state: atomic 0600 writes, strict reads, systemd credentials."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from edge_gate.errors import SecretFileError

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def adopt_directory_owner(fd: int, directory: Path) -> None:
    """Hand a file root just created to the owner of its directory.

    An admin runs the CLI as root (to read the root-only keys) against the service's state
    directory, owned by the service user; files it creates or opens there must stay usable by
    the service. Only a singly-linked regular file opened without following symlinks is handed
    over (never what a symlink or a hard link planted by that user points to); nothing happens
    for other users or in directories owned by root.
    """
    if os.geteuid() != 0:
        return
    owner = os.stat(directory)
    if owner.st_uid == 0 and owner.st_gid == 0:
        return
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return
    os.fchown(fd, owner.st_uid, owner.st_gid)


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """Open (creating, mode 0600) a state file without following a symlink, owned like its
    directory when root creates it (see :func:`adopt_directory_owner`); returns the fd."""
    fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        adopt_directory_owner(fd, Path(path).parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically: temp file (mode set before any byte), fsync, rename.

    A crash at any instant leaves either the old file or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        adopt_directory_owner(fd, path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def read_private_file(path: Path, max_bytes: int) -> bytes:
    """Read a secret file, refusing anything but a regular file that group and others cannot
    access, or one larger than ``max_bytes``.

    The checks look at the opened file (``fstat``), not the path, so the file cannot be swapped
    between the check and the read; ``O_NONBLOCK`` keeps a FIFO planted there from hanging us.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError as e:
        raise SecretFileError(f"{path}: no such file") from e
    except PermissionError as e:
        raise SecretFileError(f"{path}: permission denied") from e
    except OSError as e:
        raise SecretFileError(f"{path}: cannot open ({e.strerror})") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretFileError(f"{path}: not a regular file")
        if st.st_mode & 0o077:
            raise SecretFileError(
                f"{path}: mode {stat.S_IMODE(st.st_mode):04o} is too open; "
                f"it must not be readable by group or others (chmod 600 {path})"
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SecretFileError(f"{path}: larger than {max_bytes} bytes")
    return data


def read_secret(name: str, configured: Path | None, max_bytes: int = 65536) -> bytes:
    """Read a secret from ``$CREDENTIALS_DIRECTORY/<name>`` (systemd) or else ``configured``.

    systemd's credential directory is private to the unit (mode 0500, files 0400), so the
    same permission check applies to both sources.
    """
    cred_dir = os.environ.get(CREDENTIALS_ENV)
    candidates: list[Path] = []
    if cred_dir:
        candidates.append(Path(cred_dir) / name)
    if configured is not None:
        candidates.append(Path(configured))
    if not candidates:
        raise SecretFileError(f"secret {name!r}: no credential directory and no file configured")
    chosen = next((p for p in candidates if p.exists()), candidates[-1])
    data = read_private_file(chosen, max_bytes)
    if not data:
        raise SecretFileError(f"{chosen}: empty")
    return data
