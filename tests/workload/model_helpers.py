"""Small torch networks the importer, pipeline and CLI tests build themselves (never torchvision/timm):
a plain CNN, a MobileNet-v2-shaped network (depthwise + 1x1 + residual) and an Inception-style
network (1x7 / 7x1 and dilated convolutions, concatenations)."""

from __future__ import annotations

import torch
from torch import nn


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 10)).eval()


class InvertedResidual(nn.Module):
    def __init__(self, c: int, expand: int = 4):
        super().__init__()
        h = c * expand
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.dw(self.expand(x)))


class MobileNetV2ish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.block1 = InvertedResidual(16)
        self.conv = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.block2 = InvertedResidual(32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block2(self.conv(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class InceptionIsh(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.b1 = nn.Conv2d(16, 8, 1)
        self.b7 = nn.Sequential(nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, (1, 7), padding=(0, 3)), nn.ReLU(),
                                nn.Conv2d(8, 8, (7, 1), padding=(3, 0)))
        self.dil = nn.Conv2d(16, 8, 3, padding=2, dilation=2)
        self.head = nn.Conv2d(24, 16, 3, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.cat([self.b1(x), self.b7(x), self.dil(x)], 1)
        x = torch.relu(self.head(x))
        return self.fc(x.mean((2, 3)))


def mobilenet_v2ish(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return MobileNetV2ish().eval()


def inception_ish(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return InceptionIsh().eval()


def export_onnx(model, shape, path, opset: int = 18):
    """torch.onnx.export (TorchScript exporter: dynamo=False, see FINDINGS.md)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros((1, *shape)), str(path), dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=["logits"])
    return path
