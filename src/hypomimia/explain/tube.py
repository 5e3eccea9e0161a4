"""Explain one face tube: its embedding, its prediction, and (optionally) where its maps put their mass.

The clips are the ones evaluation uses (:mod:`hypomimia.learning.clips`: evenly spaced, no augmentation),
so a map explains the same inputs the reported metrics came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from hypomimia.errors import UserError
from hypomimia.explain.gradcam import activation_maps
from hypomimia.explain.occlusion import occlusion_maps
from hypomimia.explain.regions import OUTSIDE, RegionMass, label_image, region_mass
from hypomimia.learning.clips import clip_starts, frame_indices


@dataclass(frozen=True)
class Tube:
    frames: np.ndarray  # T×S×S×3 uint8
    landmarks: np.ndarray  # T×478×2, tube pixels
    valid: np.ndarray  # T bool
    fps: float


def load_tube(path: Path, video_id: str, size: int | None = None) -> Tube:
    """Read a facetubes ``.npz``; resize to ``size`` (landmarks scaled with it) when the model wants another size."""
    try:
        with np.load(path) as z:
            frames, landmarks, valid = z["frames"], z["landmarks"].astype(np.float32), z["valid"].astype(bool)
            fps = float(z["fps"]) if "fps" in z.files else 25.0
    except (OSError, KeyError, ValueError) as e:
        raise UserError(
            f"face tube of {video_id} is unreadable ({type(e).__name__}: {e})",
            "re-run hypomimia facetubes (tubes need frames, landmarks, valid; docs/data-format.md section 3)",
        ) from None
    if frames.ndim != 4 or frames.shape[-1] != 3 or landmarks.shape[:1] != frames.shape[:1]:
        raise UserError(
            f"face tube of {video_id} has frames {frames.shape} and landmarks {landmarks.shape}",
            "tubes must hold T×S×S×3 frames and T×478×2 landmarks (docs/data-format.md section 3)",
        )
    if size and frames.shape[1] != size:
        scale = size / frames.shape[1]
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
        landmarks = landmarks * scale
    return Tube(frames, landmarks, valid, fps)


@dataclass
class TubeExplanation:
    embedding: np.ndarray  # D, mean over clips
    p_pd: float  # mean PD probability over clips
    masses: dict[str, RegionMass] = field(default_factory=dict)  # "method@layer" -> summed over clips
    motion: RegionMass | None = None  # mean |frame difference| per region (model-free: what the data shows)
    first_clip: np.ndarray | None = None  # T×S×S×3 uint8, for rendering
    first_maps: dict[str, np.ndarray] = field(default_factory=dict)  # "method@layer" -> T×S×S


def clip_batch(tube: Tube, frames: int, stride: int, count: int) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Evaluation clips ``K×3×T×S×S`` in [0, 1] and each clip's tube frame indices."""
    n = len(tube.frames)
    starts = clip_starts(n, (frames - 1) * stride + 1, count)
    idx = [
        frame_indices(s, frames, stride, n) for s in dict.fromkeys(starts)
    ]  # short tubes: no duplicate clips
    x = np.stack([tube.frames[i] for i in idx]).astype(np.float32) / 255.0  # K×T×S×S×3
    return torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous(), idx


def explain_tube(
    model: nn.Module,
    tube: Tube,
    *,
    frames: int,
    stride: int,
    clips: int,
    attribute: bool,
    layers: list[str],
    methods: list[str],
    target: int | None = None,
    occlusion_patch: int = 16,
) -> TubeExplanation:
    """Embedding and PD probability of a tube; with ``attribute``, region masses of every map and of motion."""
    x, idx = clip_batch(tube, frames, stride, clips)
    model.eval()
    with torch.no_grad():
        emb = model.embed(x).float()
        p_pd = torch.softmax(model(x).float(), dim=1)[:, 1].mean().item()
    out = TubeExplanation(emb.mean(0).numpy(), p_pd)
    if not attribute:
        return out
    maps = _all_maps(model, x, layers, methods, target, occlusion_patch)
    shape = tube.frames.shape[1:3]
    labels_of: dict[int, np.ndarray] = {}  # clips overlap: one label image per tube frame
    for k, frame_idx in enumerate(idx):
        labels = np.stack([_labels(tube, int(t), shape, labels_of) for t in frame_idx])
        for key, m in maps.items():
            mass = region_mass(m[k], labels)
            out.masses[key] = mass if key not in out.masses else out.masses[key] + mass
        diff = np.abs(np.diff(tube.frames[frame_idx].astype(np.int16), axis=0)).mean(-1)
        motion = region_mass(diff.astype(np.float32), labels[:-1])
        out.motion = motion if out.motion is None else out.motion + motion
    out.first_clip = tube.frames[idx[0]]
    out.first_maps = {key: m[0] for key, m in maps.items()}
    return out


def _labels(tube: Tube, t: int, shape: tuple[int, int], cache: dict[int, np.ndarray]) -> np.ndarray:
    if t not in cache:
        cache[t] = (
            label_image(tube.landmarks[t], shape) if tube.valid[t] else np.full(shape, OUTSIDE, np.int8)
        )
    return cache[t]


def _all_maps(model, x, layers, methods, target, patch) -> dict[str, np.ndarray]:
    tgt = None if target is None else torch.full((len(x),), int(target))
    grad_methods = [m for m in methods if m != "occlusion"]
    out: dict[str, np.ndarray] = {}
    if grad_methods:
        maps, _ = activation_maps(model, x, layers=layers, methods=grad_methods, target=tgt)
        for layer, per_method in maps.items():
            for method, m in per_method.items():
                out[f"{method}@{layer}"] = m.numpy()
    if "occlusion" in methods:
        occ, _ = occlusion_maps(model, x, patch=patch, target=tgt)
        out["occlusion@input"] = occ.numpy()
    return out
