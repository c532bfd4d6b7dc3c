"""``edge-gate camera probe|snapshot``: is the camera reachable, fast enough and well placed?"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.sources import Image, Source, SourceSpec, open_source
from edge_gate.capture.url import redact
from edge_gate.cli.support import EXIT_CONFIG, config_option, fail, json_option, load_or_exit
from edge_gate.config import EdgeGateConfig, format_errors
from edge_gate.config.camera import CameraConfig
from edge_gate.errors import ConfigError, EdgeGateError

EXIT_CAMERA = 1


@dataclass(frozen=True)
class ProbeReport:
    url: str
    width: int
    height: int
    native_width: int
    native_height: int
    frames: int
    fps: float
    first_frame_s: float


def _camera_options(func: Any) -> Any:
    for opt in reversed(
        [
            config_option,
            click.option("--url", default=None, help="camera URL (overrides [camera] url)"),
            click.option(
                "--username-file",
                type=click.Path(path_type=Path, dir_okay=False),
                default=None,
                help="file holding the camera user name",
            ),
            click.option(
                "--password-file",
                type=click.Path(path_type=Path, dir_okay=False),
                default=None,
                help="file (mode 0600) holding the camera password",
            ),
            click.option(
                "--timeout", "timeout_s", type=float, default=None, help="open/read timeout [s]"
            ),
        ]
    ):
        func = opt(func)
    return func


def _config(
    config_path: Path | None,
    url: str | None,
    username_file: Path | None,
    password_file: Path | None,
    timeout_s: float | None,
) -> EdgeGateConfig:
    """The config file (unless only ``--url`` is given) with the command-line overrides."""
    cfg = load_or_exit(config_path) if config_path is not None or url is None else EdgeGateConfig()
    overrides: dict[str, Any] = {}
    if url is not None:
        overrides["url"] = url
    if username_file is not None:
        overrides["username_file"] = username_file
    if password_file is not None:
        overrides["password_file"] = password_file
    if timeout_s is not None:
        overrides["open_timeout_s"] = timeout_s
        overrides["stall_timeout_s"] = timeout_s
    if not overrides:
        return cfg
    try:
        camera = CameraConfig.model_validate({**cfg.camera.model_dump(), **overrides})
    except ValidationError as e:
        fail([f"camera.{line}" for line in format_errors(e)], EXIT_CONFIG)
    return cfg.model_copy(update={"camera": camera})


def _spec_or_exit(cfg: CameraConfig) -> SourceSpec:
    try:
        return SourceSpec.from_config(cfg)
    except (ConfigError, CaptureOpenError) as e:  # bad URL or unreadable credential files
        fail(f"camera: {redact(str(e))}", EXIT_CONFIG)


def _fail(as_json: bool, url: str, err: EdgeGateError) -> NoReturn:
    failure = err.failure if isinstance(err, CaptureOpenError) else None
    reason = failure.value if failure else "error"
    if as_json:
        detail = err.detail if isinstance(err, CaptureOpenError) else str(err)
        click.echo(json.dumps({"ok": False, "url": url, "error": reason, "detail": detail}))
    fail(f"camera: {err}", EXIT_CAMERA)


def probe_source(spec: SourceSpec, frames: int) -> ProbeReport:
    """Open, read ``frames`` frames, measure; raise :class:`CaptureOpenError` on failure."""
    t0 = time.monotonic()
    source: Source = open_source(spec)
    try:
        stamps: list[float] = []
        size = (0, 0)
        for _ in range(frames):
            image = source.read()
            if image is None:
                raise CaptureOpenError(
                    CaptureFailure.STREAM_ENDED, f"after {len(stamps)} of {frames} frames"
                )
            stamps.append(time.monotonic())
            size = (int(image.shape[1]), int(image.shape[0]))
        native = source.native_size
    finally:
        source.close()
    span_s = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return ProbeReport(
        url=spec.redacted_url,
        width=size[0],
        height=size[1],
        native_width=native[0],
        native_height=native[1],
        frames=len(stamps),
        fps=round((len(stamps) - 1) / span_s, 2) if span_s > 0 else 0.0,
        first_frame_s=round(stamps[0] - t0, 3),
    )


def _nth_frame(spec: SourceSpec, skip: int) -> Image:
    source = open_source(spec)
    try:
        for _ in range(skip):
            source.read()
        image = source.read()
    finally:
        source.close()
    if image is None:
        raise CaptureOpenError(CaptureFailure.STREAM_ENDED, "no frame")
    return image


@click.group()
def camera() -> None:
    """Check the camera link (installers)."""


@camera.command()
@_camera_options
@click.option("--frames", type=click.IntRange(1, 10_000), default=30, show_default=True)
@json_option
def probe(
    config_path: Path | None,
    url: str | None,
    username_file: Path | None,
    password_file: Path | None,
    timeout_s: float | None,
    frames: int,
    as_json: bool,
) -> None:
    """Connect, read N frames; print resolution, measured fps and first-frame latency.

    Exits 1 with the reason (auth failed, timeout, no such device, permission denied, …).
    """
    cfg = _config(config_path, url, username_file, password_file, timeout_s)
    spec = _spec_or_exit(cfg.camera)
    try:
        report = probe_source(spec, frames)
    except EdgeGateError as e:
        _fail(as_json, spec.redacted_url, e)
    if as_json:
        click.echo(json.dumps({"ok": True, **asdict(report)}))
        return
    click.echo(
        f"ok {report.url}: {report.width}x{report.height} "
        f"(camera {report.native_width}x{report.native_height}), {report.fps:.1f} fps over "
        f"{report.frames} frames, first frame after {report.first_frame_s:.2f} s"
    )


@camera.command()
@_camera_options
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="picture to write: PNG, or JPEG when the name ends in .jpg/.jpeg",
)
@click.option(
    "--skip", type=click.IntRange(0, 1000), default=5, show_default=True, help="frames to skip"
)
def snapshot(
    config_path: Path | None,
    url: str | None,
    username_file: Path | None,
    password_file: Path | None,
    timeout_s: float | None,
    out_path: Path,
    skip: int,
) -> None:
    """One frame with detected faces, landmarks and quality drawn on it (camera placement)."""
    import cv2

    from edge_gate.capture.annotate import annotate
    from edge_gate.fsutil import atomic_write
    from edge_gate.vision.pipeline import FacePipeline

    cfg = _config(config_path, url, username_file, password_file, timeout_s)
    spec = _spec_or_exit(cfg.camera)
    try:
        pipeline = FacePipeline.from_config(cfg.vision)
        image = _nth_frame(spec, skip)
        faces = pipeline.analyze(image, embed=False)
    except EdgeGateError as e:
        _fail(False, spec.redacted_url, e)
    picture = annotate(image, faces, min_face_px=cfg.vision.min_face_px, banner=spec.redacted_url)
    suffix = ".jpg" if out_path.suffix.lower() in (".jpg", ".jpeg") else ".png"
    ok, encoded = cv2.imencode(suffix, picture)
    if not ok:
        fail(f"camera: {suffix[1:].upper()} encoding failed")
    # a picture of the door area: private to the operator, like the gallery
    atomic_write(out_path, encoded.tobytes(), mode=0o600)
    click.echo(f"wrote {out_path}: {len(faces)} face(s)")
    for i, face in enumerate(faces):
        click.echo(f"  face {i}: {json.dumps(face.as_json(include_embedding=False))}")
