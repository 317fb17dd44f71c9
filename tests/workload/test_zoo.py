"""Built-in networks against the published architectures, and import from torch."""

import pytest
import torch
from torch import nn

from flexspec.errors import UnknownNameError, UsageError
from flexspec.workload import ConvLayer, from_torch, get_network


def test_vgg16_matches_published_architecture():
    net = get_network("vgg16")
    convs = net.conv_layers
    assert len(convs) == 13
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert [c.height for c in convs] == [224, 224, 112, 112, 56, 56, 56, 28, 28, 28, 14, 14, 14]
    assert all(c.kernel_size == 3 and c.padding == 1 and c.spectral_eligible for c in convs)
    assert net.param_count == 138_357_544
    assert round(net.macs / 1e9, 2) == 15.47


def test_vgg16_param_count_equals_torch_build():
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                          nn.ReLU(), nn.Linear(4096, 1000))
    imported = from_torch(model, (3, 224, 224))
    assert imported.param_count == sum(p.numel() for p in model.parameters()) == get_network("vgg16").param_count
    assert [(c.in_channels, c.out_channels, c.height) for c in imported.conv_layers] == \
        [(c.in_channels, c.out_channels, c.height) for c in get_network("vgg16").conv_layers]


def test_resnet18_spectral_and_spatial_split():
    net = get_network("resnet18")
    assert len(net.conv_layers) == 20
    assert len(net.spectral_layers) == 13  # 3x3 stride-1 convolutions
    spatial = {c.name: c.why_spatial for c in net.spatial_conv_layers}
    assert spatial["conv1"] == "stride 2"
    assert spatial["layer2_0_downsample"] == "stride 2"
    assert all(c.kernel_size == 3 and c.stride == 1 for c in net.spectral_layers)
    assert net.param_count == 11_689_512 - 9_600  # torchvision's count less batch-norm


def test_vgg16_cifar_shapes():
    net = get_network("vgg16_cifar")
    assert net.conv_layers[-1].height == 2 and net.layers[-1].out_shape == (10,)


def test_from_torch_records_real_shapes_and_names_unsupported():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                          nn.Upsample(scale_factor=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    net = from_torch(model, (3, 17, 11))
    convs = net.conv_layers
    assert convs[0] == ConvLayer("0", 3, 8, 17, 11, 3, 1, 1)
    assert convs[1].stride == 2 and not convs[1].spectral_eligible
    assert any("batch-norm folded into 0" in n for n in net.notes)
    assert [(lay.op, lay.shape) for lay in net.unsupported_layers] == [("upsample_nearest2d", (8, 16, 10)),
                                                                       ("avgpool", (8, 1, 1))]  # 16x10: not square


def test_errors_name_the_problem():
    with pytest.raises(UnknownNameError, match="unknown model .alexnet.; known: .*vgg16"):
        get_network("alexnet")
    with pytest.raises(UsageError, match="could not run"):
        from_torch(nn.Linear(4, 2), (3, 8, 8))
    with pytest.raises(UsageError, match="in_channels must be a positive integer"):
        ConvLayer("c", 0, 4, 8, 8, 3)
    with pytest.raises(UsageError, match="input shape"):
        from_torch(nn.Conv2d(1, 1, 3), (8, 8))
    torch.manual_seed(0)
