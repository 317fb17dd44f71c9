"""Layer and network descriptions: shapes only, no weights.

All layers are frozen dataclasses.  ``Network.layers`` is in execution order; a
``ConvLayer`` is *spectral-eligible* when it can run by FFT overlap-and-add on the
accelerator (stride 1, no groups, kernel larger than 1x1, square kernel); others stay
spatial and are reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import UsageError


def _check_positive(kind: str, name: str, **values):
    for key, value in values.items():
        if not isinstance(value, (int,)) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{kind} '{name}': {key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution (cross-correlation, like torch's Conv2d) with square kernel."""

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

    def __post_init__(self):
        _check_positive(
            "conv layer", self.name, in_channels=self.in_channels, out_channels=self.out_channels,
            height=self.height, width=self.width, kernel_size=self.kernel_size, stride=self.stride,
            groups=self.groups,
        )
        if self.padding < 0:
            raise UsageError(f"conv layer '{self.name}': padding must be >= 0, got {self.padding}")
        if self.out_height < 1 or self.out_width < 1:
            raise UsageError(f"conv layer '{self.name}': kernel {self.kernel_size} larger than padded input")

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def spectral_eligible(self) -> bool:
        return self.stride == 1 and self.groups == 1 and self.kernel_size > 1

    @property
    def why_spatial(self) -> str | None:
        """Why the layer stays spatial, or None if it goes spectral."""
        if self.stride != 1:
            return f"stride {self.stride}"
        if self.groups != 1:
            return f"groups {self.groups}"
        if self.kernel_size == 1:
            return "1x1 kernel"
        return None

    @property
    def weight_count(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel_size**2

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
class AddLayer:
    """Residual addition of two tensors of the same shape."""

    name: str
    shape: tuple[int, ...]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape


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


Layer = ConvLayer | PoolLayer | ActivationLayer | AddLayer | LinearLayer


@dataclass(frozen=True)
class Network:
    """A network: its name, input shape (C, H, W) and layers in execution order.

    ``notes`` records what an importer did not model (e.g. "bn1: BatchNorm2d folded into conv1").
    """

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[Layer, ...]
    notes: tuple[str, ...] = field(default=())

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
    def param_count(self) -> int:
        return sum(getattr(layer, "param_count", 0) for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(getattr(layer, "macs", 0) for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from ..errors import UnknownNameError

        raise UnknownNameError(f"layer of {self.name}", name, [lay.name for lay in self.layers])

    @property
    def output_elements(self) -> int:
        return math.prod(self.layers[-1].out_shape) if self.layers else math.prod(self.input_shape)
