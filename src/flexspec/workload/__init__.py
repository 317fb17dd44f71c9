"""Workloads: layer/network descriptions, the built-in zoo, and importers (torch, torch.export, ONNX)."""

from .importers import ACCEPTED as ACCEPTED_MODEL_FILES, is_model_file, load_model
from .layers import (
    ActivationLayer, AddLayer, ConcatLayer, ConvLayer, Layer, LayerWeights, LinearLayer, Network, PoolLayer,
    UnsupportedLayer,
)
from .torch_import import from_torch
from .zoo import NETWORKS, get_network, resnet18, vgg16, vgg16_cifar

__all__ = [
    "ACCEPTED_MODEL_FILES", "ActivationLayer", "AddLayer", "ConcatLayer", "ConvLayer", "Layer", "LayerWeights",
    "LinearLayer", "Network", "PoolLayer", "UnsupportedLayer", "NETWORKS", "from_torch", "get_network",
    "is_model_file", "load_model", "resnet18", "vgg16", "vgg16_cifar",
]
