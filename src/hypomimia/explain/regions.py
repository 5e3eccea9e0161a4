"""Where on the face is the evidence? Activation mass per facial region, from the tube's own landmarks.

Each tube frame gets a region label image (eyes, brows, nose, mouth, cheeks, rest_of_face, or
outside the face) from its FaceMesh landmarks, so the regions follow the face as it moves. A
region's *share* is its part of the map's mass on the face; its *area share* is its part of the
face's pixels. A share well above the area share means the model looks there more than a uniform
map would. The entropy of the shares measures how spread the attention is (1 = uniform over regions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from hypomimia.faces.landmarks import REGIONS, region_masks

REGION_NAMES: tuple[str, ...] = (*REGIONS, "rest_of_face")
OUTSIDE = -1


def label_image(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``H×W`` int8: index into REGION_NAMES per pixel, OUTSIDE (-1) off the face. ``landmarks``: 478×2 (x, y) pixels."""
    labels = np.full(shape, OUTSIDE, np.int8)
    masks = region_masks(landmarks, shape)  # disjoint by construction
    for i, name in enumerate(REGION_NAMES):
        labels[masks[name]] = i
    return labels


def label_images(landmarks: np.ndarray, valid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``T×H×W`` labels for a tube; frames without a tracked face are all OUTSIDE (they carry no region mass)."""
    out = np.full((len(landmarks), *shape), OUTSIDE, np.int8)
    for t in np.flatnonzero(valid):
        out[t] = label_image(landmarks[t], shape)
    return out


@dataclass(frozen=True)
class RegionMass:
    """Summed map mass and pixel counts per region (in REGION_NAMES order), plus the mass off the face."""

    mass: np.ndarray
    area: np.ndarray
    outside: float

    def __add__(self, other: RegionMass) -> RegionMass:
        return RegionMass(self.mass + other.mass, self.area + other.area, self.outside + other.outside)

    @property
    def shares(self) -> np.ndarray:
        return _normalize(self.mass)

    @property
    def area_shares(self) -> np.ndarray:
        return _normalize(self.area)

    @property
    def outside_share(self) -> float:
        total = float(self.mass.sum()) + self.outside
        return self.outside / total if total > 0 else 0.0

    @property
    def lift(self) -> np.ndarray:
        """Share / area share per region: 1 = as much as a uniform map, 2 = twice as much."""
        area = self.area_shares
        return np.divide(self.shares, area, out=np.zeros_like(area), where=area > 0)

    def as_dict(self) -> dict:
        return {
            "shares": dict(zip(REGION_NAMES, self.shares.round(6).tolist(), strict=True)),
            "area_shares": dict(zip(REGION_NAMES, self.area_shares.round(6).tolist(), strict=True)),
            "lift": dict(zip(REGION_NAMES, self.lift.round(4).tolist(), strict=True)),
            "entropy": round(entropy(self.shares), 6),
            "outside_share": round(self.outside_share, 6),
        }


def _normalize(x: np.ndarray) -> np.ndarray:
    total = float(x.sum())
    return x / total if total > 0 else np.zeros_like(x, dtype=float)


def region_mass(cam: np.ndarray, labels: np.ndarray) -> RegionMass:
    """Mass of ``cam`` (T×H×W, non-negative) per region of ``labels`` (same shape, from label_images)."""
    if cam.shape != labels.shape:
        raise ValueError(f"map {cam.shape} and labels {labels.shape} must have the same T×H×W shape")
    k = len(REGION_NAMES)
    flat = labels.ravel().astype(np.int64)
    on_face = flat >= 0
    mass = np.bincount(flat[on_face], weights=cam.ravel()[on_face].astype(np.float64), minlength=k)
    area = np.bincount(flat[on_face], minlength=k).astype(np.float64)
    return RegionMass(mass, area, float(cam.ravel()[~on_face].sum()))


def entropy(shares: np.ndarray) -> float:
    """Shannon entropy of a distribution over regions, divided by log(K): 0 = all in one region, 1 = uniform."""
    p = np.asarray(shares, dtype=float)
    if p.sum() <= 0:
        return 0.0
    p = p / p.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / np.log(len(p)))


def compare_entropy(entropy_pd: list[float], entropy_control: list[float]) -> dict:
    """Two-sided Mann-Whitney U test of attention spread, PD vs controls (the seed: PD narrower, controls broader)."""
    a, b = np.asarray(entropy_pd, float), np.asarray(entropy_control, float)
    out: dict = {
        "n_pd": len(a),
        "n_control": len(b),
        "median_pd": float(np.median(a)) if len(a) else None,
        "median_control": float(np.median(b)) if len(b) else None,
        "mean_pd": float(a.mean()) if len(a) else None,
        "mean_control": float(b.mean()) if len(b) else None,
        "test": "mann-whitney-u two-sided",
        "u": None,
        "p_value": None,
        "effect_size_rank_biserial": None,
    }
    if len(a) and len(b) and np.ptp(np.concatenate([a, b])) > 0:
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
        out["u"] = float(res.statistic)
        out["p_value"] = float(res.pvalue)
        # r = 2U/(n1 n2) - 1: > 0 means PD entropies tend to be larger than controls'.
        out["effect_size_rank_biserial"] = float(2 * res.statistic / (len(a) * len(b)) - 1)
    return out


def lift_with_ci(
    shares: np.ndarray, areas: np.ndarray, subjects: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Lift per region (mean share / mean area share over videos) with a 95% subject-bootstrap CI.

    ``shares`` and ``areas``: videos x regions (REGION_NAMES order); ``subjects``: one id per video.
    Subjects are resampled, not videos, because a subject's videos share a face and a model.
    ``top`` is the region with the largest lift (attributed share per pixel) and ``top_share_of_boot``
    how often it stays on top across the resamples: the region known answer reads both.
    """
    shares, areas = np.asarray(shares, float), np.asarray(areas, float)
    ids, inverse = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    # Sum per subject once; a bootstrap sample is then a weighted sum over subjects.
    s_sum = np.zeros((len(ids), shares.shape[1]))
    a_sum = np.zeros_like(s_sum)
    np.add.at(s_sum, inverse, shares)
    np.add.at(a_sum, inverse, areas)

    def lift(weights: np.ndarray) -> np.ndarray:
        s, a = weights @ s_sum, weights @ a_sum
        return np.divide(s, a, out=np.zeros_like(s), where=a > 0)

    point = lift(np.ones(len(ids)))
    rng = np.random.default_rng(seed)
    boot = np.array(
        [lift(np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))) for _ in range(n_boot)]
    )
    top = int(np.argmax(point))
    out = {
        name: {
            "lift": float(point[i]),
            "ci_low": float(np.percentile(boot[:, i], 2.5)) if n_boot else None,
            "ci_high": float(np.percentile(boot[:, i], 97.5)) if n_boot else None,
        }
        for i, name in enumerate(REGION_NAMES)
    }
    return {
        "n_videos": int(len(shares)),
        "n_subjects": int(len(ids)),
        "lift": out,
        "top": REGION_NAMES[top],
        "top_share_of_boot": float(np.mean(boot.argmax(1) == top)) if n_boot else None,
    }
