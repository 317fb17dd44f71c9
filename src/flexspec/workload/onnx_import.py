"""Import an ONNX model (graph + initializers) as a :class:`~flexspec.workload.layers.Network`.

Needs the optional ``onnx`` package (``pip install flexspec[onnx]``).  Supported: the default
ONNX domain at opsets :data:`OPSETS` (9 to 22; checked against models exported by
``torch.onnx.export`` at opsets 9, 13 and 18 in the tests, 11, 17 and 20 by hand), one image
input [N, C, H, W] of fixed size (a symbolic batch is fine), weights as initializers (or ``Constant`` nodes).  Shapes come
from ONNX shape inference.  Operators: Conv, Gemm, MatMul (+ Add of a constant: its bias),
BatchNormalization (folded into the conv before it), Relu, Clip (ReLU6), LeakyRelu, Sigmoid,
Tanh, HardSwish, HardSigmoid, Gelu, Softmax, MaxPool, AveragePool, GlobalAveragePool,
GlobalMaxPool, ReduceMean / ReduceMax over H and W, Add, Concat, Flatten, Reshape, Squeeze, Unsqueeze, Dropout, Identity; any other
operator becomes an ``UnsupportedLayer`` with its name.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputFileError, UsageError
from .graph import GraphBuilder, file_sha256

#: Opsets of the default domain this importer reads.
OPSETS = range(9, 23)
_ACT = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish",
        "HardSigmoid": "hardsigmoid", "Gelu": "gelu", "Softmax": "softmax", "Elu": "elu", "Mish": "mish"}
_SHAPE_ONLY = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Dropout", "Identity")


def _attrs(node) -> dict:
    from onnx import helper  # optional dependency

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _raw_name(node, weight_name: str | None = None) -> str:
    """The torch module path when the exporter recorded one ('/block1/expand/expand.0/Conv' ->
    'block1.expand.0'), else the weight's name, else the operator's."""
    if weight_name and not weight_name.startswith("onnx::") and weight_name.endswith(".weight"):
        return weight_name[: -len(".weight")]
    tokens: list[str] = []
    for part in [p for p in (node.name or "").strip("/").split("/") if p][:-1]:
        toks = part.split(".")
        tokens += toks[1:] if tokens and toks[0] == tokens[-1] else toks
    return ".".join(tokens) or node.op_type.lower()


def load_onnx(path, name: str | None = None):
    """The Network of the ONNX file ``path``, its weights, and its sha256 as provenance."""
    try:
        import onnx  # optional dependency
        from onnx import numpy_helper, shape_inference
    except ImportError:
        raise UsageError("reading ONNX files needs the 'onnx' package: pip install 'flexspec[onnx]'") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise InputFileError(path, f"not a readable ONNX model ({type(exc).__name__})") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset not in OPSETS:
        raise InputFileError(path, f"ONNX opset {opset} is not supported; supported opsets are "
                                   f"{OPSETS.start} to {OPSETS.stop - 1}", "opset_import")
    try:
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(path, f"ONNX shape inference failed: {exc}") from None
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for node in g.node:
        if node.op_type == "Constant":
            a = _attrs(node)
            if "value" in a:
                consts[node.output[0]] = numpy_helper.to_array(a["value"])
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise InputFileError(path, f"the model has {len(inputs)} inputs; FlexSpec imports models with one image "
                                   f"input", "graph.input")
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    in_shape = shapes[inputs[0].name]
    if len(in_shape) != 4 or any(d < 1 for d in in_shape[1:]):
        raise InputFileError(path, f"the input '{inputs[0].name}' has shape {in_shape}; FlexSpec needs "
                                   f"[N, C, H, W] with fixed C, H, W", "graph.input")
    source = {"format": f"ONNX (opset {opset})", "path": str(path), "sha256": file_sha256(path)}
    b = GraphBuilder(name or os.path.splitext(os.path.basename(str(path)))[0], inputs[0].name, in_shape[1:], source)

    def out_shape(t):
        s = shapes.get(t)
        if s is None or any(d < 0 for d in s[1:]):
            raise InputFileError(path, f"shape inference left tensor '{t}' without a fixed shape")
        return s[1:]

    for node in g.node:
        op, a = node.op_type, _attrs(node)
        ins = [i for i in node.input if i]
        out = node.output[0] if node.output else None
        acts = [i for i in ins if b.known(i)]
        if op == "Identity" and ins and ins[0] in consts:
            consts[out] = consts[ins[0]]
            continue
        if op == "Constant" or not acts:
            continue
        x = acts[0]
        if op == "Conv":
            w = consts.get(ins[1])
            if w is None:
                b.unsupported(_raw_name(node), op, x, out, out_shape(out), "convolution with a computed weight")
                continue
            k = w.shape[2:]
            pads = a.get("pads", [0, 0, 0, 0])
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
                tot = [max(0, (int(o) - 1) * int(s) + (int(kk) - 1) * int(d) + 1 - int(i)) for o, s, kk, d, i in
                       zip(out_shape(out)[1:], a.get("strides", [1, 1]), k, a.get("dilations", [1, 1]),
                           b.shape_of(x)[1:], strict=True)]
                pads = [tot[0] // 2, tot[1] // 2, tot[0] - tot[0] // 2, tot[1] - tot[1] // 2]
            b.conv(_raw_name(node, ins[1]), x, out, out_shape(out), w, consts.get(ins[2]) if len(ins) > 2 else None,
                   a.get("strides", [1, 1]), (pads[0], pads[1], pads[2], pads[3]), a.get("dilations", [1, 1]),
                   a.get("group", 1))
        elif op in ("Gemm", "MatMul"):
            w = consts.get(ins[1])
            if w is None or w.ndim != 2 or a.get("transA", 0):
                b.unsupported(_raw_name(node), op, x, out, out_shape(out), "matrix product of two activations")
                continue
            w = w if op == "Gemm" and a.get("transB", 0) else w.T
            w = w * a.get("alpha", 1.0)
            bias = consts.get(ins[2]) * a.get("beta", 1.0) if op == "Gemm" and len(ins) > 2 else None
            b.linear(_raw_name(node, ins[1]), x, out, w, bias)
        elif op == "BatchNormalization":
            g_, be, mean, var = (consts[i] for i in ins[1:5])
            b.batchnorm(_raw_name(node), x, out, g_, be, mean, var, a.get("epsilon", 1e-5))
        elif op in _ACT:
            b.activation(_raw_name(node), x, out, _ACT[op])
        elif op == "Clip":
            b.activation(_raw_name(node), x, out, "relu6")
        elif op in ("MaxPool", "AveragePool"):
            k = a["kernel_shape"]
            p = a.get("pads", [0, 0, 0, 0])
            b.pool(_raw_name(node), x, out, out_shape(out), "max" if op == "MaxPool" else "avg", k,
                   a.get("strides", k), (p[0], p[1]))
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            b.global_pool(_raw_name(node), x, out, "avg" if "Average" in op else "max")
        elif op in ("ReduceMean", "ReduceMax") and len(b.shape_of(x)) == 3:
            axes = a.get("axes", consts.get(ins[1]) if len(ins) > 1 else None)
            if axes is not None and sorted(int(v) % 4 for v in np.ravel(axes)) == [2, 3]:
                b.global_pool(_raw_name(node), x, out, "avg" if op == "ReduceMean" else "max")
                b.alias(out, out, out_shape(out))
            else:
                b.unsupported(_raw_name(node), op, x, out, out_shape(out), f"{op} over axes {axes}")
        elif op == "Add":
            if len(acts) == 2:
                b.add(_raw_name(node), acts, out)
            else:
                b.add_constant(_raw_name(node), x, out, consts[next(i for i in ins if i not in acts)])
        elif op in ("Mul", "Div", "Sub") and len(acts) == 1:
            b.activation(_raw_name(node), x, out, "scale")
        elif op == "Concat":
            nd = len(b.shape_of(acts[0])) + 1
            b.concat(_raw_name(node), acts, out, int(a.get("axis", 1)) % nd - 1)
        elif op in _SHAPE_ONLY:
            b.alias(out, x, out_shape(out))
        else:
            b.unsupported(_raw_name(node), op, x, out, out_shape(out), f"ONNX operator {op} has no FlexSpec "
                                                                            f"cost model")
    return b.network()
