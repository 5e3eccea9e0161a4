"""The I3D recipe's landmark stream and late fusion (models/fusion.py, learning/fusion.py).

Known answer: tiny tubes whose frames carry no cue (both classes' blobs move alike) but whose landmarks
do (PD faces move their landmarks less and slower). The video stream must stay near chance, the
fused model must separate the held-out subjects, and the endpoint must give the training's numbers
for the same tube (same features, same fusion, same temperature).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypomimia.models.fusion import LandmarkStream, LateFusion, landmark_features
from tests.helpers_train import make_tubes, tiny_train_config


def _face(rng: np.random.Generator) -> np.ndarray:
    """A face-like mesh: 478 points spread around the eyes' level, in tube pixels."""
    return rng.uniform(8.0, 40.0, (478, 2)).astype(np.float64)


def _moving_landmarks(rng: np.random.Generator, frames: int, fps: float, pd_subject: bool) -> np.ndarray:
    """Non-rigid motion: every point oscillates; PD: smaller and slower (the phantom's speed and amplitude cues)."""
    base = _face(rng)
    amp = rng.uniform(0.2, 0.4) if pd_subject else rng.uniform(1.2, 1.6)
    freq = rng.uniform(0.3, 0.5) if pd_subject else rng.uniform(1.5, 2.0)
    direction = rng.normal(0, 1, (478, 2))
    phase = rng.uniform(0, 2 * np.pi, 478)
    t = np.arange(frames)[:, None] / fps
    wave = np.sin(2 * np.pi * freq * t + phase[None])  # T x 478
    return (base[None] + amp * wave[..., None] * direction[None]).astype(np.float32)


@pytest.fixture(scope="module")
def landmark_world(tmp_path_factory):
    """Tubes from tests.helpers_train with no video cue, then landmarks that carry the label."""
    root = tmp_path_factory.mktemp("two_streams")
    tubes_dir, ingest_dir = make_tubes(root, subjects=16, videos_per_subject=2, frames=24, cue="none")
    rng = np.random.default_rng(7)
    tubes = pd.read_parquet(tubes_dir / "tubes.parquet")
    for r in tubes.itertuples():
        path = tubes_dir / r.tube
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["landmarks"] = _moving_landmarks(rng, r.n_frames, float(arrays["fps"]), r.label == "pd")
        np.savez(path, **arrays)
    # the face-tube params the endpoint re-makes tubes with (facetubes records them in report.json)
    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.faces.tube import TUBE_CODE_VERSION
    from hypomimia.jsonio import write

    params = FacetubesConfig().model_dump(mode="json", exclude={"workers"})
    write(tubes_dir / "report.json", {"params": {**params, "tube_code_version": TUBE_CODE_VERSION}})
    return tubes_dir, ingest_dir


@pytest.fixture(scope="module")
def trained(landmark_world, tmp_path_factory):
    from hypomimia.stages import train

    tubes_dir, ingest_dir = landmark_world
    cfg = tiny_train_config(landmark_stream={"enabled": True}, epochs=1)
    out = tmp_path_factory.mktemp("two_streams_run")
    return train.run(cfg, tubes_dir, ingest_dir, out, tracking_uri="off"), tubes_dir


def test_stream_and_fusion_round_trip_through_plain_numbers():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (40, 4)), np.r_[np.zeros(20), np.ones(20)]
    x[y == 1, 0] += 2.0
    stream = LandmarkStream(
        ("a", "b", "c", "d"), (0.0,) * 4, (1.0,) * 4, (1.0, 0.0, 0.0, 0.0), -1.0, 0.7, 1.0
    )
    again = LandmarkStream.from_dict(stream.to_dict())
    assert again == stream
    np.testing.assert_allclose(again.margin(x), x[:, 0] - 1.0)
    fusion = LateFusion.fit(x[:, 0], x[:, 1], y, c=10.0, video_temperature=2.0)
    assert LateFusion.from_dict(fusion.to_dict()) == fusion
    # the informative stream (column 0 carries the label) gets the weight; the noise stream little
    assert fusion.weights["video"] > 0.7 and fusion.video_temperature == 2.0
    z = (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
    zl = (x[:, 1] - x[:, 1].mean()) / x[:, 1].std()
    np.testing.assert_allclose(
        fusion.fuse(x[:, 0], x[:, 1]), fusion.video_coef * z + fusion.landmark_coef * zl + fusion.bias
    )
    # one class on validation: no regression can be fitted; equal weights, no offset
    flat = LateFusion.fit(x[:, 0], x[:, 1], np.ones(40), c=1.0, video_temperature=1.0)
    assert (flat.video_coef, flat.landmark_coef, flat.bias) == (1.0, 1.0, 0.0)


def test_landmark_features_refuse_a_tube_without_a_face():
    from hypomimia.errors import UserError

    with pytest.raises(UserError, match="fewer than 2 frames"):
        landmark_features(np.zeros((5, 478, 2)), np.zeros(5, bool), 25.0, 0.7)


def test_fused_model_finds_the_landmark_cue_the_video_stream_cannot_see(trained):
    result, _ = trained
    streams = result.metrics["streams"]
    assert streams["landmarks"]["test_subject_auroc"] == pytest.approx(1.0)
    assert streams["fused"]["test_subject_auroc"] >= 0.9
    assert result.metrics["overall"]["subject"]["auroc"] == pytest.approx(
        streams["fused"]["test_subject_auroc"]
    )
    preds = pd.read_parquet(result.model_path.parent / "predictions.parquet")
    assert {"margin_video", "margin_landmarks"} <= set(preds.columns)
    # one landmark margin per video, shared by its clips
    assert (preds.groupby("video_id")["margin_landmarks"].nunique() == 1).all()


def test_endpoint_gives_the_training_numbers_for_the_same_tube(trained):
    """Train/serve parity: the predictor's P(PD) of a held-out tube equals the training's, per video."""
    from types import SimpleNamespace

    from hypomimia.inference import predictor as pr

    result, tubes_dir = trained
    served = pr.load_served_model(result.model_path.parent)
    assert served.streams == ["video", "landmarks"]
    preds = pd.read_parquet(result.model_path.parent / "predictions.parquet")
    test = preds[preds["split"] == "test"]
    for video_id, clips in list(test.groupby("video_id"))[:3]:
        with np.load(Path(tubes_dir) / "tubes" / f"{video_id}.npz") as z:
            tube = SimpleNamespace(
                frames=z["frames"], landmarks=z["landmarks"], valid=z["valid"], fps=float(z["fps"])
            )
        landmark = pr.landmark_margin(tube, served)
        assert landmark == clips["margin_landmarks"].iloc[0]  # the same features and regression, bit for bit
        out = pr.answer(served, pr.forward(served, pr.clip_frames(tube.frames, served)), landmark)
        # the video stream's clips are resized by the endpoint's path, training's by its frame cache:
        # float rounding apart, so the probabilities agree to 1e-3, not to the bit
        assert out["p_pd"] == pytest.approx(clips["p"].mean(), abs=1e-3)
        assert out["modalities"]["used"] == ["video", "landmarks"]
        assert out["modalities"]["drove"] in ("video", "landmarks")
        assert set(out["modalities"]["contributions"]) == {"video", "landmarks"}
        video_only = pr.answer(served, pr.forward(served, pr.clip_frames(tube.frames, served)))
        assert (
            video_only["modalities"]["used"] == ["video"]
            and "tube upload" in video_only["modalities"]["landmarks"]["reason"]
        )


def test_model_card_names_both_streams_and_their_weights(trained):
    from hypomimia.lineage.model_card import build_model_card, render_markdown

    result, _ = trained
    card = build_model_card(result.model_path.parent)
    streams = card["model"]["streams"]
    assert streams["inputs"] == ["video", "landmarks"]
    assert set(streams["weights"]) == {"video", "landmarks"} and streams["weights"]["landmarks"] > 0
    assert streams["test_subject_auroc"]["landmarks"] == pytest.approx(1.0)
    assert "- streams: video, landmarks (fusion weights" in render_markdown(card)
