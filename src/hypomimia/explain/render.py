"""Pictures of the explanations: overlay GIF/mp4, frame strips, region bars, embedding scatter plots.

Everything renders off-screen: matplotlib's object API (``Figure``, no pyplot, so no display and
no global backend state) and PIL, so it runs on a headless server.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from hypomimia.explain.regions import REGION_NAMES

GROUP_COLOURS = {"control": "tab:blue", "pd": "tab:red"}


def overlay(frames: np.ndarray, cam: np.ndarray, alpha: float = 0.45, scale: int = 2) -> np.ndarray:
    """RGB ``T×H×W×3`` uint8 frames blended with a jet-coloured map ``T×H×W`` in [0, 1]; upscaled ``scale``x."""
    if frames.shape[:3] != cam.shape:
        raise ValueError(f"frames {frames.shape[:3]} and map {cam.shape} must have the same T×H×W")
    heat = (matplotlib.colormaps["jet"](np.clip(cam, 0, 1))[..., :3] * 255).astype(np.float32)
    # Weak activations stay see-through, so the face remains readable where the model does not look.
    a = (alpha * np.clip(cam, 0, 1))[..., None]
    out = (frames.astype(np.float32) * (1 - a) + heat * a).round().astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=1).repeat(scale, axis=2)
    return out


def write_gif(path: Path, frames: np.ndarray, fps: float) -> Path:
    images = [Image.fromarray(f) for f in frames]
    duration = max(20, round(1000 / fps))
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    tmp.replace(path)
    return path


def write_overlay(path: Path, frames: np.ndarray, cam: np.ndarray, fps: float) -> Path:
    """Overlay video as ``.gif`` (PIL) or ``.mp4`` (H.264), chosen by the suffix of ``path``."""
    over = overlay(frames, cam)
    if path.suffix == ".mp4":
        from hypomimia.data.video import write_mp4

        return write_mp4(path, over, fps=max(1, round(fps)))
    return write_gif(path, over, fps)


def frame_strip(path: Path, frames: np.ndarray, cams: dict[str, np.ndarray], title: str, n: int = 7) -> Path:
    """PNG: ``n`` evenly spaced frames (top row), each map's overlay in a row below, labelled.

    Composed with numpy and PIL (a grid of images needs no plotting library, and is 50x faster).
    """
    from PIL import ImageDraw

    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    rows = [frames[idx]] + [overlay(frames[idx], cam[idx], scale=1) for cam in cams.values()]
    h, w = frames.shape[1:3]
    label_w, head_h, pad = 120, 16, 2
    grid = np.full((head_h + len(rows) * (h + pad), label_w + len(idx) * (w + pad), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y, x = head_h + r * (h + pad), label_w + c * (w + pad)
            grid[y : y + h, x : x + w] = img
    im = Image.fromarray(grid)
    draw = ImageDraw.Draw(im)
    draw.text((2, 2), title, fill=(0, 0, 0))
    for r, name in enumerate(["frames", *cams]):
        draw.text((2, head_h + r * (h + pad) + h // 2 - 5), name[:20], fill=(0, 0, 0))
    for c, t in enumerate(idx):
        draw.text((label_w + c * (w + pad) + 2, head_h + 2), f"t={t}", fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG")
    return path


def region_bars(path: Path, shares: dict[str, dict[str, float]], area: dict[str, float], title: str) -> Path:
    """PNG: mean activation share per region for each group, with the regions' area share as a reference."""
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    x = np.arange(len(REGION_NAMES))
    groups = list(shares)
    width = 0.8 / (len(groups) + 1)
    for i, g in enumerate(groups):
        ax.bar(
            x + i * width, [shares[g][r] for r in REGION_NAMES], width, label=g, color=GROUP_COLOURS.get(g)
        )
    ax.bar(
        x + len(groups) * width, [area[r] for r in REGION_NAMES], width, label="area share", color="lightgrey"
    )
    ax.set_xticks(x + width * len(groups) / 2, REGION_NAMES, fontsize=8)
    ax.set_ylabel("share of activation mass on the face")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def entropy_boxes(path: Path, entropies: dict[str, list[float]], title: str) -> Path:
    """PNG: per-video attention entropy by group (box plot with the points)."""
    fig = Figure(figsize=(4, 3.2))
    ax = fig.subplots()
    groups = [g for g in entropies if entropies[g]]
    ax.boxplot([entropies[g] for g in groups], tick_labels=groups, showfliers=False)
    rng = np.random.default_rng(0)
    for i, g in enumerate(groups, start=1):
        ax.scatter(
            i + rng.uniform(-0.12, 0.12, len(entropies[g])), entropies[g], s=10, color=GROUP_COLOURS.get(g)
        )
    ax.set_ylabel("region entropy (0 focused, 1 uniform)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def embedding_scatter(
    path: Path, coords: dict[str, np.ndarray], labels: np.ndarray, updrs: np.ndarray, title: str
) -> Path:
    """PNG grid: one row per projection (PCA, t-SNE), coloured by label (left) and by UPDRS 3.2 (right)."""
    names = [k for k, v in coords.items() if v is not None]
    fig = Figure(figsize=(8, 3.6 * len(names)))
    axes = fig.subplots(len(names), 2, squeeze=False)
    labels = np.asarray(labels)
    for r, name in enumerate(names):
        xy = coords[name]
        for g in np.unique(labels):
            m = labels == g
            axes[r, 0].scatter(xy[m, 0], xy[m, 1], s=14, label=str(g), color=GROUP_COLOURS.get(str(g)))
        axes[r, 0].legend(fontsize=7)
        axes[r, 0].set_title(f"{name}: label", fontsize=9)
        known = np.isfinite(updrs)
        axes[r, 1].scatter(xy[~known, 0], xy[~known, 1], s=10, color="lightgrey", label="no score")
        sc = axes[r, 1].scatter(
            xy[known, 0], xy[known, 1], s=14, c=updrs[known], cmap="viridis", vmin=0, vmax=4
        )
        fig.colorbar(sc, ax=axes[r, 1], label="UPDRS 3.2")
        axes[r, 1].set_title(f"{name}: UPDRS 3.2", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
