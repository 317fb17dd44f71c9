"""Layer and network descriptions: shapes, and (for imported models) the trained weights.

All layers are frozen dataclasses.  ``Network.layers`` is in execution order; a
``ConvLayer`` is *spectral-eligible* when it can run by FFT overlap-and-add on the
accelerator (stride 1, no groups, no dilation, square kernel larger than 1x1); others run
on the spatial mode of the PE arrays and are reported as such.  A layer no cost model
covers is kept as an :class:`UnsupportedLayer` with its reason: nothing is dropped.

``Network.weights`` maps a layer name to its :class:`LayerWeights` (weight and bias as
numpy arrays, batch-norm already folded) when an importer had them; ``Network.source``
says where the model came from (format, path, sha256 of the file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnknownNameError, UsageError


def _check_positive(kind: str, name: str, **values):
    for key, value in values.items():
        if not isinstance(value, (int,)) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{kind} '{name}': {key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution (cross-correlation, like torch's Conv2d).

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are the height-wise values; the
    ``*_width`` fields give the width-wise ones when they differ (None: the same), e.g. a 1x7
    kernel is ``kernel_size=1, kernel_width=7``."""

    name: str
    in_channels: int
    out_channels: int
    height: int  # input height (before padding)
    width: int  # input width
    kernel_size: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = True
    dilation: int = 1
    kernel_width: int | None = None
    stride_width: int | None = None
    padding_width: int | None = None
    dilation_width: int | None = None

    def __post_init__(self):
        # one spelling per layer: a width-wise value equal to the height-wise one is stored as None
        for wide, tall in (("kernel_width", "kernel_size"), ("stride_width", "stride"), ("padding_width", "padding"),
                           ("dilation_width", "dilation")):
            if getattr(self, wide) == getattr(self, tall):
                object.__setattr__(self, wide, None)
        _check_positive(
            "conv layer", self.name, in_channels=self.in_channels, out_channels=self.out_channels,
            height=self.height, width=self.width, kernel_size=self.kernel_size, stride=self.stride,
            groups=self.groups, dilation=self.dilation, kernel_width=self.kw, stride_width=self.sw,
            dilation_width=self.dw,
        )
        if self.padding < 0 or self.pw < 0:
            raise UsageError(f"conv layer '{self.name}': padding must be >= 0, got {self.padding}, {self.pw}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise UsageError(f"conv layer '{self.name}': {self.groups} groups do not divide {self.in_channels} "
                             f"input and {self.out_channels} output channels")
        if self.out_height < 1 or self.out_width < 1:
            raise UsageError(f"conv layer '{self.name}': kernel {self.kernel_shape} larger than padded input")

    # width-wise values (the height-wise ones when not given)
    @property
    def kw(self) -> int:
        return self.kernel_size if self.kernel_width is None else self.kernel_width

    @property
    def sw(self) -> int:
        return self.stride if self.stride_width is None else self.stride_width

    @property
    def pw(self) -> int:
        return self.padding if self.padding_width is None else self.padding_width

    @property
    def dw(self) -> int:
        return self.dilation if self.dilation_width is None else self.dilation_width

    @property
    def kernel_shape(self) -> tuple[int, int]:
        return (self.kernel_size, self.kw)

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.dilation * (self.kernel_size - 1) - 1) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.pw - self.dw * (self.kw - 1) - 1) // self.sw + 1

    @property
    def spectral_eligible(self) -> bool:
        return self.why_spatial is None

    @property
    def why_spatial(self) -> str | None:
        """Why the layer stays spatial, or None if it goes spectral."""
        if self.groups != 1:
            return "depthwise" if self.groups == self.in_channels else f"groups {self.groups}"
        if self.kernel_size != self.kw:
            return f"asymmetric {self.kernel_size}x{self.kw} kernel"
        if self.stride != 1 or self.sw != 1:
            return f"stride {self.stride}" if self.stride == self.sw else f"stride {self.stride}x{self.sw}"
        if self.dilation != 1 or self.dw != 1:
            return f"dilation {self.dilation}" if self.dilation == self.dw else f"dilation {self.dilation}x{self.dw}"
        if self.padding != self.pw:
            return f"asymmetric padding {self.padding}x{self.pw}"
        if self.kernel_size == 1:
            return "1x1 kernel"
        return None

    @property
    def weight_count(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel_size * self.kw

    @property
    def param_count(self) -> int:
        return self.weight_count + (self.out_channels if self.bias else 0)

    @property
    def macs(self) -> int:
        """Spatial multiply-accumulates of the layer (batch 1)."""
        return self.weight_count * self.out_height * self.out_width

    @property
    def input_elements(self) -> int:
        return self.in_channels * self.height * self.width

    @property
    def output_elements(self) -> int:
        return self.out_channels * self.out_height * self.out_width

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.out_channels, self.out_height, self.out_width)


@dataclass(frozen=True)
class PoolLayer:
    """Max or average pooling (``kind`` = 'max' | 'avg'); adaptive pools are stored with explicit sizes."""

    name: str
    channels: int
    height: int
    width: int
    kernel_size: int
    stride: int
    padding: int = 0
    kind: str = "max"

    def __post_init__(self):
        if self.kind not in ("max", "avg"):
            raise UsageError(f"pool layer '{self.name}': kind must be 'max' or 'avg', got {self.kind!r}")

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.out_height, self.out_width)


@dataclass(frozen=True)
class ActivationLayer:
    """Elementwise activation (``kind`` = 'relu'); batch-norm folded into convs is not a layer."""

    name: str
    shape: tuple[int, ...]
    kind: str = "relu"

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape


@dataclass(frozen=True)
class _Merge:
    """A layer that merges the tensors produced by ``operands`` (layer names, 'input' for the
    network input, when the importer knows them) into one of ``shape``."""

    name: str
    shape: tuple[int, ...]
    operands: tuple[str, ...] = ()

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class AddLayer(_Merge):
    """Residual addition of two (or more) tensors of the same shape."""


@dataclass(frozen=True)
class ConcatLayer(_Merge):
    """Concatenation along channels of the tensors produced by ``operands``."""


@dataclass(frozen=True)
class UnsupportedLayer:
    """An operation no FlexSpec cost model covers (``op``: the framework's name for it), kept in
    place so that reports list it with ``reason``; a run stops on it unless the user accepts the
    stated fallback cost (one read of its input and one write of its output through DRAM)."""

    name: str
    op: str
    in_shape: tuple[int, ...]
    shape: tuple[int, ...]
    reason: str

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape


@dataclass(frozen=True, eq=False)
class LayerWeights:
    """Trained parameters of one conv or linear layer (float32, batch-norm folded in):
    ``weight`` [Cout, Cin/groups, Kh, Kw] or [out, in]; ``bias`` [Cout] or None."""

    weight: np.ndarray
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class LinearLayer:
    """Fully connected layer; the input is flattened first."""

    name: str
    in_features: int
    out_features: int
    bias: bool = True

    @property
    def param_count(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

    @property
    def macs(self) -> int:
        return self.in_features * self.out_features

    @property
    def out_shape(self) -> tuple[int]:
        return (self.out_features,)


Layer = ConvLayer | PoolLayer | ActivationLayer | AddLayer | ConcatLayer | LinearLayer | UnsupportedLayer


@dataclass(frozen=True)
class Network:
    """A network: its name, input shape (C, H, W) and layers in execution order.

    ``notes`` records what an importer did (e.g. "bn1: BatchNorm2d folded into conv1").
    ``weights``: layer name -> :class:`LayerWeights` (empty for a shapes-only network);
    ``source``: where it came from, e.g. {"format": "onnx", "path": ..., "sha256": ...}.
    """

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[Layer, ...]
    notes: tuple[str, ...] = field(default=())
    weights: dict = field(default_factory=dict, repr=False)
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        names = [layer.name for layer in self.layers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise UsageError(f"network '{self.name}': duplicate layer names {sorted(dup)}")

    @property
    def conv_layers(self) -> tuple[ConvLayer, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, ConvLayer))

    @property
    def spectral_layers(self) -> tuple[ConvLayer, ...]:
        return tuple(layer for layer in self.conv_layers if layer.spectral_eligible)

    @property
    def spatial_conv_layers(self) -> tuple[ConvLayer, ...]:
        return tuple(layer for layer in self.conv_layers if not layer.spectral_eligible)

    @property
    def unsupported_layers(self) -> tuple[UnsupportedLayer, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, UnsupportedLayer))

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)

    @property
    def param_count(self) -> int:
        return sum(getattr(layer, "param_count", 0) for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(getattr(layer, "macs", 0) for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownNameError(f"layer of {self.name}", name, [lay.name for lay in self.layers])

    @property
    def output_elements(self) -> int:
        return math.prod(self.layers[-1].out_shape) if self.layers else math.prod(self.input_shape)
