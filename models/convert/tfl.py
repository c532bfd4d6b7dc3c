"""TFLite conversion helpers shared by the converters (conversion venv only)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

RepGen = Callable[[], Iterable[list[np.ndarray]]]


def freeze(fn: tf.types.experimental.ConcreteFunction) -> tf.types.experimental.ConcreteFunction:
    """Variables -> constants; int8 calibration fails on READ_VARIABLE otherwise."""
    return convert_variables_to_constants_v2(fn)


def convert(
    frozen: tf.types.experimental.ConcreteFunction,
    variant: str,
    rep: RepGen | None = None,
) -> bytes:
    """fp32 | fp16 (weights) | int8 (full integer kernels, float32 input/output kept)."""
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if variant == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if rep is None:
            raise ValueError("int8 needs a representative dataset")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Float in/out: callers never quantize; the model holds QUANTIZE/DEQUANTIZE at its edges.
        conv.inference_input_type = tf.float32
        conv.inference_output_type = tf.float32
    elif variant != "fp32":
        raise ValueError(variant)
    data: bytes = conv.convert()
    return data


def name_outputs(data: bytes, by_last_dim: dict[int, str], order: list[str]) -> bytes:
    """Rename the converter's Identity* outputs and put them in the documented order.

    Outputs are told apart by their last dimension (unique within each model here)."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.convert_bytearray_to_object(bytearray(data))
    sg = model.subgraphs[0]
    named: dict[str, int] = {}
    for idx in sg.outputs:
        t = sg.tensors[idx]
        name = by_last_dim[int(t.shape[-1])]
        t.name = name.encode()
        named[name] = idx
    sg.outputs = [named[n] for n in order]
    return bytes(fu.convert_object_to_bytearray(model))


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    print(f"wrote {path.name} {len(data)} bytes")


def run_tflite(path_or_bytes: Path | bytes, feeds: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run one input through a TFLite model (TF's interpreter), resizing dynamic inputs."""
    if isinstance(path_or_bytes, Path):
        it = tf.lite.Interpreter(model_path=str(path_or_bytes), num_threads=2)
    else:
        it = tf.lite.Interpreter(model_content=path_or_bytes, num_threads=2)
    ins = it.get_input_details()
    for d, x in zip(ins, feeds, strict=True):
        if list(d["shape"]) != list(x.shape):
            it.resize_tensor_input(d["index"], list(x.shape))
    it.allocate_tensors()
    for d, x in zip(ins, feeds, strict=True):
        it.set_tensor(d["index"], x.astype(np.float32))
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
