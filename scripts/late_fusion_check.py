"""Offline check of one issue-24 lever: late fusion of the I3D with the dynamic-landmark baseline.

Reads an evaluate output folder (``runs/<setting>/[seed<s>/]fold<k>/test_clips.parquet``). Per seed, it
prints the pooled subject AUROC of the I3D, the landmark baselines, and their fusion. The fusion is the
equal-weight mean of the two subject scores, each standardised within its test fold (no labels used).
Usage: ``python scripts/late_fusion_check.py work/evaluate-seeds`` (docs/evaluation.md, "Measured").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def subject_scores(path: Path) -> pd.DataFrame:
    clips = pd.read_parquet(path)
    s = clips.groupby("subject_id").agg(label=("label", "first"), score=("margin", "mean"))
    return s.assign(z=(s.score - s.score.mean()) / (s.score.std() + 1e-12))


def pooled(root: Path, setting: str, seed: str = "") -> pd.DataFrame:
    base = root / "runs" / setting / seed
    return pd.concat([subject_scores(f / "test_clips.parquet") for f in sorted(base.glob("fold*"))])


def main(root: Path) -> dict:
    i3d = next(p.name for p in (root / "runs").iterdir() if p.name.startswith("i3d"))
    dynamic, static = pooled(root, "landmark_dynamic"), pooled(root, "landmark_static")
    seeds = sorted(p.name for p in (root / "runs" / i3d).glob("seed*"))
    per_seed, fused, ensemble = [], [], []
    for seed in seeds:
        net = pooled(root, i3d, seed)
        ensemble.append(net.z.rename(seed))
        per_seed.append(roc_auc_score(net.label, net.score))
        both = net.join(dynamic, rsuffix="_lm")
        fused.append(roc_auc_score(both.label, both.z + both.z_lm))
    both = dynamic.join(pd.concat(ensemble, axis=1).mean(axis=1).rename("z_i3d"))
    return {
        "landmark_dynamic": roc_auc_score(dynamic.label, dynamic.score),
        "landmark_static": roc_auc_score(static.label, static.score),
        "i3d": {"per_seed": per_seed, "mean": np.mean(per_seed), "sd": np.std(per_seed, ddof=1)},
        "fused": {"per_seed": fused, "mean": np.mean(fused), "sd": np.std(fused, ddof=1)},
        "fused_seed_ensemble": roc_auc_score(both.label, both.z + both.z_i3d),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=1, default=lambda x: round(float(x), 3)))
