"""Importers: from_torch (torch.export), ONNX and .pt2 files carry every layer and the trained weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import export_onnx, inception_ish, mobilenet_v2ish, small_cnn

from flexspec.errors import InputFileError, UsageError
from flexspec.workload import (
    AddLayer, ConcatLayer, ConvLayer, LinearLayer, UnsupportedLayer, from_torch, load_model,
)

pytest.importorskip("onnx")


def _conv_forward(net, name, x):
    """The imported (batch-norm folded) weights of one conv, applied by torch's conv2d."""
    lay, w = net.layer(name), net.weights[name]
    return F.conv2d(x, torch.from_numpy(w.weight), None if w.bias is None else torch.from_numpy(w.bias),
                    (lay.stride, lay.sw), (lay.padding, lay.pw), (lay.dilation, lay.dw), lay.groups)


def _structure(net):
    return [(type(lay).__name__, getattr(lay, "out_shape", None)) for lay in net.layers]


@pytest.fixture(scope="module")
def nets():
    return {"cnn": (small_cnn(), (1, 16, 16)), "mobilenet": (mobilenet_v2ish(), (3, 32, 32)),
            "inception": (inception_ish(), (3, 17, 17))}


def test_from_torch_weights_are_the_models_own_with_batchnorm_folded(nets):
    model, shape = nets["mobilenet"]
    net = from_torch(model, shape)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        want = model.stem[1](model.stem[0](x))  # conv -> batch-norm, by torch
        got = _conv_forward(net, "stem_0", x)
    assert torch.allclose(got, want, atol=1e-5)
    fc = net.weights["fc"]
    assert np.array_equal(fc.weight, model.fc.weight.detach().numpy())
    assert np.array_equal(fc.bias, model.fc.bias.detach().numpy())
    assert any("batch-norm folded into stem_0" in n for n in net.notes)


def test_mobilenet_shape_keeps_depthwise_pointwise_and_residual_adds(nets):
    net = from_torch(*nets["mobilenet"])
    whys = [c.why_spatial for c in net.conv_layers]
    assert whys.count("depthwise") == 2 and whys.count("1x1 kernel") == 4 and whys.count(None) == 1
    adds = [lay for lay in net.layers if isinstance(lay, AddLayer)]
    assert [a.operands for a in adds] == [("stem_2", "block1_project_0"), ("conv_1", "block2_project_0")]
    assert not net.unsupported_layers


def test_inception_shape_keeps_asymmetric_dilated_convs_and_concat(nets):
    model, shape = nets["inception"]
    net = from_torch(model, shape)
    convs = {c.name: c for c in net.conv_layers}
    assert len(convs) == 7  # nothing dropped: stem, b1, b7 x3, dil, head
    assert convs["b7_2"].kernel_shape == (1, 7) and convs["b7_2"].why_spatial == "asymmetric 1x7 kernel"
    assert convs["b7_4"].kernel_shape == (7, 1) and convs["dil"].why_spatial == "dilation 2"
    cat = next(lay for lay in net.layers if isinstance(lay, ConcatLayer))
    assert cat.shape == (24, 17, 17) and cat.operands == ("b1", "b7_4", "dil")
    x = torch.randn(1, 16, 17, 17)
    with torch.no_grad():
        for name, mod in (("b7_2", model.b7[2]), ("b7_4", model.b7[4]), ("dil", model.dil)):
            assert torch.allclose(_conv_forward(net, name, x[:, :mod.in_channels]), mod(x[:, :mod.in_channels]),
                                  atol=1e-5)
    # every MAC of the torch model is counted: conv MACs from torch's own output shapes
    macs = {}
    hooks = [m.register_forward_hook(lambda mod, i, o: macs.__setitem__(id(mod), o[0].numel() * mod.weight[0].numel()))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    assert sum(c.macs for c in net.conv_layers) == sum(macs.values())


@pytest.mark.parametrize("opset", [9, 13, 18])
@pytest.mark.parametrize("which", ["cnn", "mobilenet", "inception"])
def test_onnx_file_gives_the_same_network_and_weights(nets, tmp_path, which, opset):
    model, shape = nets[which]
    ref = from_torch(model, shape)
    net = load_model(export_onnx(model, shape, tmp_path / "m.onnx", opset))
    assert _structure(net) == _structure(ref)
    if which != "inception":  # module paths survive the export (functional ops at the top level have none)
        named = [lay.name for lay in ref.layers if not isinstance(lay, AddLayer)]
        assert [lay.name for lay in net.layers if not isinstance(lay, AddLayer)] == named
    assert net.source["format"] == f"ONNX (opset {opset})" and len(net.source["sha256"]) == 64
    ref_w = [ref.weights[c.name] for c in ref.layers if c.name in ref.weights]
    got_w = [net.weights[c.name] for c in net.layers if c.name in net.weights]
    for a, b in zip(ref_w, got_w, strict=True):
        np.testing.assert_allclose(b.weight, a.weight, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.bias, a.bias, rtol=1e-5, atol=1e-6)


def test_pt2_file_gives_the_same_network(nets, tmp_path):
    model, shape = nets["mobilenet"]
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, *shape),)), str(path))
    net = load_model(path)
    ref = from_torch(model, shape)
    assert [lay.name for lay in net.layers] == [lay.name for lay in ref.layers]
    assert net.source["format"].startswith("torch.export") and len(net.source["sha256"]) == 64
    assert all(np.array_equal(net.weights[k].weight, ref.weights[k].weight) for k in ref.weights)


def test_unsupported_operations_are_kept_with_their_reason():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Upsample(scale_factor=2),
                                torch.nn.Conv2d(8, 8, 3, padding=1))
    net = from_torch(model, (3, 8, 8))
    (bad,) = net.unsupported_layers
    assert isinstance(bad, UnsupportedLayer) and bad.shape == (8, 16, 16) and "no FlexSpec cost model" in bad.reason
    assert net.conv_layers[1].height == 16  # the shapes after it are the real ones


def test_bad_files_and_shapes(tmp_path):
    with pytest.raises(InputFileError, match=r"accepted model files are \.onnx .*\.pt2"):
        load_model(tmp_path / "model.h5")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(InputFileError, match="junk.onnx: not a readable ONNX model"):
        load_model(junk)
    with pytest.raises(InputFileError, match="not a torch.export program"):
        load_model(junk.rename(tmp_path / "junk.pt2"))
    with pytest.raises(UsageError, match=r"positive integer sizes, got \(3, 224.5, 224\)"):
        from_torch(small_cnn(), (3, 224.5, 224))


def test_onnx_opset_outside_the_range_is_refused(tmp_path):
    import onnx

    path = export_onnx(small_cnn(), (1, 16, 16), tmp_path / "m.onnx", 13)
    m = onnx.load(str(path))
    m.opset_import[0].version = 6
    onnx.save(m, str(path))
    with pytest.raises(InputFileError, match="opset 6 is not supported; supported opsets are 9 to 22"):
        load_model(path)


def test_a_conv_layer_spelling_is_unique():
    assert ConvLayer("c", 3, 4, 8, 8, 3, kernel_width=3) == ConvLayer("c", 3, 4, 8, 8, 3)
    assert isinstance(LinearLayer("f", 3, 4), LinearLayer)
