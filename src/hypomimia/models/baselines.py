"""Comparison models with the same interface as I3D (``forward``, ``embed``, ``heads``, ``features``).

* ``r3d18``: torchvision's 3D ResNet-18 (Tran et al. 2018), random init.
* ``resnet2d50``: a 2D ResNet-50 applied to every frame, descriptors averaged over time -- the
  static baseline the abstract compares against (claim 4). No weights are downloaded.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.video import r3d_18

from hypomimia.models.heads import HeadedVideoNet


class R3D18(HeadedVideoNet):
    def __init__(self, *, num_classes: int = 2, dropout: float = 0.5, severity_head: str = "none"):
        super().__init__()
        self._init_heads(512, num_classes, dropout, severity_head)
        net = r3d_18(weights=None)
        self.trunk = nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.normalise(x))


class FrameResNet50(HeadedVideoNet):
    def __init__(self, *, num_classes: int = 2, dropout: float = 0.5, severity_head: str = "none"):
        super().__init__()
        self._init_heads(2048, num_classes, dropout, severity_head)
        net = resnet50(weights=None)
        self.trunk = nn.Sequential(*list(net.children())[:-2])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x)
        b, c, t, h, w = x.shape
        f = self.trunk(x.transpose(1, 2).reshape(b * t, c, h, w))  # every frame on its own
        return f.reshape(b, t, *f.shape[1:]).transpose(1, 2)  # (B, C, T, H', W')
