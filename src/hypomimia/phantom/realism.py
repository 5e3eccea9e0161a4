"""Read phantom videos back like real ones and measure what the generator promised.

Nothing here looks at the generator's internals: videos are decoded with
:func:`hypomimia.data.video.iter_frames` and tracked with MediaPipe FaceMesh in video mode, and the
measurements are compared with the ground-truth sidecars (``truth/<video_id>.json``). Used by
``tests/data/test_phantom_realism.py`` and by the numbers reported in ``docs/phantom.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypomimia.data.video import iter_frames
from hypomimia.faces.landmarks import (
    FACE_OVAL,
    LEFT_BROW,
    LEFT_EYE,
    LIPS,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE,
    RIGHT_BROW,
    RIGHT_EYE,
    eye_aspect_ratio,
    eye_centres,
)

# Landmarks whose positions describe a facial configuration (features for the known-answer test).
FEATURE_POINTS = tuple(sorted(set(LIPS + LEFT_EYE + RIGHT_EYE + LEFT_BROW + RIGHT_BROW + NOSE + FACE_OVAL)))


MIN_MEASURABLE_AMPLITUDE = 0.05  # mouth-width change (IOD) clearly above FaceMesh jitter (~0.01)


@dataclass(frozen=True)
class Track:
    landmarks: np.ndarray  # T x 478 x 2 pixels; NaN where no face was found
    faces: np.ndarray  # T: number of faces FaceMesh found
    fps: float

    @property
    def found(self) -> np.ndarray:
        return self.faces >= 1


def track_video(path: str | Path, max_side: int | None = None) -> Track:
    """FaceMesh (video mode, up to 2 faces so that a second face would show) on every frame."""
    import mediapipe as mp

    lms, faces, times = [], [], []
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=2, refine_landmarks=True,
        min_detection_confidence=0.5, min_tracking_confidence=0.5,
    ) as fm:  # fmt: skip
        for frame in iter_frames(path, max_side=max_side):
            h, w = frame.rgb.shape[:2]
            found = fm.process(frame.rgb).multi_face_landmarks or []
            faces.append(_distinct_faces(found))
            times.append(frame.time)
            if found:
                meshes = [np.array([[p.x * w, p.y * h] for p in f.landmark]) for f in found]
                # Follow the face tracked so far (a duplicate or a second face must not swap in).
                prev = next((m for m in reversed(lms) if np.isfinite(m).all()), None)
                pick = 0 if prev is None else int(np.argmin([np.abs(m - prev).mean() for m in meshes]))
                lms.append(meshes[pick])
            else:
                lms.append(np.full((478, 2), np.nan))
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 25.0
    return Track(np.asarray(lms, np.float64), np.asarray(faces), float(fps))


def _distinct_faces(found: list) -> int:
    """Number of faces, counting heavily overlapping meshes once.

    In video mode FaceMesh keeps searching for a second face; when a wide-open mouth stretches the
    tracked face's box, the detector can re-find the *same* face and report it twice.
    """
    centres, sizes = [], []
    for face in found:
        pts = np.array([[p.x, p.y] for p in face.landmark])
        centres.append(pts.mean(0))
        sizes.append(np.ptp(pts, axis=0).max())
    distinct: list[int] = []
    for i, c in enumerate(centres):
        if all(np.linalg.norm(c - centres[j]) > 0.5 * sizes[j] for j in distinct):
            distinct.append(i)
    return len(distinct)


def aligned(lm: np.ndarray) -> np.ndarray:
    """Landmarks in a per-frame eye frame: origin between the eyes, eye line horizontal, unit = IOD."""
    right, left = eye_centres(lm)
    mid = (right + left) / 2
    ex = left - right
    iod = np.linalg.norm(ex, axis=-1, keepdims=True)
    ex = ex / iod
    ey = np.stack([-ex[..., 1], ex[..., 0]], -1)
    d = lm - mid[..., None, :]
    u = (d * ex[..., None, :]).sum(-1)
    v = (d * ey[..., None, :]).sum(-1)
    # Mirror-independent: v points to the chin whichever way the eye line runs.
    flip = np.sign(np.nanmean(v[..., 152:153], axis=-1, keepdims=True))
    return np.stack([u, v * flip], -1) / iod[..., None]


def mouth_width(track: Track) -> np.ndarray:
    """Mouth-corner distance per frame, in inter-ocular distances (AU12 and AU20 widen it)."""
    a = aligned(track.landmarks)
    return np.linalg.norm(a[:, MOUTH_LEFT] - a[:, MOUTH_RIGHT], axis=-1)


def ear(track: Track) -> np.ndarray:
    return eye_aspect_ratio(track.landmarks)


def count_blinks(ear_series: np.ndarray, fps: float, drop: float = 0.35) -> list[int]:
    """Frames of blink minima: runs where the EAR falls ``drop`` (fraction) below its open-eye level."""
    e = np.asarray(ear_series, np.float64)
    ok = np.isfinite(e)
    if ok.sum() < 3:
        return []
    open_level = np.nanpercentile(e, 80)
    closed = ok & (e < open_level * (1 - drop))
    peaks, i = [], 0
    min_gap = int(round(0.25 * fps))
    while i < len(e):
        if closed[i]:
            j = i
            while j + 1 < len(e) and closed[j + 1]:
                j += 1
            k = i + int(np.nanargmin(e[i : j + 1]))
            if peaks and k - peaks[-1] < min_gap:
                if e[k] < e[peaks[-1]]:
                    peaks[-1] = k
            else:
                peaks.append(k)
            i = j + 1
        else:
            i += 1
    return peaks


def without_blinks(signal: np.ndarray, blink_frames: list[int], fps: float) -> np.ndarray:
    """Bridge the frames around each blink by linear interpolation.

    FaceMesh couples the eyes and mouth a little: a blink nudges the mouth landmarks too.
    """
    x = np.asarray(signal, np.float64).copy()
    bad = ~np.isfinite(x)
    half = int(round(0.12 * fps))
    for f in blink_frames:
        bad[max(f - half, 0) : f + half + 1] = True
    if bad.all() or not bad.any():
        return x
    idx = np.arange(len(x))
    x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    return x


def _smooth(x: np.ndarray, width: int = 3) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = np.where(np.isfinite(x), x, np.nanmedian(x))
    k = np.ones(width) / width
    return np.convolve(np.pad(x, width // 2, mode="edge"), k, mode="valid")


def movement_amplitude(signal: np.ndarray) -> float:
    """Largest excursion above the resting level (10th percentile) of a smoothed signal."""
    s = _smooth(signal)
    return float(s.max() - np.percentile(s, 10))


def _step_duration(s: np.ndarray, fps: float, steep: float) -> float:
    """Duration (s) of the raised-cosine step that best fits ``s`` around frame ``steep`` (least squares)."""
    t = np.arange(len(s)) / fps
    best = (np.inf, float("nan"))
    for dur in np.arange(0.08, 1.6, 0.02):
        for shift in np.arange(-2.0, 2.01, 0.5):
            centre = (steep + shift) / fps
            window = (t >= centre - dur / 2 - 0.3) & (t <= centre + dur / 2 + 0.3)
            if window.sum() < 6:
                continue
            phase = np.clip((t[window] - centre + dur / 2) / dur, 0, 1)
            design = np.stack([np.ones(window.sum()), 0.5 - 0.5 * np.cos(np.pi * phase)], 1)
            coef, *_ = np.linalg.lstsq(design, s[window], rcond=None)
            err = float(np.mean((design @ coef - s[window]) ** 2))
            if coef[1] > 0 and err < best[0]:
                best = (err, dur)
    return best[1]


def movement_speed(signal: np.ndarray, fps: float, edges_per_direction: int = 2) -> float:
    """Median of 1/duration (1/s) over the clip's clear rises and falls; NaN without any.

    Expressions rise and fall like smooth steps (raised cosines); a least-squares fit of each
    step's duration is robust to tracking jitter and independent of the movement's size, so
    amplitude and speed are measured separately. An edge is "clear" when it spans at least half of
    the clip's largest excursion within 0.4 s (a slow severe-PD rise does).
    """
    s = _smooth(signal, 1)  # no smoothing: it would lengthen the steps the fit measures
    k = max(1, int(round(0.2 * fps)))  # change over ~0.4 s: one jittery frame is not a movement
    amplitude = np.max(s) - np.percentile(s, 10)
    speeds = []
    for sign in (1.0, -1.0):
        x = sign * s
        change = x[2 * k :] - x[: -2 * k]
        for _ in range(edges_per_direction):
            c = int(np.argmax(change))
            if change[c] < 0.5 * amplitude:
                break
            dur = _step_duration(x, fps, c + k)
            if np.isfinite(dur):
                speeds.append(1.0 / dur)
            half = int(np.ceil(((dur if np.isfinite(dur) else 0.5) / 2 + 0.2) * fps))
            change[max(c - half, 0) : c + half + 1] = -np.inf
    return float(np.median(speeds)) if speeds else float("nan")


def frame_features(track: Track) -> np.ndarray:
    """Per-frame configuration features: aligned positions of FEATURE_POINTS (T x 2P), NaN rows dropped."""
    a = aligned(track.landmarks)[:, list(FEATURE_POINTS)].reshape(len(track.landmarks), -1)
    return a[np.all(np.isfinite(a), axis=1)]


def expression_signals(track: Track) -> dict[str, np.ndarray]:
    """Landmark distances that expressions move (aligned, IOD): one per face part."""
    a = aligned(track.landmarks)
    return {
        "mouth_width": np.linalg.norm(a[:, MOUTH_LEFT] - a[:, MOUTH_RIGHT], axis=-1),
        "mouth_opening": np.linalg.norm(a[:, 13] - a[:, 14], axis=-1),
        "chin": a[:, 152, 1],
        "brows": a[:, list(LEFT_BROW + RIGHT_BROW), 1].mean(1),
    }


def velocity_features(track: Track) -> np.ndarray:
    """Per-video movement features: excursions per second of the face's expression signals.

    For each signal, log(mean speed / range of motion) counts excursions per second whatever their
    size, so it isolates timing from amplitude. Features: that value for the signal that moved
    most (the expression the clip is about) and the range-weighted mean over all signals. Frames
    around blinks are bridged and signals smoothed over 3 frames first, so neither the blink's
    pull on the mouth landmarks nor FaceMesh jitter passes for expression movement.
    """
    kernel = np.ones(3) / 3
    blinks = count_blinks(ear(track), track.fps)
    ratios, ranges = [], []
    for s in expression_signals(track).values():
        s = np.convolve(without_blinks(s, blinks, track.fps), kernel, mode="valid")
        motion = np.percentile(s, 95) - np.percentile(s, 5) + 1e-6
        ratios.append(np.log(np.abs(np.diff(s)).mean() * track.fps / motion + 1e-6))
        ranges.append(motion)
    r, w = np.array(ratios), np.array(ranges)
    return np.array([r[np.argmax(w)], (r * w).sum() / w.sum()])


def load_truth(folder: Path, video_id: str) -> dict:
    return json.loads((Path(folder) / "truth" / f"{video_id}.json").read_text())


def grouped_auroc(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 4, seed: int = 0) -> float:
    """AUROC of a logistic regression over subject-grouped folds (pooled out-of-fold scores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = np.zeros(len(y))
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in cv.split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        model.fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def measure_video(folder: Path, row: dict) -> dict:
    """Read one video back and compare with its ground truth."""
    track = track_video(Path(folder) / row["path"])
    truth = load_truth(folder, row["video_id"])
    found_blinks = count_blinks(ear(track), track.fps)
    width = without_blinks(mouth_width(track), found_blinks, track.fps)
    return {
        "video_id": row["video_id"],
        "subject_id": row["subject_id"],
        "pair": truth["pair"],
        "label": row["label"],
        "task": row["task"],
        "frames": len(track.faces),
        "one_face_ratio": float(np.mean(track.faces == 1)),
        "blinks_true": len(truth["blinks"]),
        "blinks_found": len(found_blinks),
        "amplitude_true": truth["profile"]["amplitude"],
        "speed_true": truth["profile"]["speed"],
        "amplitude_found": movement_amplitude(width),
        "speed_found": movement_speed(width, track.fps),
        "mouth_width": width,
        "au12": np.asarray(truth["au"]["au12"]),
        "frame_features": frame_features(track),
        "velocity_features": velocity_features(track),
    }


def summarize(videos: list[dict], expression_tasks: tuple[str, ...] = ("smile",)) -> dict:
    """The realism numbers: face ratio, blink error, AU12 correlation, PD/control ratios found vs set."""
    smiles = [v for v in videos if v["task"] in expression_tasks]
    w = np.concatenate([v["mouth_width"] - np.nanpercentile(v["mouth_width"], 10) for v in smiles])
    a = np.concatenate([v["au12"] for v in smiles])
    ok = np.isfinite(w)

    def ratio(key: str, among: list[dict]) -> float:
        pd_ = np.mean([v[key] for v in among if v["label"] == "pd"])
        return float(pd_ / np.mean([v[key] for v in among if v["label"] == "control"]))

    # Speed is only measurable where something moved clearly above tracking jitter.
    moved = [
        v
        for v in smiles
        if v["amplitude_found"] >= MIN_MEASURABLE_AMPLITUDE and np.isfinite(v["speed_found"])
    ]

    err = [abs(v["blinks_found"] - v["blinks_true"]) for v in videos]
    return {
        "videos": len(videos),
        "one_face_ratio": float(
            np.sum([v["one_face_ratio"] * v["frames"] for v in videos])
            / np.sum([v["frames"] for v in videos])
        ),  # fmt: skip
        "blink_max_error": int(max(err)),
        "blink_exact_share": float(np.mean(np.array(err) == 0)),
        "au12_correlation": float(np.corrcoef(w[ok], a[ok])[0, 1]),
        "amplitude_ratio_set": ratio("amplitude_true", smiles),
        "amplitude_ratio_found": ratio("amplitude_found", smiles),
        "speed_videos": len(moved),
        "speed_ratio_set": ratio("speed_true", moved),
        "speed_ratio_found": ratio("speed_found", moved),
    }


def known_answer(videos: list[dict], frames_per_video: int = 8) -> dict:
    """Dynamic-only test: AUROC of logistic regression on frame-averaged, single-frame and velocity features.

    Folds are grouped by matched pair (which also keeps each subject's videos together), because
    dynamic-only twins must not be split (see ``hypomimia.phantom.cohort``).
    """
    y = np.array([v["label"] == "pd" for v in videos], int)
    groups = np.array([v["pair"] for v in videos])
    mean_x = np.stack([v["frame_features"].mean(0) for v in videos])
    vel_x = np.stack([v["velocity_features"] for v in videos])
    fx, fy, fg = [], [], []
    for v, label, g in zip(videos, y, groups, strict=True):
        idx = np.linspace(0, len(v["frame_features"]) - 1, frames_per_video).round().astype(int)
        fx.append(v["frame_features"][idx])
        fy += [label] * len(idx)
        fg += [g] * len(idx)
    return {
        "auroc_frame_mean": grouped_auroc(mean_x, y, groups),
        "auroc_single_frame": grouped_auroc(np.concatenate(fx), np.array(fy), np.array(fg)),
        "auroc_velocity": grouped_auroc(vel_x, y, groups),
    }
