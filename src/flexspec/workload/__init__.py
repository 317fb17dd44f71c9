"""Workloads: layer/network descriptions, the built-in zoo, and import from PyTorch."""

from .layers import ActivationLayer, AddLayer, ConvLayer, Layer, LinearLayer, Network, PoolLayer
from .torch_import import from_torch
from .zoo import NETWORKS, get_network, resnet18, vgg16, vgg16_cifar

__all__ = [
    "ActivationLayer", "AddLayer", "ConvLayer", "Layer", "LinearLayer", "Network", "PoolLayer",
    "NETWORKS", "from_torch", "get_network", "resnet18", "vgg16", "vgg16_cifar",
]
