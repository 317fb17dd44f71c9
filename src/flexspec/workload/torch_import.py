"""Import a ``torch.nn.Module`` or a saved ``torch.export`` program (.pt2) as a
:class:`~flexspec.workload.layers.Network`, with its trained weights.

Both go through ``torch.export``: the program's ATen graph is walked in execution order
(:func:`network_from_exported`), so residual additions, concatenations and functional
activations written inside ``forward`` are seen like modules.  Batch-norm is folded into
the convolution before it (weights and bias), flatten / reshape / dropout are shape-only,
and any operation without a cost model is kept as an ``UnsupportedLayer`` with its reason.

A module that ``torch.export`` cannot trace (data-dependent control flow) is imported from
forward hooks on its leaf modules instead; that view cannot see additions or concatenations
written in ``forward``, and the network's notes say so.
"""

from __future__ import annotations

import operator

import numpy as np

from ..errors import InputFileError, UsageError
from .graph import GraphBuilder, check_input_shape, file_sha256

_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "hardtanh": "relu6", "hardtanh_": "relu6",
                "leaky_relu": "leaky_relu", "leaky_relu_": "leaky_relu", "gelu": "gelu", "silu": "silu",
                "silu_": "silu", "sigmoid": "sigmoid", "tanh": "tanh", "hardswish": "hardswish",
                "hardswish_": "hardswish", "hardsigmoid": "hardsigmoid", "softmax": "softmax",
                "_softmax": "softmax", "elu": "elu", "mish": "mish"}
_SHAPE_ONLY = {"flatten", "view", "reshape", "_unsafe_view", "dropout", "dropout_", "clone", "contiguous",
               "detach", "alias", "feature_dropout", "squeeze", "unsqueeze", "lift_fresh_copy", "_to_copy"}
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _pair(v):
    if isinstance(v, (tuple, list)):
        return tuple(v) * 2 if len(v) == 1 else tuple(v)
    return (v, v)


def _op(node) -> str:
    """'conv2d' for aten.conv2d.default, 'getitem' for operator.getitem."""
    t = node.target
    if t is operator.getitem:
        return "getitem"
    name = getattr(t, "__name__", str(t))
    return name.split(".")[0]


def _layer_name(node, fqn: str | None) -> str:
    if fqn:
        return fqn
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, kind = list(stack.values())[-1]
        kind = getattr(kind, "__name__", str(kind))
        if path and kind.startswith("torch.nn.modules.") and not kind.endswith(_CONTAINERS):
            return path
        if path:
            return f"{path}.{node.name}"
    return node.name


def network_from_exported(ep, name: str, source: dict | None = None):
    """The Network of a ``torch.export.ExportedProgram`` (its one tensor input is the image)."""
    sig = ep.graph_signature
    params = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
              **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
    tensors = {**ep.state_dict, **getattr(ep, "constants", {})}
    user_inputs = [s for s in sig.user_inputs]
    if len(user_inputs) != 1:
        raise UsageError(f"the program takes {len(user_inputs)} inputs; FlexSpec imports models with one image input")
    graph = ep.graph_module.graph
    input_node = next(n for n in graph.nodes if n.op == "placeholder" and n.name == user_inputs[0])
    val = input_node.meta.get("val")
    if val is None or len(val.shape) != 4:
        raise UsageError("the program's input is not a batch of images [N, C, H, W]")
    b = GraphBuilder(name, input_node.name, tuple(int(d) for d in val.shape[1:]), source)

    def value(arg):
        """numpy value of a parameter / buffer / constant placeholder, else None."""
        if hasattr(arg, "name") and arg.name in params:
            t = tensors.get(params[arg.name])
            return None if t is None else t.detach().float().cpu().numpy()
        return None

    def fqn(arg):
        return params.get(getattr(arg, "name", None))

    def is_act(arg):
        return hasattr(arg, "name") and b.known(arg.name)

    for node in graph.nodes:
        if node.op != "call_function":
            continue
        op, args = _op(node), list(node.args)
        kw = dict(node.kwargs)
        out_val = node.meta.get("val")
        out_shape = tuple(int(d) for d in out_val.shape[1:]) if hasattr(out_val, "shape") else None
        x = args[0] if args else None
        xn = getattr(x, "name", None)
        if op == "getitem":
            if xn is not None and b.known(xn) and args[1] == 0:
                b.alias(node.name, xn, out_shape)
            continue
        if op in ("conv2d", "convolution"):
            w = value(args[1])
            raw = (fqn(args[1]) or node.name).removesuffix(".weight")
            bias = value(args[2]) if len(args) > 2 and args[2] is not None else None
            if op == "convolution":
                stride, pad, dil, transposed, _, groups = args[3:9]
                if transposed:
                    b.unsupported(raw, "conv_transpose2d", xn, node.name, out_shape, "transposed convolution")
                    continue
            else:
                rest = args[3:] + [None] * 4
                stride = rest[0] if rest[0] is not None else kw.get("stride", 1)
                pad = rest[1] if rest[1] is not None else kw.get("padding", 0)
                dil = rest[2] if rest[2] is not None else kw.get("dilation", 1)
                groups = rest[3] if rest[3] is not None else kw.get("groups", 1)
            if w is None or w.ndim != 4:
                b.unsupported(raw, op, xn, node.name, out_shape, "convolution whose weight is computed, not a parameter")
                continue
            if isinstance(pad, str):  # padding='same' / 'valid' (stride 1): the framework's pads
                kh, kw_ = (int(d) * (int(k) - 1) for d, k in zip(_pair(dil), w.shape[2:], strict=True))
                pad = (kh // 2, kw_ // 2, kh - kh // 2, kw_ - kw_ // 2) if pad == "same" else (0, 0)
            b.conv(raw, xn, node.name, out_shape, w, bias, _pair(stride), _pair(pad), _pair(dil), int(groups))
        elif op == "linear":
            raw = (fqn(args[1]) or node.name).removesuffix(".weight")
            w = value(args[1])
            if w is None:
                b.unsupported(raw, op, xn, node.name, out_shape, "matrix product with a computed operand")
                continue
            b.linear(raw, xn, node.name, w, value(args[2]) if len(args) > 2 and args[2] is not None else None)
        elif op in ("batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"):
            g, be, mean, var = (value(a) for a in args[1:5])
            eps = args[7] if op == "batch_norm" else args[-1]
            c = b.shape_of(xn)[0]
            g = np.ones(c) if g is None else g
            be = np.zeros(c) if be is None else be
            b.batchnorm(_layer_name(node, None), xn, node.name, g, be, mean, var, eps)
        elif op in _ACTIVATIONS:
            b.activation(_layer_name(node, None), xn, node.name, _ACTIVATIONS[op])
        elif op in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
            k = _pair(args[1])
            s = _pair(args[2]) if len(args) > 2 and args[2] else k
            p = _pair(args[3]) if len(args) > 3 else (0, 0)
            b.pool(_layer_name(node, None), xn, node.name, out_shape, "avg" if op == "avg_pool2d" else "max", k, s, p)
        elif op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            c, h, w_ = b.shape_of(xn)
            oh, ow = out_shape[1:]
            kind = "avg" if "avg" in op else "max"
            if h % oh or w_ % ow:
                b.unsupported(_layer_name(node, None), op, xn, node.name, out_shape,
                              f"adaptive pooling from {h}x{w_} to {oh}x{ow} is not a regular pool")
            else:
                b.pool(_layer_name(node, None), xn, node.name, out_shape, kind, (h // oh, w_ // ow),
                       (h // oh, w_ // ow), (0, 0))
        elif op == "mean" and len(b.shape_of(xn)) == 3 and sorted(int(d) % 4 for d in args[1]) == [2, 3]:
            b.global_pool(_layer_name(node, None), xn, node.name, "avg")
            if out_shape is not None and len(out_shape) == 1:
                b.alias(node.name, node.name, out_shape)
        elif op in ("add", "add_"):
            if all(is_act(a) for a in args[:2]):
                b.add(_layer_name(node, None), [a.name for a in args[:2]], node.name)
            elif is_act(x):
                other = value(args[1])
                b.add_constant(_layer_name(node, None), xn, node.name, other if other is not None else
                               np.asarray(args[1], np.float32))
            else:
                b.unsupported(_layer_name(node, None), op, None, node.name, out_shape, "addition of non-tensors")
        elif op == "cat":
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            tensors_in = [a.name for a in args[0]]
            nd = len(b.shape_of(tensors_in[0])) + 1
            b.concat(_layer_name(node, None), tensors_in, node.name, int(dim) % nd - 1)
        elif op in _SHAPE_ONLY:
            if xn is not None and b.known(xn):
                b.alias(node.name, xn, out_shape)
        elif op in ("mul", "mul_", "div", "div_") and not is_act(args[1] if len(args) > 1 else None):
            b.activation(_layer_name(node, None), xn, node.name, "scale")
        elif out_shape is not None:
            first = next((a.name for a in args if is_act(a)), None)
            b.unsupported(_layer_name(node, None), op, first, node.name, out_shape,
                          f"operation '{op}' has no FlexSpec cost model")
    return b.network()


def from_torch(model, input_shape, name: str | None = None):
    """Describe ``model`` (batch 1, input (C, H, W)) with its trained weights: ``torch.export``
    of the model in eval mode, or forward hooks when it cannot be exported."""
    import torch  # heavy optional dependency

    input_shape = check_input_shape(input_shape)
    name = name or type(model).__name__.lower()
    source = {"format": "torch.nn.Module (Python API)", "class": type(model).__name__}
    was_training = model.training
    model.eval()
    try:
        try:
            ep = torch.export.export(model, (torch.zeros((1, *input_shape)),), strict=False)
        except Exception as exc:  # noqa: BLE001 - not traceable: fall back to hooks
            try:
                net = _from_hooks(model, input_shape, name, source)
            except UsageError:
                raise
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            return type(net)(**{**net.__dict__, "notes": net.notes + (
                f"torch.export could not trace the model ({reason}); imported from forward hooks on its leaf "
                f"modules: additions and concatenations written in forward() are NOT visible and not costed",)})
        return network_from_exported(ep, name, source)
    finally:
        model.train(was_training)


def load_exported(path, name: str | None = None):
    """A Network from a ``torch.export.save`` file (.pt2), with the file's sha256 as provenance."""
    import torch  # heavy optional dependency

    try:
        ep = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad file
        raise InputFileError(path, f"not a torch.export program ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    source = {"format": "torch.export program (.pt2)", "path": str(path), "sha256": file_sha256(path)}
    return network_from_exported(ep, name or _stem(path), source)


def _stem(path) -> str:
    import os

    return os.path.splitext(os.path.basename(str(path)))[0]


# ------------------------------------------------------------------------- hooks fallback --
def _from_hooks(model, input_shape, name, source):
    import torch  # heavy optional dependency
    from torch import nn

    records = []

    def hook(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
            records.append((module, tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

    names, handles = {}, []
    for mod_name, module in model.named_modules():
        if not list(module.children()):
            names[id(module)] = mod_name or type(module).__name__
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    except Exception as exc:  # noqa: BLE001 - the user's model failed on this input shape
        raise UsageError(f"the model could not run on an input of shape {input_shape}: {exc}") from None
    finally:
        for h in handles:
            h.remove()
    b = GraphBuilder(name, "t0", input_shape, source)
    prev = "t0"
    for k, (module, in_shape, out_shape) in enumerate(records, 1):
        out = f"t{k}"
        if b.shape_of(prev) != in_shape:  # not a chain: a new branch the hooks cannot place
            b.shape[prev] = in_shape
        raw = names[id(module)]
        kind = type(module).__name__
        if isinstance(module, nn.Conv2d):
            if isinstance(module.padding, str):
                pad = (0, 0) if module.padding == "valid" else tuple(
                    d * (k_ - 1) // 2 for d, k_ in zip(module.dilation, module.kernel_size, strict=True))
            else:
                pad = _pair(module.padding)
            b.conv(raw, prev, out, out_shape, module.weight.detach().numpy(),
                   None if module.bias is None else module.bias.detach().numpy(), _pair(module.stride), pad,
                   _pair(module.dilation), module.groups)
        elif isinstance(module, nn.Linear):
            b.alias(prev, prev, (int(np.prod(in_shape)),))
            b.linear(raw, prev, out, module.weight.detach().numpy(),
                     None if module.bias is None else module.bias.detach().numpy())
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            b.batchnorm(raw, prev, out, module.weight.detach().numpy(), module.bias.detach().numpy(),
                        module.running_mean.numpy(), module.running_var.numpy(), module.eps)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k_ = _pair(module.kernel_size)
            b.pool(raw, prev, out, out_shape, "max" if isinstance(module, nn.MaxPool2d) else "avg", k_,
                   _pair(module.stride or module.kernel_size), _pair(module.padding))
        elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and \
                not (in_shape[1] % out_shape[1] or in_shape[2] % out_shape[2]):
            s = (in_shape[1] // out_shape[1], in_shape[2] // out_shape[2])
            b.pool(raw, prev, out, out_shape, "max" if "Max" in kind else "avg", s, s, (0, 0))
        elif kind.lower() in _ACTIVATIONS or kind in ("ReLU6",):
            b.activation(raw, prev, out, _ACTIVATIONS.get(kind.lower(), "relu6"))
        elif kind in ("Flatten", "Dropout", "Dropout2d", "Identity"):
            b.alias(out, prev, out_shape)
        else:
            b.unsupported(raw, kind, prev, out, out_shape, f"module {kind} has no FlexSpec cost model")
        prev = out
    return b.network()
