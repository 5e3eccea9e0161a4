"""Clips from face tubes: what the network sees.

A clip is ``frames`` frames taken every ``stride`` frames from one face tube, as a float32 tensor
``(3, T, H, W)`` in [0, 1]. Training draws random clips with one augmentation per clip (the same
crop, flip, rotation and brightness on every frame, so motion between frames is what the tube
had); evaluation takes ``eval_clips`` evenly spaced clips per video, no augmentation.

Determinism: every random choice for item ``i`` in epoch ``e`` comes from a generator seeded
with ``(seed, e, i)`` -- not from worker processes' RNG state -- so a clip is the same whatever the
number of workers, rank or restart. The sampler yields ``(epoch, index)`` pairs for that reason.

Speed: ``.npz`` tubes are unpacked once into ``.npy`` files in a cache folder and memory-mapped,
so a clip reads only its own frames (the OS page cache shares them between workers).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from hypomimia.config.train import AugmentConfig
from hypomimia.errors import UserError

LABEL_INDEX = {"control": 0, "pd": 1}


@dataclass(frozen=True)
class TubeItem:
    """One face tube and what training needs to know about it."""

    video_id: str
    subject_id: str
    label: int  # LABEL_INDEX
    severity: float  # UPDRS 3.2, NaN when unknown
    tube: Path  # the .npz
    n_frames: int


def _cache_key(tube: Path) -> str:
    st = tube.stat()
    return hashlib.sha256(f"{tube.name}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def prepare_frame_cache(items: Sequence[TubeItem], cache_dir: Path) -> dict[str, Path]:
    """Unpack each tube's ``frames`` into ``cache_dir/<video_id>-<key>.npy`` (once); return video_id -> path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for it in items:
        dst = cache_dir / f"{it.video_id}-{_cache_key(it.tube)}.npy"
        if not dst.is_file():
            try:
                with np.load(it.tube) as z:
                    frames = z["frames"]
            except (OSError, KeyError, ValueError) as e:
                raise UserError(
                    f"face tube of {it.video_id} is unreadable ({type(e).__name__})",
                    "re-run hypomimia facetubes, which rewrites broken tubes",
                ) from None
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise UserError(
                    f"face tube of {it.video_id} has frames {frames.shape} {frames.dtype}",
                    "tubes must hold uint8 T x S x S x 3 frames (docs/data-format.md section 3)",
                )
            tmp = dst.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, np.ascontiguousarray(frames))
            tmp.replace(dst)
        paths[it.video_id] = dst
    return paths


class _MemmapLRU:
    """A few open memory maps per process (opening is cheap, but not free)."""

    def __init__(self, capacity: int = 256):
        self.capacity, self._open = capacity, OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        arr = self._open.pop(path, None)
        if arr is None:
            arr = np.load(path, mmap_mode="r")
        self._open[path] = arr
        while len(self._open) > self.capacity:
            self._open.popitem(last=False)
        return arr


def clip_starts(n_frames: int, span: int, count: int) -> list[int]:
    """``count`` evenly spaced start frames of a clip spanning ``span`` frames."""
    last = max(0, n_frames - span)
    if count == 1:
        return [last // 2]
    return [round(k * last / (count - 1)) for k in range(count)]


def frame_indices(start: int, frames: int, stride: int, n_frames: int) -> np.ndarray:
    """Frames of one clip; a tube shorter than the clip repeats its last frame."""
    return np.minimum(start + stride * np.arange(frames), n_frames - 1)


def augment_clip(clip: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig, size: int) -> torch.Tensor:
    """One random crop/flip/rotation/brightness for the whole clip ``(T, 3, H, W)`` -> ``(T, 3, size, size)``."""
    scale = rng.uniform(*cfg.crop_scale)
    angle = math.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    tx, ty = rng.uniform(-(1 - scale), 1 - scale, 2)
    flip = -1.0 if cfg.flip and rng.random() < 0.5 else 1.0
    gain = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    theta = torch.tensor([[cos * flip, -sin, tx], [sin * flip, cos, ty]], dtype=torch.float32)
    grid = F.affine_grid(
        theta.expand(clip.shape[0], 2, 3), [clip.shape[0], 3, size, size], align_corners=False
    )
    out = F.grid_sample(clip, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (out * gain).clamp_(0.0, 1.0)


class ClipDataset(Dataset):
    """Clips of face tubes. Index with ``(epoch, i)`` (see :class:`EpochSampler`) or a plain ``i``.

    Items: ``{"clip": (3, T, S, S) float32, "label": int, "video": int (index into items),
    "severity": float}``.
    """

    def __init__(
        self,
        items: Sequence[TubeItem],
        frame_files: dict[str, Path],
        *,
        frames: int,
        stride: int,
        size: int,
        train: bool,
        clips_per_video: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ):
        self.items, self.frame_files = list(items), frame_files
        self.frames, self.stride, self.size, self.train = frames, stride, size, train
        self.clips_per_video, self.augment, self.seed = clips_per_video, augment or AugmentConfig(), seed
        self._maps = _MemmapLRU()

    def __len__(self) -> int:
        return len(self.items) * self.clips_per_video

    def clip_owner(self, i: int) -> int:
        return i // self.clips_per_video

    def __getitem__(self, key) -> dict:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        v, k = divmod(i, self.clips_per_video)
        item = self.items[v]
        frames = self._maps.get(self.frame_files[item.video_id])
        n = frames.shape[0]
        span = (self.frames - 1) * self.stride + 1
        rng = np.random.default_rng([self.seed, epoch, i])
        if self.train:
            start = int(rng.integers(0, max(0, n - span) + 1))
        else:
            start = clip_starts(n, span, self.clips_per_video)[k]
        idx = frame_indices(start, self.frames, self.stride, n)
        clip = torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(0, 3, 1, 2).float().div_(255.0)
        if self.train:
            clip = augment_clip(clip, rng, self.augment, self.size)
        elif clip.shape[-1] != self.size or clip.shape[-2] != self.size:
            clip = F.interpolate(clip, size=(self.size, self.size), mode="bilinear", antialias=True)
        return {
            "clip": clip.permute(1, 0, 2, 3).contiguous(),  # (3, T, H, W)
            "label": item.label,
            "video": v,
            "severity": item.severity,
        }


class EpochSampler(Sampler):
    """Shuffled (train) or ordered (eval) indices, sharded over DDP ranks, yielding ``(epoch, i)``.

    The permutation depends only on ``(seed, epoch)``; ``set_epoch`` before each epoch. Shards are
    padded by wrapping so every rank runs the same number of steps (DDP needs that).
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1):
        self.n, self.shuffle, self.seed, self.rank, self.world = n, shuffle, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __len__(self) -> int:
        return math.ceil(self.n / self.world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self._order()
        total = len(self) * self.world
        order = (order + order[: total - len(order)]) if self.world > 1 else order
        for i in order[self.rank : total : self.world]:
            yield self.epoch, i


def worker_init(_worker_id: int) -> None:
    # Workers only slice memory maps and resample; one thread each leaves the cores to the model.
    torch.set_num_threads(1)
