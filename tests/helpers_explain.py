"""Synthetic face tubes with a known answer, and a tiny 3D CNN, for the explanation tests.

A real face photo (matplotlib's Grace Hopper sample) is cropped to a tube once, with its
FaceMesh landmarks. Clips of both classes show the same face with the same noise; the ONLY
class difference is how fast the pixels inside the mouth region flicker (fast for "pd"=1,
slow for "control"=0). The eyes flicker too, at a random speed drawn the same way for both
classes, as a distractor. A network that learned the task must look at the mouth, so a correct
explanation puts its mass there.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from hypomimia.faces.landmarks import FACE_OVAL, region_masks

SIZE = 48
FRAMES = 8
FAST, SLOW = 0.25, 1 / 16  # cycles per frame


@functools.cache
def face_tube_still(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(RGB size×size×3 uint8, landmarks 478×2 in tube pixels): the sample photo cropped around its face."""
    import cv2
    import mediapipe as mp

    from hypomimia.doctor import sample_face_rgb

    img = sample_face_rgb()
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as fm:
        face = fm.process(img).multi_face_landmarks[0]
    lm = np.array([[p.x * img.shape[1], p.y * img.shape[0]] for p in face.landmark], np.float32)
    oval = lm[list(FACE_OVAL)]
    centre = (oval.min(0) + oval.max(0)) / 2
    half = 0.62 * float((oval.max(0) - oval.min(0)).max())  # the face fills ~80 % of the tube, like facetubes
    x0, y0 = (centre - half).round().astype(int)
    side = int(round(2 * half))
    crop = img[max(0, y0) : y0 + side, max(0, x0) : x0 + side]
    tube = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    lm_tube = (lm - [max(0, x0), max(0, y0)]) * (size / side)
    return tube, lm_tube.astype(np.float32)


def make_clips(
    n_per_class: int, seed: int = 0, frames: int = FRAMES, size: int = SIZE, distractor: float = 70.0
):
    """Clips ``N×3×T×S×S`` float in [0, 1], labels ``N``, landmarks ``T×478×2``, the mouth mask ``S×S``."""
    still, lm = face_tube_still(size)
    masks = region_masks(lm, (size, size))
    mouth, eyes = masks["mouth"].astype(np.float32), masks["eyes"].astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    t = np.arange(frames)[:, None, None, None]
    clips = []
    for y in labels:
        f_mouth = (FAST if y else SLOW) * rng.uniform(0.85, 1.15)
        f_eyes = rng.choice([FAST, SLOW]) * rng.uniform(0.85, 1.15)  # same distribution for both classes
        wave = lambda f: np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))  # noqa: E731
        video = (
            still[None].astype(np.float32)
            + 70 * wave(f_mouth) * mouth[None, :, :, None]
            + distractor * wave(f_eyes) * eyes[None, :, :, None]
            + rng.normal(0, 8, (frames, size, size, 1))
            + rng.uniform(-20, 20)
        )
        clips.append(np.clip(video, 0, 255).transpose(3, 0, 1, 2) / 255.0)
    x = torch.tensor(np.stack(clips), dtype=torch.float32)
    return x, torch.tensor(labels), np.repeat(lm[None], frames, 0), masks["mouth"]


class TinyVideoNet(nn.Module):
    """Three Conv3d layers, global max pooling, a linear head: the I3D interface (forward, embed) in miniature.

    Max rather than average pooling: the class signal covers 5 % of the frame, and averaging
    dilutes it so much that a few seconds of training do not find it.
    """

    def __init__(self, width: int = 12):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1),
            nn.BatchNorm3d(8),  # without it, learning stalls for some seeds
            nn.ReLU(inplace=True),
            nn.Conv3d(8, width, 3, padding=1),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(width, 2)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x - 0.5).amax(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


def train_tiny(x: torch.Tensor, y: torch.Tensor, steps: int = 60, seed: int = 0) -> TinyVideoNet:
    torch.manual_seed(seed)
    model = TinyVideoNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=gen)[:16]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def write_tubes(
    root, subjects: int = 6, videos_per_subject: int = 2, frames: int = 24, size: int = 112, seed: int = 0
):
    """A facetubes output folder (docs/data-format.md section 3): mouth-flicker tubes, half PD half control.

    Returns the tubes table. UPDRS 3.2 is 0 for controls and 1-3 for PD.
    """
    import pandas as pd

    still, lm = face_tube_still(size)
    mouth = region_masks(lm, (size, size))["mouth"][None, :, :, None]
    rng = np.random.default_rng(seed)
    (root / "tubes").mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(frames)[:, None, None, None]
    for s in range(subjects):
        label = "pd" if s % 2 else "control"
        updrs = int(rng.integers(1, 4)) if label == "pd" else 0
        for v in range(videos_per_subject):
            vid = f"s{s:02d}_v{v}"
            f = (FAST if label == "pd" else SLOW) * rng.uniform(0.85, 1.15)
            video = still[None] + 70 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * mouth
            video = np.clip(video + rng.normal(0, 6, (frames, size, size, 1)), 0, 255).astype(np.uint8)
            np.savez_compressed(
                root / "tubes" / f"{vid}.npz",
                frames=video,
                landmarks=np.repeat(lm[None], frames, 0),
                valid=np.ones(frames, bool),
                fps=np.float32(25.0),
                video_sha256=np.array(f"{s:064d}"),
            )
            rows.append({"video_id": vid, "subject_id": f"s{s:02d}", "label": label, "updrs_3_2": updrs,
                         "hoehn_yahr": 2.0 if label == "pd" else 0.0, "status": "accepted", "reason": "",
                         "tube": f"tubes/{vid}.npz", "n_frames": frames, "fps": 25.0})  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_parquet(root / "tubes.parquet", index=False)
    return table
