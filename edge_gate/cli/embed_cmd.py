"""``edge-gate embed [--model NAME] [--json] IMAGE...``: detect, measure and embed faces in images.

With ``--json`` each image gives one JSON object per line::

    {"path", "width", "height", "error",
     "faces": [{"box", "score", "landmarks", "quality", "embedding"}]}

faces sorted largest first. A bad image (unreadable, truncated, oversized, not an image) gets
``"error": "<message>"`` and the run goes on. Exit status: 0 when the run completed (even if some
images failed), 1 when the models cannot be loaded, 2 for usage errors, 78 for an invalid config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edge_gate.cli.support import config_option, fail, json_option, load_or_exit
from edge_gate.config import VisionConfig, default_config_path
from edge_gate.errors import EdgeGateError, ImageError, ModelIntegrityError
from edge_gate.vision.image_io import ImageLimits, load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.runtime import load_manifest, resolve_models_dir

EXIT_MODELS = 1


def vision_config(config_path: Path | None, min_face_px: int | None) -> VisionConfig:
    """``[vision]`` from ``--config``, else from the default file if present, else defaults."""
    if config_path is not None or default_config_path().is_file():
        vision = load_or_exit(config_path).vision
    else:
        vision = VisionConfig()
    if min_face_px is not None:
        vision = vision.model_copy(update={"min_face_px": min_face_px})
    return vision


def embed_one(pipe: FacePipeline, path: Path, limits: ImageLimits) -> dict[str, Any]:
    """The JSON record of one image; per-image failures become ``error``."""
    record: dict[str, Any] = {
        "path": str(path),
        "width": None,
        "height": None,
        "faces": [],
        "error": None,
    }
    try:
        image = load_image(path, limits)
    except ImageError as e:
        record["error"] = str(e)
        return record
    record["height"], record["width"] = int(image.shape[0]), int(image.shape[1])
    try:
        faces = pipe.analyze(image, embed=True)
    except EdgeGateError as e:
        record["error"] = f"face analysis failed: {e}"
        return record
    record["faces"] = [f.as_json() for f in faces]
    return record


def _print_table(records: list[dict[str, Any]], model_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"edge-gate embed ({model_id})")
    for col in (
        "image",
        "size",
        "face",
        "box x1 y1 x2 y2",
        "score",
        "eyes px",
        "yaw/pitch",
        "error",
    ):
        table.add_column(col, overflow="fold")
    for r in records:
        name = Path(r["path"]).name
        size = f"{r['width']}x{r['height']}" if r["width"] else ""
        if not r["faces"]:
            table.add_row(name, size, "-", "", "", "", "", r["error"] or "no face")
        for i, f in enumerate(r["faces"]):
            q = f["quality"]
            table.add_row(
                name if i == 0 else "",
                size if i == 0 else "",
                str(i + 1),
                " ".join(f"{v:.0f}" for v in f["box"]),
                f"{f['score']:.3f}",
                f"{q['inter_eye_px']:.0f}",
                f"{q['yaw_deg']:.0f}/{q['pitch_deg']:.0f}",
                "",
            )
    Console().print(table)


def _check_model_name(vision: VisionConfig, model: str) -> None:
    """An unknown ``--model`` is a usage error (exit 2) naming the known ones; a missing or
    broken manifest is left to the model loader (exit 1)."""
    try:
        manifest = load_manifest(resolve_models_dir(vision.models_dir))
    except EdgeGateError:
        return
    try:
        manifest.resolve(model)
    except ModelIntegrityError as e:
        raise click.BadParameter(str(e), param_hint="--model") from e


@click.command("embed")
@click.option(
    "--model",
    "model",
    default=None,
    help="embedder: manifest id or family; several joined with + are fused "
    "[default: config vision.embedders]",
)
@json_option(help="one JSON object per line per image")
@click.option(
    "--min-face-px", type=click.IntRange(12, 1000), default=None, help="smallest face to look for"
)
@config_option
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
def embed(
    model: str | None,
    as_json: bool,
    min_face_px: int | None,
    config_path: Path | None,
    images: tuple[Path, ...],
) -> None:
    """Detect faces in IMAGE files and print boxes, landmarks, quality and embeddings."""
    vision = vision_config(config_path, min_face_px)
    if model is not None:
        _check_model_name(vision, model)
    try:
        pipe = FacePipeline.from_config(vision, embedder=model)
    except EdgeGateError as e:
        fail(f"cannot load models: {e}", EXIT_MODELS, command="embed")
    limits = ImageLimits(max_bytes=vision.max_image_bytes, max_pixels=vision.max_image_pixels)
    records: list[dict[str, Any]] = []
    for path in images:
        record = embed_one(pipe, path, limits)
        if as_json:
            click.echo(json.dumps(record, separators=(",", ":")))
        else:
            records.append(record)
    if not as_json:
        _print_table(records, pipe.embedder_id)
