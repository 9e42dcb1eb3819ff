"""Small CIFAR-size architectures that ship with suscli.

The demo and the benchmarks train these, and their checkpoints name them as `suscli.models:NAME`, an
architecture spec that resolves wherever suscli is installed. They cover the behaviours the evidence needs:
a plain CNN, a CNN with BatchNorm, an MLP (generalizes poorly without memorizing) and a ResNet-20-like
network (He et al. 2016, the CIFAR variant with three stages of basic blocks).
"""

from __future__ import annotations

import torch
from torch import nn


def plain_cnn(num_classes: int = 10, width: int = 32, in_channels: int = 3, dropout: float = 0.0) -> nn.Module:
    """Three conv-pool stages without normalization, then a linear classifier."""
    w = width
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(4 * w, num_classes),
    )


def bn_cnn(num_classes: int = 10, width: int = 32, in_channels: int = 3, dropout: float = 0.0) -> nn.Module:
    """The plain CNN with BatchNorm after every convolution (BatchNorm changes how a step moves the loss)."""
    w = width

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(in_channels, w),
        nn.MaxPool2d(2),
        *block(w, 2 * w),
        nn.MaxPool2d(2),
        *block(2 * w, 4 * w),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(4 * w, num_classes),
    )


def mlp(num_classes: int = 10, width: int = 256, in_channels: int = 3, image_size: int = 32, depth: int = 2) -> nn.Module:
    """Fully connected network on flattened pixels: fits labels without the convolutional prior."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = in_channels * image_size * image_size
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs: a 3x3 stem, three stages of `blocks` basic blocks (width w, 2w, 4w)."""

    def __init__(self, num_classes: int = 10, width: int = 16, blocks: int = 3, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages: list[nn.Module] = []
        cin = width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            for j in range(blocks):
                stages.append(_BasicBlock(cin, cout, stride=2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, 4w, H/4, W/4)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet(num_classes: int = 10, width: int = 16, blocks: int = 3, in_channels: int = 3) -> nn.Module:
    """CIFAR ResNet; the defaults (width 16, 3 blocks per stage) are ResNet-20."""
    return CifarResNet(num_classes=num_classes, width=width, blocks=blocks, in_channels=in_channels)


def resnet20(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return CifarResNet(num_classes=num_classes, width=16, blocks=3, in_channels=in_channels)
