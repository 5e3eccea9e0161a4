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

from hypomimia.models.i3d import IMAGENET_MEAN, IMAGENET_STD


class _Headed(nn.Module):
    """Shared heads/normalisation; subclasses define ``features`` (B, C, ...) and ``embed_dim``."""

    def __init__(self, embed_dim: int, num_classes: int, dropout: float, severity_head: str):
        super().__init__()
        self.embed_dim, self.num_classes, self.severity_head = embed_dim, num_classes, severity_head
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(embed_dim, num_classes)
        n_sev = {"none": 0, "regression": 1, "ordinal": 4}[severity_head]
        self.severity = nn.Linear(embed_dim, n_sev) if n_sev else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=tuple(range(2, 5))).flatten(1)

    def heads(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        emb = self.dropout(emb)
        out = {"logits": self.fc(emb)}
        if self.severity is not None:
            out["severity"] = self.severity(emb)
        return out

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        emb = self.embed(x)
        return {**self.heads(emb), "embedding": emb}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(x)))


class R3D18(_Headed):
    def __init__(self, *, num_classes: int = 2, dropout: float = 0.5, severity_head: str = "none"):
        super().__init__(512, num_classes, dropout, severity_head)
        net = r3d_18(weights=None)
        self.trunk = nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk((x - self.mean) / self.std)


class FrameResNet50(_Headed):
    def __init__(self, *, num_classes: int = 2, dropout: float = 0.5, severity_head: str = "none"):
        super().__init__(2048, num_classes, dropout, severity_head)
        net = resnet50(weights=None)
        self.trunk = nn.Sequential(*list(net.children())[:-2])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        b, c, t, h, w = x.shape
        f = self.trunk(x.transpose(1, 2).reshape(b * t, c, h, w))  # every frame on its own
        return f.reshape(b, t, *f.shape[1:]).transpose(1, 2)  # (B, C, T, H', W')
