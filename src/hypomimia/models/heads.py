"""The part every video model here shares: input normalisation, a classifier and an optional severity
head on the pooled clip descriptor. Subclasses define ``features`` and ``embed``."""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SEVERITY_OUTPUTS = {"none": 0, "regression": 1, "ordinal": 4}


class HeadedVideoNet(nn.Module):
    """Input ``(B, 3, T, H, W)`` RGB in [0, 1]; the model normalises it itself."""

    def _init_heads(self, embed_dim: int, num_classes: int, dropout: float, severity_head: str) -> None:
        if severity_head not in SEVERITY_OUTPUTS:
            raise ValueError(f"severity_head must be none, regression or ordinal, got {severity_head!r}")
        self.embed_dim, self.num_classes, self.severity_head = embed_dim, num_classes, severity_head
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(embed_dim, num_classes)
        n_sev = SEVERITY_OUTPUTS[severity_head]
        self.severity = nn.Linear(embed_dim, n_sev) if n_sev else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(B, C, T', H', W')`` (for Grad-CAM style explanations)."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip descriptor ``(B, embed_dim)``: the face-tube embedding."""
        return self.features(x).mean(dim=(2, 3, 4))

    def heads(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """Classifier logits and (if configured) severity output from an embedding."""
        emb = self.dropout(emb)
        out = {"logits": self.fc(emb)}
        if self.severity is not None:
            out["severity"] = self.severity(emb)
        return out

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"logits": (B, classes), "severity": (B, 1|4) if configured, "embedding": (B, D)}``."""
        emb = self.embed(x)
        return {**self.heads(emb), "embedding": emb}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        return self.fc(self.dropout(self.embed(x)))
