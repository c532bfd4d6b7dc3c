"""Read dlib's DNN serialisation (``dlib_face_recognition_resnet_model_v1.dat``) into numpy.

numpy only (no dlib, no TensorFlow). The format is dlib 19.x's ``serialize()`` of the
``anet_type`` of ``examples/dnn_face_recognition_ex.cpp``; the layer records appear input-first
because ``add_layer`` writes its sub-network before its own details. Each record starts with a
version string (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``, ``avg_pool_2``, ``add_prev_``,
``fc_2``, ``input_rgb_image_sized``); the fields that follow are read exactly as dlib's
``deserialize`` reads them (dlib/dnn/layers.h, input.h, cuda/tensor.h of dlib 19.24):

* integers: one control byte (low 4 bits = byte count, 0x80 = negative) + little-endian bytes;
* floats (``float_details``): mantissa (int64) and exponent (int16) as integers, value m * 2**e;
* strings: length (integer) + bytes;
* tensors: version 2, num_samples, k, nr, nc, then k*nr*nc*n little-endian IEEE float32;
* alias tensors: version 1, num_samples, k, nr, nc (a view into the layer's ``params``).

The whole layer sequence is then checked against the architecture of the example (29 conv layers,
4 down-sampling residual units, 150x150 input, 128-D output): anything else is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatError(ValueError):
    """The file is not the dlib ResNet this converter knows."""


@dataclass
class Layer:
    kind: str  # input | con | affine | relu | max_pool | avg_pool | add_prev | fc
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    ints: dict[str, int] = field(default_factory=dict)
    floats: dict[str, float] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def int(self) -> int:
        ctrl = self.data[self.pos]
        size, neg = ctrl & 0x0F, ctrl & 0x80
        if size > 8 or ctrl & 0x70:
            raise DatError(f"bad integer control byte 0x{ctrl:02x} at {self.pos}")
        raw = self.data[self.pos + 1 : self.pos + 1 + size]
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if neg else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def shape(self, version: int) -> tuple[int, int, int, int]:
        got = self.int()
        if got != version:
            raise DatError(f"tensor version {got} (expected {version}) at {self.pos}")
        n, k, nr, nc = (self.int() for _ in range(4))
        return n, k, nr, nc

    def tensor(self) -> np.ndarray:
        n, k, nr, nc = self.shape(2)
        count = n * k * nr * nc
        end = self.pos + 4 * count
        if end > len(self.data):
            raise DatError("truncated tensor")
        arr = np.frombuffer(self.data[self.pos : end], dtype="<f4").astype(np.float32)
        self.pos = end
        return arr.reshape(n, k, nr, nc) if count else arr


_RECORD = re.compile(rb"\x01([\x04-\x15])(con_4|con_5|affine_2|affine_|bn_con2|relu_|max_pool_2|"
                     rb"avg_pool_2|add_prev_|fc_2|fc_3|input_rgb_image_sized)")


def _record(name: str, r: _Reader) -> Layer:
    if name in ("con_4", "con_5"):
        params = r.tensor().reshape(-1)
        nf, nr, nc = r.int(), r.int(), r.int()
        sy, sx, py, px = r.int(), r.int(), r.int(), r.int()
        fshape = r.shape(1)
        bshape = r.shape(1)
        nw = int(np.prod(fshape))
        if fshape[0] != nf or fshape[2:] != (nr, nc) or params.size != nw + int(np.prod(bshape)):
            raise DatError(f"con_ filter shapes do not add up: {fshape} {bshape} {params.size}")
        return Layer(
            "con",
            {"w": params[:nw].reshape(fshape), "b": params[nw:].copy()},
            {"filters": nf, "nr": nr, "nc": nc, "stride_y": sy, "stride_x": sx,
             "pad_y": py, "pad_x": px},
        )
    if name in ("affine_", "affine_2"):
        params = r.tensor().reshape(-1)
        gshape, bshape = r.shape(1), r.shape(1)
        mode = r.int()
        ng = int(np.prod(gshape))
        if params.size != ng + int(np.prod(bshape)) or mode != 0:  # 0 = CONV_MODE (dlib/dnn/layers.h)
            raise DatError(f"affine_ is not a per-channel (CONV_MODE) layer: {gshape} mode {mode}")
        return Layer("affine", {"gamma": params[:ng].copy(), "beta": params[ng:].copy()})
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        return Layer(name[:-2], ints={"nr": nr, "nc": nc, "stride_y": sy, "stride_x": sx,
                                      "pad_y": py, "pad_x": px})
    if name in ("fc_2", "fc_3"):
        n_out, n_in = r.int(), r.int()
        params = r.tensor().reshape(-1)
        wshape, _bshape = r.shape(1), r.shape(1)
        if wshape[:2] != (n_in, n_out) or params.size != n_in * n_out:
            raise DatError(f"fc_ is not the 128-D no-bias layer: {wshape} {params.size}")
        return Layer("fc", {"w": params.reshape(n_in, n_out)}, {"outputs": n_out})
    if name == "input_rgb_image_sized":
        avg = [r.float() for _ in range(3)]
        nr, nc = r.int(), r.int()
        return Layer("input", ints={"nr": nr, "nc": nc},
                     floats={"avg_red": avg[0], "avg_green": avg[1], "avg_blue": avg[2]})
    if name == "relu_":
        return Layer("relu")
    if name == "add_prev_":
        return Layer("add_prev")
    raise DatError(f"layer {name!r} is not part of this network")  # bn_con2: not in the v1 file


def read_layers(path: Path) -> list[Layer]:
    """Every layer record of the file, input first."""
    data = path.read_bytes()
    layers: list[Layer] = []
    for m in _RECORD.finditer(data):
        name = m.group(2).decode()
        if m.group(1)[0] != len(name):
            continue
        layers.append(_record(name, _Reader(data, m.end())))
    return layers


@dataclass
class Unit:
    """One residual unit: two 3x3 convs (affine folded in); ``down`` = stride 2 + avg-pool skip."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    down: bool


@dataclass
class ResNet:
    mean_rgb: tuple[float, float, float]
    size: int
    stem_w: np.ndarray  # dlib layout [out, in, kh, kw]; affine folded in
    stem_b: np.ndarray
    units: list[Unit]
    fc: np.ndarray  # [256, 128]


def _fold(con: Layer, aff: Layer) -> tuple[np.ndarray, np.ndarray]:
    g, beta = aff.weights["gamma"], aff.weights["beta"]
    if con.kind != "con" or aff.kind != "affine" or g.size != con.ints["filters"]:
        raise DatError("expected a conv followed by its affine layer")
    w = con.weights["w"] * g[:, None, None, None]
    b = con.weights["b"] * g + beta
    return w.astype(np.float32), b.astype(np.float32)


def _expect(layer: Layer, kind: str, **ints: int) -> None:
    if layer.kind != kind or any(layer.ints.get(k) != v for k, v in ints.items()):
        raise DatError(f"expected {kind} {ints}, found {layer.kind} {layer.ints}")


def parse(path: Path) -> ResNet:
    """The network of ``dnn_face_recognition_ex.cpp``, checked layer by layer."""
    seq = read_layers(path)
    if not seq or seq[0].kind != "input":
        raise DatError("no input_rgb_image_sized record: not a dlib face recognition model")
    inp = seq[0]
    _expect(seq[1], "con", nr=7, nc=7, stride_y=2, stride_x=2, pad_y=0, pad_x=0, filters=32)
    stem_w, stem_b = _fold(seq[1], seq[2])
    _expect(seq[3], "relu")
    _expect(seq[4], "max_pool", nr=3, nc=3, stride_y=2, stride_x=2, pad_y=0, pad_x=0)
    units: list[Unit] = []
    i = 5
    while seq[i].kind == "con":
        down = seq[i].ints["stride_y"] == 2
        _expect(seq[i], "con", nr=3, nc=3, stride_x=seq[i].ints["stride_y"],
                pad_y=0 if down else 1, pad_x=0 if down else 1)
        w1, b1 = _fold(seq[i], seq[i + 1])
        _expect(seq[i + 2], "relu")
        _expect(seq[i + 3], "con", nr=3, nc=3, stride_y=1, stride_x=1, pad_y=1, pad_x=1)
        w2, b2 = _fold(seq[i + 3], seq[i + 4])
        i += 5
        if down:
            _expect(seq[i], "avg_pool", nr=2, nc=2, stride_y=2, stride_x=2, pad_y=0, pad_x=0)
            i += 1
        _expect(seq[i], "add_prev")
        _expect(seq[i + 1], "relu")
        i += 2
        units.append(Unit(w1, b1, w2, b2, down))
    _expect(seq[i], "avg_pool", nr=0, nc=0)  # avg_pool_everything
    _expect(seq[i + 1], "fc", outputs=128)
    if i + 2 != len(seq) or len(units) != 14 or sum(u.down for u in units) != 4:
        raise DatError(f"unexpected depth: {len(units)} units, {len(seq)} records")
    mean = (inp.floats["avg_red"], inp.floats["avg_green"], inp.floats["avg_blue"])
    return ResNet(mean, inp.ints["nr"], stem_w, stem_b, units, seq[i + 1].weights["w"])
