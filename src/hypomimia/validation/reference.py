"""Reference statistics of the training data, saved with the model for drift monitoring.

Histograms use FIXED bin edges (not edges fitted to this data), so a monitor can bin live
traffic with the same edges and compare counts directly. Values outside the edges are
counted in ``below`` / ``above``. ``schema_version`` changes when this layout changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypomimia import __version__
from hypomimia.validation.frames import accepted_rows

SCHEMA_VERSION = 1
QUANTILES = (5, 25, 50, 75, 95)


def _steps(low: float, high: float, step: float) -> list[float]:
    return [round(low + i * step, 6) for i in range(round((high - low) / step) + 1)]


# feature -> (source table, column, fixed histogram edges)
FEATURES: dict[str, tuple[str, str, list[float]]] = {
    "face_found_ratio": ("tubes", "face_found_ratio", _steps(0.0, 1.0, 0.05)),
    "face_size_mean": ("tubes", "face_size_mean", _steps(0.0, 1.0, 0.05)),
    "blur_mean": ("tubes", "blur_mean", [0, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]),
    "brightness_mean": ("tubes", "brightness_mean", _steps(0.0, 255.0, 15.0)),
    "yaw_range": ("tubes", "yaw_range", _steps(0.0, 90.0, 5.0)),
    "pitch_range": ("tubes", "pitch_range", _steps(0.0, 90.0, 5.0)),
    "roll_range": ("tubes", "roll_range", _steps(0.0, 90.0, 5.0)),
    "n_frames": ("tubes", "n_frames", [0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]),
    "fps": ("ingested", "nominal_fps", _steps(0.0, 120.0, 5.0)),
    "width": ("ingested", "width", _steps(0.0, 4096.0, 128.0)),
    "height": ("ingested", "height", _steps(0.0, 4096.0, 128.0)),
    "duration_s": ("ingested", "duration_s", [0, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800]),
    # texture of a region relative to the face (faces.quality.region_visibility): a hidden region drops
    "visibility_eyes": ("tubes", "visibility_eyes", _steps(0.0, 4.0, 0.2)),
    "visibility_nose": ("tubes", "visibility_nose", _steps(0.0, 4.0, 0.2)),
    "visibility_mouth": ("tubes", "visibility_mouth", _steps(0.0, 4.0, 0.2)),
}


def _feature_stats(values: pd.Series, edges: list[float]) -> dict[str, Any]:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    missing = int(np.isnan(x).sum())
    x = x[~np.isnan(x)]
    hist = {"edges": edges, "counts": [0] * (len(edges) - 1), "below": 0, "above": 0}
    if x.size == 0:
        return {"count": 0, "missing": missing, "histogram": hist}
    counts, _ = np.histogram(x, bins=edges)
    hist.update(counts=counts.tolist(), below=int((x < edges[0]).sum()), above=int((x > edges[-1]).sum()))
    q = np.percentile(x, QUANTILES)
    return {
        "count": int(x.size),
        "missing": missing,
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min": float(x.min()),
        "max": float(x.max()),
        "quantiles": {f"p{p}": float(v) for p, v in zip(QUANTILES, q, strict=True)},
        "histogram": hist,
    }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def training_table(ingested: pd.DataFrame, folds: pd.DataFrame, tubes: pd.DataFrame) -> pd.DataFrame:
    """One row per training video (in the folds, accepted, with a face tube): probe + tube columns."""
    ids = folds["video_id"].drop_duplicates() if "video_id" in folds.columns else pd.Series(dtype=str)
    ing, tub = accepted_rows(ingested), accepted_rows(tubes)
    ing_cols = [
        "video_id",
        *(c for _, (src, c, _) in FEATURES.items() if src == "ingested" and c in ing.columns),
    ]
    tub_cols = [
        "video_id",
        *(c for _, (src, c, _) in FEATURES.items() if src == "tubes" and c in tub.columns),
    ]
    for extra in ("label", "sha256"):
        if extra in ing.columns:
            ing_cols.append(extra)
    table = pd.DataFrame({"video_id": ids})
    table = table.merge(ing[ing_cols].drop_duplicates("video_id"), on="video_id", how="inner")
    return table.merge(tub[tub_cols].drop_duplicates("video_id"), on="video_id", how="inner")


def reference_stats(
    ingested: pd.DataFrame, folds: pd.DataFrame, tubes: pd.DataFrame, input_files: tuple[Path, ...]
) -> dict[str, Any]:
    table = training_table(ingested, folds, tubes)
    video_hashes = sorted(table["sha256"].dropna().astype(str)) if "sha256" in table.columns else []
    features = {}
    for name, (_, column, edges) in FEATURES.items():
        if column in table.columns:
            features[name] = {"source_column": column, **_feature_stats(table[column], edges)}
    return {
        "schema_version": SCHEMA_VERSION,
        "producer": f"hypomimia {__version__} validate",
        # Identifies the training data: the same set of video bytes gives the same id,
        # whatever order or Parquet encoding the tables had.
        "data_id": hashlib.sha256("\n".join(video_hashes).encode()).hexdigest(),
        "inputs": {p.name: file_sha256(p) for p in input_files},
        "n_videos": len(table),
        "labels": table["label"].value_counts().sort_index().to_dict() if "label" in table.columns else {},
        "features": features,
    }


def write_reference_stats(stats: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(stats, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
