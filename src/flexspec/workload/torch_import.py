"""Import a ``torch.nn.Module`` as a :class:`~flexspec.workload.layers.Network`.

The model is run once on a zero input of the given shape with forward hooks on its leaf
modules; every leaf that ran is recorded in execution order with its real input and
output shapes.  Batch-norm is recorded as folded into the preceding convolution, flatten
and dropout are shape-only; any other leaf is *unsupported*: it is named in
``Network.notes`` with what happens to it (it is skipped by the accelerator model).
Residual additions between modules are not leaves; when a module's input shape equals an
earlier output that did not come from the previous layer, no structure is guessed: the
accelerator models layers, and the functional executor handles only chains.
"""

from __future__ import annotations

from ..errors import UsageError
from .layers import ActivationLayer, ConvLayer, LinearLayer, Network, PoolLayer

_SHAPE_ONLY = ("Flatten", "Dropout", "Identity", "Dropout2d")
_NORMS = ("BatchNorm2d", "BatchNorm1d")
_ACTIVATIONS = {"ReLU": "relu", "ReLU6": "relu6", "LeakyReLU": "leaky_relu", "GELU": "gelu", "SiLU": "silu",
                "Sigmoid": "sigmoid", "Tanh": "tanh", "Hardswish": "hardswish"}


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def from_torch(model, input_shape, name: str | None = None) -> Network:
    """Trace ``model`` on one zero input of shape (C, H, W) (batch 1) and describe its layers."""
    import torch
    from torch import nn

    if len(tuple(input_shape)) != 3 or any(int(d) < 1 for d in input_shape):
        raise UsageError(f"input shape must be (C, H, W) with positive sizes, got {tuple(input_shape)}")
    input_shape = tuple(int(d) for d in input_shape)
    records = []

    def hook(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
            records.append((module, tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

    names = {}
    handles = []
    for mod_name, module in model.named_modules():
        if not list(module.children()):
            names[id(module)] = mod_name or type(module).__name__
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    except Exception as exc:  # the user's model failed on this input shape
        raise UsageError(f"the model could not run on an input of shape {input_shape}: {exc}") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    layers, notes, seen = [], [], {}
    for module, in_shape, out_shape in records:
        base = names[id(module)].replace(".", "_")
        seen[base] = seen.get(base, 0) + 1
        lname = base if seen[base] == 1 else f"{base}_{seen[base]}"
        kind = type(module).__name__
        if isinstance(module, nn.Conv2d):
            k = _pair(module.kernel_size)
            s, p, d = _pair(module.stride), _pair(module.padding), _pair(module.dilation)
            if k[0] != k[1] or s[0] != s[1] or p[0] != p[1] or d != (1, 1) or isinstance(module.padding, str):
                notes.append(f"{lname}: {kind} with kernel {k}, stride {s}, padding {p}, dilation {d} "
                             "is not modelled (non-square or dilated); skipped")
                continue
            layers.append(ConvLayer(lname, module.in_channels, module.out_channels, in_shape[1], in_shape[2],
                                    k[0], s[0], p[0], module.groups, module.bias is not None))
        elif isinstance(module, nn.Linear):
            layers.append(LinearLayer(lname, module.in_features, module.out_features, module.bias is not None))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = _pair(module.kernel_size), _pair(module.stride or module.kernel_size), _pair(module.padding)
            layers.append(PoolLayer(lname, in_shape[0], in_shape[1], in_shape[2], k[0], s[0], p[0],
                                    "max" if isinstance(module, nn.MaxPool2d) else "avg"))
        elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            if in_shape[1] % out_shape[1] or in_shape[2] % out_shape[2] or in_shape[1] // out_shape[1] != in_shape[2] // out_shape[2]:
                notes.append(f"{lname}: {kind} from {in_shape} to {out_shape} is not a regular pool; skipped")
                continue
            k = in_shape[1] // out_shape[1]
            layers.append(PoolLayer(lname, in_shape[0], in_shape[1], in_shape[2], k, k, 0,
                                    "max" if "Max" in kind else "avg"))
        elif kind in _ACTIVATIONS:
            layers.append(ActivationLayer(lname, out_shape, _ACTIVATIONS[kind]))
        elif kind in _NORMS:
            notes.append(f"{lname}: {kind} folded into the preceding layer")
        elif kind in _SHAPE_ONLY:
            continue
        else:
            notes.append(f"{lname}: unsupported layer {kind} ({in_shape} -> {out_shape}); not modelled, skipped")
    if not any(isinstance(layer, ConvLayer) for layer in layers):
        notes.append("the model has no convolution layer")
    return Network(name or type(model).__name__.lower(), input_shape, tuple(layers), tuple(notes))
