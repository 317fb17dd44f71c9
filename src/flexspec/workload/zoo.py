"""Built-in networks, described layer by layer (shapes only)."""

from __future__ import annotations

from ..errors import UnknownNameError
from ..spectral import real_model
from .layers import ActivationLayer, AddLayer, ConvLayer, LinearLayer, Network, PoolLayer


class _Builder:
    """Appends layers while tracking the current (C, H, W) shape."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.layers = []

    def conv(self, name, out_channels, kernel_size=3, stride=1, padding=1, bias=True, relu=True):
        c, h, w = self.shape
        layer = ConvLayer(name, c, out_channels, h, w, kernel_size, stride, padding, bias=bias)
        self.layers.append(layer)
        self.shape = layer.out_shape
        if relu:
            self.relu(f"{name}_relu")
        return layer

    def relu(self, name):
        self.layers.append(ActivationLayer(name, self.shape))

    def pool(self, name, kernel_size=2, stride=2, padding=0, kind="max"):
        c, h, w = self.shape
        layer = PoolLayer(name, c, h, w, kernel_size, stride, padding, kind)
        self.layers.append(layer)
        self.shape = layer.out_shape

    def linear(self, name, out_features, relu=True):
        in_features = 1
        for d in self.shape:
            in_features *= d
        self.layers.append(LinearLayer(name, in_features, out_features))
        self.shape = (out_features,)
        if relu:
            self.relu(f"{name}_relu")

    def add(self, name):
        self.layers.append(AddLayer(name, self.shape))


_VGG16_CFG = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def _vgg_features(b: _Builder):
    for block, widths in enumerate(_VGG16_CFG, start=1):
        for i, width in enumerate(widths, start=1):
            b.conv(f"conv{block}_{i}", width)
        b.pool(f"pool{block}")


def vgg16() -> Network:
    """VGG16 (configuration D, Simonyan & Zisserman 2015) for 224x224 ImageNet input: 138,357,544 parameters."""
    b = _Builder((3, 224, 224))
    _vgg_features(b)
    b.linear("fc6", 4096)
    b.linear("fc7", 4096)
    b.linear("fc8", 1000, relu=False)
    return Network("vgg16", (3, 224, 224), tuple(b.layers))


def vgg16_cifar() -> Network:
    """VGG16's convolution stack on 32x32 input (CIFAR-style), classifier 512 -> 512 -> 10."""
    b = _Builder((3, 32, 32))
    _vgg_features(b)
    b.linear("fc6", 512)
    b.linear("fc7", 10, relu=False)
    return Network("vgg16_cifar", (3, 32, 32), tuple(b.layers))


def resnet18() -> Network:
    """ResNet-18 (He et al. 2016) for 224x224 input.

    Only its 3x3 stride-1 convolutions are spectral-eligible; the 7x7 stem, the stride-2
    3x3 convolutions and the 1x1 downsampling convolutions stay spatial.  Batch-norm is
    folded into the preceding convolution (its parameters are not counted).
    """
    b = _Builder((3, 224, 224))
    b.conv("conv1", 64, kernel_size=7, stride=2, padding=3, bias=False)
    b.pool("maxpool", kernel_size=3, stride=2, padding=1)
    in_ch = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if (stage > 1 and block == 0) else 1
            prefix = f"layer{stage}_{block}"
            identity_shape = b.shape
            b.conv(f"{prefix}_conv1", width, stride=stride, bias=False)
            b.conv(f"{prefix}_conv2", width, bias=False, relu=False)
            if stride != 1 or in_ch != width:
                c, h, w = identity_shape
                ds = ConvLayer(f"{prefix}_downsample", c, width, h, w, 1, stride, 0, bias=False)
                b.layers.append(ds)
            b.add(f"{prefix}_add")
            b.relu(f"{prefix}_relu")
            in_ch = width
    c, h, w = b.shape
    b.pool("avgpool", kernel_size=h, stride=1, kind="avg")
    b.linear("fc", 1000, relu=False)
    return Network(
        "resnet18", (3, 224, 224), tuple(b.layers),
        notes=("batch-norm folded into the preceding convolutions; its 9,600 parameters are not counted",),
    )


def _trained_vgg(arch: real_model.RealModel) -> Network:
    """The Network of a shipped trained architecture (:class:`flexspec.spectral.real_model.RealModel`):
    its 3x3 convolutions block by block, a 2x2 max-pool after each block, fc1 (ReLU) and fc2."""
    b = _Builder((arch.in_channels, arch.input_size, arch.input_size))
    for block, widths in enumerate(arch.widths, start=1):
        for i, width in enumerate(widths, start=1):
            b.conv(f"conv{block}_{i}", width)
        b.pool(f"pool{block}")
    b.linear("fc1", arch.hidden)
    b.linear("fc2", arch.num_classes, relu=False)
    return Network(arch.name, (arch.in_channels, arch.input_size, arch.input_size), tuple(b.layers))


def fmnist_vgg() -> Network:
    """The small VGG-style CNN that ships trained on Fashion-MNIST (28x28x1): 3x3 convs 16-16 / 32-32 / 32-32
    with a 2x2 max-pool after each pair, fc1 288->64, fc2 64->10 (see flexspec.spectral.real_model)."""
    return _trained_vgg(real_model.FMNIST_VGG)


def fmnist_vgg16() -> Network:
    """VGG16's 13 convolutions (3x3, same padding, blocks 2-2-3-3-3, a 2x2 max-pool after each) at one
    eighth of VGG16's widths (8-8 / 16-16 / 32-32-32 / 64-64-64 / 64-64-64) on Fashion-MNIST zero-padded
    to 32x32, classifier fc1 64->64, fc2 64->10; ships trained (see flexspec.spectral.real_model)."""
    return _trained_vgg(real_model.FMNIST_VGG16)


#: Built-in networks by name.
NETWORKS = {
    "vgg16": vgg16,
    "vgg16_cifar": vgg16_cifar,
    "resnet18": resnet18,
    "fmnist_vgg": fmnist_vgg,
    "fmnist_vgg16": fmnist_vgg16,
}


def get_network(name: str) -> Network:
    """A built-in network by name; raises UnknownNameError listing the known names."""
    try:
        factory = NETWORKS[name]
    except KeyError:
        raise UnknownNameError("model", name, NETWORKS) from None
    return factory()
