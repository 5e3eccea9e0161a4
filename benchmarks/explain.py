"""Explanation cost: what Grad-CAM and region attribution add to a plain embedding pass.

Input: the demo I3D (width 0.25, 14 frames of 112², untrained: cost does not depend on weights)
and one tube made of the sample face photo, with its real FaceMesh landmarks. Per clip, best of
``repeats``: the embedding forward pass; Grad-CAM + Grad-CAM++ on two layers (one forward and one
backward pass); region attribution of one map (label images from landmarks + mass per region).

Targets: ``gradcam_over_forward`` < 4 (maps cost a few forward passes, so attributing every
held-out video is affordable); ``regions_over_gradcam`` < 0.5 (the region step is not the
bottleneck).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import row
from hypomimia.config.train import ModelConfig
from hypomimia.explain.gradcam import activation_maps
from hypomimia.explain.regions import label_images, region_mass
from hypomimia.models import build_model


def _face_tube(frames: int, size: int) -> tuple[torch.Tensor, np.ndarray]:
    import cv2
    import mediapipe as mp

    from hypomimia.doctor import sample_face_rgb

    img = cv2.resize(sample_face_rgb(), (size, size), interpolation=cv2.INTER_AREA)
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as fm:
        face = fm.process(img).multi_face_landmarks[0]
    lm = np.array([[p.x * size, p.y * size] for p in face.landmark], np.float32)
    clip = torch.from_numpy(np.repeat(img[None], frames, 0)).permute(3, 0, 1, 2).float().div(255)
    return clip[None], np.repeat(lm[None], frames, 0)


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(out: Path, quick: bool) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    mc = ModelConfig()
    model = build_model(mc).eval()
    clip, landmarks = _face_tube(mc.frames, mc.size)
    repeats = 2 if quick else 5
    layers = ["last", "blocks.mixed_4f"]

    def forward():
        with torch.no_grad():
            model.embed(clip)

    maps: dict = {}

    def gradcam():
        maps.update(activation_maps(model, clip, layers=layers, methods=["gradcam", "gradcam++"])[0])

    def regions():
        labels = label_images(landmarks, np.ones(len(landmarks), bool), (mc.size, mc.size))
        region_mass(maps["blocks"]["gradcam"][0].numpy(), labels)

    forward()  # warm-up (allocator, first-call overheads)
    t_fwd, t_cam = _best(forward, repeats), _best(gradcam, repeats)
    t_reg = _best(regions, repeats)
    note = f"I3D width {mc.width}, {mc.frames}x{mc.size}^2, 1 clip, best of {repeats}"
    return [
        row("explain", "embed_forward", t_fwd * 1000, "ms/clip", note),
        row("explain", "gradcam_2methods_2layers", t_cam * 1000, "ms/clip", note),
        row("explain", "region_attribution", t_reg * 1000, "ms/clip", "label images for 14 frames + mass per region"),
        row("explain", "gradcam_over_forward", t_cam / t_fwd, "ratio", "target < 4"),
        row("explain", "regions_over_gradcam", t_reg / t_cam, "ratio", "target < 0.5"),
    ]  # fmt: skip
