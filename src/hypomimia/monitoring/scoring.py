"""Score face tubes with a trained model: calibrated P(PD), the abstain label, and the embedding.

Clips are taken as the model's own evaluation took them (``eval_clips_per_video`` evenly spaced
clips, the training stride), so a score here equals the score the held-out metrics describe.
A video's margin is the mean of its clips' margins; ``p_pd = sigmoid(margin / temperature)``;
inside the abstain band around 0.5 the label is ``uncertain``. Per-clip probabilities are kept
for the patient course (the spread of repeated measurements).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.errors import UserError


@dataclass
class Scorer:
    """A loaded model and how to cut clips for it."""

    model: object
    frames: int
    stride: int
    size: int
    clips_per_video: int
    temperature: float
    abstain_band: float
    metadata: dict

    @classmethod
    def load(cls, model_path: Path, threads: int = 2) -> Scorer:
        import torch

        from hypomimia.models import load_model

        torch.set_num_threads(threads)
        loaded = load_model(model_path)
        extra = loaded.extra
        meta_path = Path(model_path).with_name("metadata.json")
        metadata = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        return cls(
            model=loaded.model,
            frames=loaded.config.frames,
            stride=int(extra.get("stride", 1)),
            size=loaded.config.size,
            clips_per_video=int(extra.get("eval_clips_per_video", 4)),
            temperature=float(extra.get("temperature", 1.0)),
            abstain_band=float(extra.get("abstain_band", 0.0)),
            metadata=metadata,
        )

    def label(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, float)
        out = np.where(p >= 0.5, "pd", "control").astype(object)
        out[np.abs(p - 0.5) < self.abstain_band] = "uncertain"
        return out

    def clips(self, tube: Path):
        import torch
        import torch.nn.functional as F

        from hypomimia.learning.clips import clip_starts, frame_indices

        try:
            with np.load(tube) as z:
                frames = z["frames"]
        except (OSError, KeyError, ValueError) as e:
            raise UserError(
                f"face tube {Path(tube).name} is unreadable ({e})", "re-run hypomimia facetubes"
            ) from None
        n = len(frames)
        span = (self.frames - 1) * self.stride + 1
        batch = []
        for start in clip_starts(n, span, self.clips_per_video):
            idx = frame_indices(start, self.frames, self.stride, n)
            clip = torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(0, 3, 1, 2).float().div_(255.0)
            if clip.shape[-1] != self.size:
                clip = F.interpolate(clip, size=(self.size, self.size), mode="bilinear", antialias=True)
            batch.append(clip.permute(1, 0, 2, 3))
        return torch.stack(batch)

    def score(self, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``table`` needs ``video_id`` and ``tube``; returns (videos with p_pd, label, emb_*; clips)."""
        import torch

        videos, clips = [], []
        with torch.inference_mode():
            for row in table.itertuples(index=False):
                out = self.model.forward_all(self.clips(Path(row.tube)))
                logits = out["logits"].float().numpy()
                margin = logits[:, 1] - logits[:, 0]
                emb = out["embedding"].float().mean(0).numpy()
                p_clip = 1.0 / (1.0 + np.exp(-np.clip(margin / self.temperature, -60, 60)))
                clips += [{"video_id": row.video_id, "clip": k, "p": float(p)} for k, p in enumerate(p_clip)]
                p = float(1.0 / (1.0 + np.exp(-np.clip(margin.mean() / self.temperature, -60, 60))))
                videos.append(
                    {"video_id": row.video_id, "p_pd": p, **{f"emb_{i}": float(v) for i, v in enumerate(emb)}}
                )
        scored = pd.DataFrame(videos)
        if scored.empty:
            return table.assign(p_pd=np.nan, label=None), pd.DataFrame(columns=["video_id", "clip", "p"])
        scored.insert(2, "label", self.label(scored["p_pd"].to_numpy()))
        return table.drop(columns=["p_pd", "label"], errors="ignore").merge(
            scored, on="video_id"
        ), pd.DataFrame(clips)
