"""2D Inception-v1 (with BN) whose state-dict keys match :class:`~hypomimia.models.i3d.I3D`.

It exists to define what "2D weights" means for ``--init`` (ImageNet Inception-v1 converted to
these key names) and to test inflation: a video of identical frames through the inflated I3D
must give this network's activations on one frame. It is built from the same layer table.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from hypomimia.models.i3d import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_V1,
    STEM_CHANNELS,
    InceptionSpec,
    _scaled,
)

__all__ = ["Inception2D", "InceptionBlock2D", "Unit2D"]


class Unit2D(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel=(1, 1), stride=(1, 1)):
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel, stride, padding=(kernel[0] // 2, kernel[1] // 2), bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _max_pool(kernel, stride) -> nn.MaxPool2d:
    return nn.MaxPool2d(
        kernel, stride, padding=tuple(k // 2 if k == 3 else 0 for k in kernel), ceil_mode=True
    )


class InceptionBlock2D(nn.Module):
    def __init__(self, in_ch: int, spec: InceptionSpec):
        super().__init__()
        self.branch0 = Unit2D(in_ch, spec.b0)
        self.branch1 = nn.Sequential(Unit2D(in_ch, spec.b1_reduce), Unit2D(spec.b1_reduce, spec.b1, (3, 3)))
        self.branch2 = nn.Sequential(Unit2D(in_ch, spec.b2_reduce), Unit2D(spec.b2_reduce, spec.b2, (3, 3)))
        self.branch3 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), Unit2D(in_ch, spec.pool_proj))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class Inception2D(nn.Module):
    """Image network, input ``(B, 3, H, W)`` RGB in [0, 1]."""

    def __init__(self, *, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.0):
        super().__init__()
        c1, c2, c3 = (_scaled(c, width) for c in STEM_CHANNELS)
        self.stem = nn.Sequential(
            Unit2D(3, c1, (7, 7), (2, 2)), _max_pool((3, 3), (2, 2)), Unit2D(c1, c2), Unit2D(c2, c3, (3, 3))
        )
        blocks: dict[str, nn.Module] = {}
        channels, n_pool = c3, 0
        for name, *args in INCEPTION_V1:
            if name == "pool":
                kernel, stride = args
                blocks[f"pool_{n_pool}"] = _max_pool(kernel[1:], stride[1:])
                n_pool += 1
            else:
                spec = args[0].scaled(width)
                blocks[name] = InceptionBlock2D(channels, spec)
                channels = spec.out_channels
        self.blocks = nn.Sequential(OrderedDict(blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem((x - self.mean) / self.std))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(x)))
