"""Occlusion sensitivity: a model-agnostic check on Grad-CAM.

A grey cube (the clip's mean colour, over every frame of the clip) slides over the tube; the map is
how much the target class score drops when each place is hidden. It needs no gradients and no layer
choice, so it catches a Grad-CAM artefact, at the price of one forward pass per patch position.
"""

from __future__ import annotations

import torch
from torch import nn

from hypomimia.explain.gradcam import class_score, normalize_maps, predicted_class


@torch.no_grad()
def occlusion_maps(
    model: nn.Module,
    clips: torch.Tensor,
    patch: int = 16,
    stride: int | None = None,
    target: torch.Tensor | None = None,
    batch: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps ``N×T×H×W`` in [0, 1] (score drop, spatial only, repeated over time) and the logits."""
    model.eval()
    n, _, t, h, w = clips.shape
    stride = stride or max(1, patch // 2)
    logits = model(clips)
    target = predicted_class(logits) if target is None else target.long()
    base = class_score(logits, target)
    fill = clips.mean(dim=(2, 3, 4), keepdim=True)
    ys = list(range(0, max(1, h - patch) + 1, stride))
    xs = list(range(0, max(1, w - patch) + 1, stride))
    drop = torch.zeros(n, h, w)
    hits = torch.zeros(h, w)
    positions = [(y, x) for y in ys for x in xs]
    for i in range(n):
        for start in range(0, len(positions), batch):
            chunk = positions[start : start + batch]
            hidden = clips[i : i + 1].repeat(len(chunk), 1, 1, 1, 1)
            for k, (y, x) in enumerate(chunk):
                hidden[k, :, :, y : y + patch, x : x + patch] = fill[i]
            score = class_score(model(hidden), target[i].repeat(len(chunk)))
            for k, (y, x) in enumerate(chunk):
                drop[i, y : y + patch, x : x + patch] += (base[i] - score[k]).clamp_min(0)
                if i == 0:
                    hits[y : y + patch, x : x + patch] += 1
    maps = (drop / hits.clamp_min(1))[:, None].expand(n, t, h, w).contiguous()
    return normalize_maps(maps), logits
