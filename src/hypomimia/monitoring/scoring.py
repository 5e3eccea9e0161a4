"""Score face tubes with a trained model: calibrated P(PD), the abstain label, and the embedding.

Exactly the endpoint's arithmetic (``hypomimia.inference.predictor``: ``clip_frames`` -> ``forward``
-> ``answer``): the model's evaluation clips, temperature-scaled clip probabilities averaged per
video, ``uncertain`` inside the abstain band. A model with the voice reads each video's row of the
voice stage's table when one is given (the endpoint measures the upload with the same function and
params); a video without a row is scored from the face alone, as the endpoint answers a silent clip. So the
reference window's probabilities and the serving prediction log's are the same quantity, and prediction
drift compares like with like. A model with the voice also gives ``p_pd_voice``: the voice stream's own
P(PD), the number the endpoint logs (``log_modalities``), NaN for a video it did not hear.
Per-clip probabilities are kept for the patient course (the spread of repeated measurements).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from hypomimia.errors import UserError
from hypomimia.inference.predictor import (
    ServedModel,
    answer,
    clip_frames,
    forward,
    landmark_margin,
    load_served_model,
    log_modalities,
)


@dataclass
class Scorer:
    """A model loaded as the endpoint loads it (tube params, temperature, abstain band, clip contract)."""

    model: ServedModel

    @property
    def metadata(self) -> dict:
        return self.model.metadata

    @classmethod
    def load(cls, model_path: Path, threads: int = 2) -> Scorer:
        """``model_path``: a train folder or its ``model.pt``."""
        path = Path(model_path)
        return cls(load_served_model(path.parent if path.suffix == ".pt" else path, threads=threads))

    def frames(self, tube: Path) -> np.ndarray:
        return self.tube(tube).frames

    def tube(self, tube: Path) -> SimpleNamespace:
        """The tube's frames, and its landmarks for a two-stream model (what /predict sees)."""
        try:
            with np.load(tube) as z:
                if self.model.landmark_stream is None:
                    return SimpleNamespace(frames=z["frames"], landmarks=None)
                valid = z["valid"] if "valid" in z.files else None
                return SimpleNamespace(
                    frames=z["frames"], landmarks=z["landmarks"], valid=valid, fps=float(z["fps"])
                )
        except (OSError, KeyError, ValueError) as e:
            raise UserError(
                f"face tube {Path(tube).name} is unreadable ({e})", "re-run hypomimia facetubes"
            ) from None

    def score(
        self, table: pd.DataFrame, voice: pd.DataFrame | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``table`` needs ``video_id`` and ``tube``; ``voice``: the voice stage's table (voice.parquet) for a
        model with the voice. Returns (videos with p_pd, label, emb_* and, with the voice, p_pd_voice; clips)."""
        rows = {} if voice is None else {r["video_id"]: r for r in voice.to_dict("records")}
        videos, clips = [], []
        for row in table.itertuples(index=False):
            tube = self.tube(Path(row.tube))
            outputs = forward(self.model, clip_frames(tube.frames, self.model))
            a = answer(
                self.model, outputs, landmark_margin(tube, self.model), _voice_row(rows.get(row.video_id))
            )
            clips += [{"video_id": row.video_id, "clip": c["index"], "p": c["p_pd"]} for c in a["clips"]]
            emb = {f"emb_{i}": float(v) for i, v in enumerate(a["embedding"])}
            heard = {}
            if self.model.voice_stream is not None:  # the number /predict logs for it: both sides read alike
                p_voice = log_modalities(a)["voice"].get("p_pd")
                heard = {"p_pd_voice": np.nan if p_voice is None else p_voice}
            videos.append({"video_id": row.video_id, "p_pd": a["p_pd"], "label": a["label"], **heard, **emb})
        scored = pd.DataFrame(videos)
        if scored.empty:
            return table.assign(p_pd=np.nan, label=None), pd.DataFrame(columns=["video_id", "clip", "p"])
        return table.drop(columns=["p_pd", "label", "p_pd_voice"], errors="ignore").merge(
            scored, on="video_id"
        ), pd.DataFrame(clips)


def _voice_row(row: dict | None) -> dict | None:
    """A voice.parquet row as the endpoint's measure gives it (NaN -> None); no row: the face alone."""
    if row is None:
        return {"status": "not_measured", "reason": "no row in the voice table given"}
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
