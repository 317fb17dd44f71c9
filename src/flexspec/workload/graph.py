"""One network builder for every front end (torch module, torch.export program, ONNX).

A front end walks its graph in execution order and calls one method per operation, naming
tensors by the framework's names and giving each output's shape (without the batch):
:class:`GraphBuilder` records the layers, the trained weights (batch-norm folded into the
convolution or linear layer before it), which layer produced each tensor (so residual
additions and concatenations know their operands), and keeps every operation it has no
model for as an :class:`~flexspec.workload.layers.UnsupportedLayer` with its reason.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np

from ..errors import InputFileError, UsageError
from .layers import (
    ActivationLayer, AddLayer, ConcatLayer, ConvLayer, LayerWeights, LinearLayer, Network, PoolLayer, UnsupportedLayer,
)

INPUT = "input"


def check_input_shape(input_shape) -> tuple[int, int, int]:
    """(C, H, W) of positive integers; anything else (224.5, -1, a 4-tuple) is a UsageError."""
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise UsageError(f"input shape must be (C, H, W), got {input_shape!r}") from None
    ok = len(dims) == 3 and all(
        not isinstance(d, bool) and isinstance(d, (int, np.integer, float)) and float(d).is_integer() and d >= 1
        for d in dims)
    if not ok:
        raise UsageError(f"input shape must be (C, H, W) with positive integer sizes, got {dims!r}")
    return tuple(int(d) for d in dims)


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _f32(a):
    return None if a is None else np.ascontiguousarray(np.asarray(a, dtype=np.float32))


class GraphBuilder:
    """Collects layers in execution order; see the module docstring."""

    def __init__(self, name: str, input_tensor: str, input_shape, source: dict | None = None):
        self.name = name
        self.input_shape = check_input_shape(input_shape)
        self.shape = {input_tensor: self.input_shape}
        self.producer = {input_tensor: INPUT}
        self.layers: list = []
        self.notes: list[str] = []
        self.weights: dict = {}
        self.source = dict(source or {})
        self._taken: set = set()

    # -- helpers
    def _name(self, raw: str) -> str:
        base = re.sub(r"[^0-9A-Za-z_]+", "_", str(raw)).strip("_") or "layer"
        name, k = base, 1
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def _emit(self, layer, out: str, shape) -> str:
        self.layers.append(layer)
        self.shape[out] = tuple(int(d) for d in shape)
        self.producer[out] = layer.name
        return layer.name

    def shape_of(self, tensor: str) -> tuple:
        if tensor not in self.shape:
            raise UsageError(f"{self.name}: tensor '{tensor}' is used before it is produced")
        return self.shape[tensor]

    def known(self, tensor: str) -> bool:
        return tensor in self.shape

    def _layer(self, name):
        for layer in reversed(self.layers):
            if layer.name == name:
                return layer
        return None

    # -- operations
    def alias(self, out: str, x: str, shape=None) -> None:
        """A shape-only operation (flatten, reshape, dropout, identity): same data, same producer."""
        self.shape[out] = tuple(int(d) for d in (shape if shape is not None else self.shape_of(x)))
        self.producer[out] = self.producer[x]

    def conv(self, raw, x, out, out_shape, weight, bias, stride, pads, dilation, groups) -> str:
        """``pads``: (top, left, bottom, right) or (h, w); ``weight`` [Cout, Cin/groups, Kh, Kw]."""
        c, h, w = self.shape_of(x)
        weight = _f32(weight)
        cout, _, kh, kw = weight.shape
        pads = tuple(int(p) for p in pads)
        if len(pads) == 2:
            pads = pads + pads
        name = self._name(raw)
        ph, pw = (pads[0] + pads[2]) // 2, (pads[1] + pads[3]) // 2
        layer = ConvLayer(name, c, int(cout), h, w, int(kh), int(stride[0]), ph, int(groups), bias is not None,
                          int(dilation[0]), int(kw), int(stride[1]), pw, int(dilation[1]))
        if pads[0] != pads[2] or pads[1] != pads[3]:
            self.notes.append(f"{name}: asymmetric padding {pads} (top, left, bottom, right) modelled as ({ph}, {pw})")
        if layer.out_shape != tuple(out_shape):
            self.notes.append(f"{name}: output {tuple(out_shape)} differs from the modelled {layer.out_shape}")
        self.weights[name] = LayerWeights(weight, _f32(bias))
        return self._emit(layer, out, out_shape)

    def linear(self, raw, x, out, weight, bias) -> str:
        weight = _f32(weight)
        in_shape = self.shape_of(x)
        name = self._name(raw)
        if math.prod(in_shape) != weight.shape[1]:
            return self.unsupported(raw, "linear", x, out, (weight.shape[0],) if len(in_shape) == 1 else
                                    in_shape[:-1] + (weight.shape[0],),
                                    f"fully connected layer applied to a {in_shape} tensor (not flattened)")
        layer = LinearLayer(name, int(weight.shape[1]), int(weight.shape[0]), bias is not None)
        self.weights[name] = LayerWeights(weight, _f32(bias))
        return self._emit(layer, out, (weight.shape[0],))

    def pool(self, raw, x, out, out_shape, kind, kernel, stride, padding) -> str:
        c, h, w = self.shape_of(x)
        kernel, stride, padding = (tuple(int(v) for v in t) for t in (kernel, stride, padding))
        name = self._name(raw)
        if kernel[0] != kernel[1] or stride[0] != stride[1] or padding[0] != padding[1]:
            return self.unsupported(raw, f"{kind}pool", x, out, out_shape,
                                    f"non-square pooling {kernel}/{stride}/{padding}", name)
        layer = PoolLayer(name, c, h, w, kernel[0], stride[0], padding[0], kind)
        if layer.out_shape != tuple(out_shape):
            self.notes.append(f"{name}: pooling output {tuple(out_shape)} (e.g. ceil mode) differs from the "
                              f"modelled {layer.out_shape}; the framework's shape is carried on")
        return self._emit(layer, out, out_shape)

    def global_pool(self, raw, x, out, kind) -> str:
        c, h, w = self.shape_of(x)
        if h != w:
            return self.unsupported(raw, f"global {kind}pool", x, out, (c, 1, 1), f"non-square input {h}x{w}")
        return self.pool(raw, x, out, (c, 1, 1), kind, (h, h), (h, h), (0, 0))

    def activation(self, raw, x, out, kind) -> str:
        shape = self.shape_of(x)
        return self._emit(ActivationLayer(self._name(raw), shape, kind), out, shape)

    def batchnorm(self, raw, x, out, gamma, beta, mean, var, eps) -> str | None:
        """Folded into the conv or linear layer that produced ``x`` when it is the last layer so far;
        otherwise an element-wise affine step (fused into the stream that carries it)."""
        scale = _f32(gamma) / np.sqrt(_f32(var) + float(eps))
        shift = _f32(beta) - _f32(mean) * scale
        prod = self.producer.get(x)
        last = self.layers[-1] if self.layers else None
        if last is not None and prod == last.name and last.name in self.weights and \
                isinstance(last, (ConvLayer, LinearLayer)):
            lw = self.weights[last.name]
            shape = (-1,) + (1,) * (lw.weight.ndim - 1)
            bias = lw.bias if lw.bias is not None else np.zeros(lw.weight.shape[0], np.float32)
            self.weights[last.name] = LayerWeights(lw.weight * scale.reshape(shape), bias * scale + shift)
            if not getattr(last, "bias", True):
                self.layers[-1] = type(last)(**{**last.__dict__, "bias": True})
            self.notes.append(f"{self._name(raw)}: batch-norm folded into {last.name}")
            self.alias(out, x)
            return None
        return self.activation(raw, x, out, "batchnorm (affine)")

    def add_constant(self, raw, x, out, value) -> str | None:
        """x + constant: a bias of the conv / linear layer that produced x (folded), else element-wise."""
        value = _f32(value)
        last = self.layers[-1] if self.layers else None
        if last is not None and self.producer.get(x) == last.name and last.name in self.weights and \
                value.size == last.out_shape[0]:
            lw = self.weights[last.name]
            bias = lw.bias if lw.bias is not None else np.zeros(value.size, np.float32)
            self.weights[last.name] = LayerWeights(lw.weight, bias + value.ravel())
            self.alias(out, x)
            return None
        return self.activation(raw, x, out, "add constant")

    def _operands(self, xs) -> tuple[str, ...]:
        return tuple(self.producer[x] for x in xs)

    def add(self, raw, xs, out) -> str:
        shapes = {self.shape_of(x) for x in xs}
        if len(shapes) != 1:
            return self.unsupported(raw, "add", xs[0], out, max(shapes, key=math.prod),
                                    f"addition of tensors of different shapes {sorted(shapes)} (broadcast)")
        shape = shapes.pop()
        return self._emit(AddLayer(self._name(raw), shape, self._operands(xs)), out, shape)

    def concat(self, raw, xs, out, axis: int) -> str:
        shapes = [self.shape_of(x) for x in xs]
        if axis != 0 or any(len(s) != 3 or s[1:] != shapes[0][1:] for s in shapes):
            return self.unsupported(raw, "concat", xs[0], out, shapes[0],
                                    f"concatenation along axis {axis + 1} of {shapes} (only channels are modelled)")
        shape = (sum(s[0] for s in shapes),) + tuple(shapes[0][1:])
        return self._emit(ConcatLayer(self._name(raw), shape, self._operands(xs)), out, shape)

    def unsupported(self, raw, op, x, out, out_shape, reason, name=None) -> str:
        in_shape = self.shape_of(x) if x is not None and self.known(x) else ()
        layer = UnsupportedLayer(name or self._name(raw), str(op), tuple(in_shape), tuple(int(d) for d in out_shape),
                                 reason)
        return self._emit(layer, out, out_shape)

    def network(self) -> Network:
        if not any(isinstance(layer, ConvLayer) for layer in self.layers):
            self.notes.append("the model has no convolution layer")
        return Network(self.name, self.input_shape, tuple(self.layers), tuple(self.notes), dict(self.weights),
                       dict(self.source))


def bad_file(path, formats: str, why: str = "") -> InputFileError:
    return InputFileError(path, f"{why + '; ' if why else ''}accepted model files are {formats}")
