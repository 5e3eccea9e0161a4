"""The voice as a second modality: the voice stream, its fusion with the visual model, the endpoint's
answer per modality, evaluate's voice model, and the model card (models/fusion.py, learning/fusion.py).

Known answer: tiny tubes with no video cue and, beside each subject's first video, an mp4 whose AAC
voice carries the label (PD quieter and flatter); the second video has no audio. The video stream must
stay near chance, the fused model must separate the held-out subjects, a video without voice must keep
the visual margin, and the endpoint must measure the same mp4 into the same voice margin as training.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from hypomimia.models.fusion import VoiceFusion, VoiceStream
from tests.helpers_train import tiny_train_config
from tests.helpers_voice_model import make_voice_world

VOICE = {"enabled": True, "min_subjects": 2}  # the tiny study's validation fold holds 3 subjects a class


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_voice_world(tmp_path_factory.mktemp("voice_world"))


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    from hypomimia.stages import train

    tubes_dir, ingest_dir, voice_dir, _ = world
    cfg = tiny_train_config(voice_stream=VOICE, epochs=1)
    out = tmp_path_factory.mktemp("voice_run")
    return train.run(cfg, tubes_dir, ingest_dir, out, tracking_uri="off", voice_dir=voice_dir)


def test_voice_stream_and_fusion_are_plain_numbers_with_a_known_answer():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(20), np.ones(20)]
    x = rng.normal(0, 1, (40, 3))
    x[:, 0] -= 2.0 * y  # PD quieter: the first measure carries the label
    x[3, 1] = np.nan  # one undefined measure: counted as the training mean, not lost
    stream = VoiceStream.fit(
        x, y, measures=("intensity_db", "hnr_db", "jitter_pct"), c=1.0, feature_version="v"
    )
    assert stream.coef[0] < 0 and abs(stream.coef[0]) > abs(stream.coef[1])
    assert np.isfinite(stream.margin(x)).all()
    row = {"status": "measured", "intensity_db": x[3, 0], "hnr_db": None, "jitter_pct": x[3, 2]}
    assert stream.row_margin(row) == stream.margin(x[3:4])[0]  # a dict and a table row: the same bits
    assert stream.row_margin({"status": "no_audio"}) is None

    visual = rng.normal(0, 1, 40)  # a visual model that knows nothing
    voice = stream.margin(x)
    voice[::5] = np.nan  # some videos without voice
    subjects = np.arange(40).astype(str)
    fusion = VoiceFusion.fit(visual, voice, y, subjects, c=10.0, visual_temperature=2.0, min_subjects=3,
                             fallback_voice=stream.margin(x))  # fmt: skip
    assert fusion.method == "added_evidence" and fusion.weights["voice"] > 0.7
    # the visual margin keeps its own weight (an offset, not a stacking weight): the voice is added to it
    assert fusion.visual_coef == fusion.visual_scale
    fused = fusion.fuse(visual, voice)
    silent = np.isnan(voice)
    np.testing.assert_array_equal(
        fused[silent], visual[silent] / 2.0
    )  # no voice: the visual answer, unchanged
    # plain numbers: model.pt loads them with weights_only
    again = torch.load(_saved({"s": stream.to_dict(), "f": fusion.to_dict()}), weights_only=True)
    assert VoiceStream.from_dict(again["s"]) == stream and VoiceFusion.from_dict(again["f"]) == fusion

    # A chance-level voice on the videos where the visual model is weakest (speech, in the phantom): the
    # voice adds (almost) nothing and the face is not dropped there. A free stacking weight dropped it.
    face = np.r_[rng.normal(-0.3, 1.0, 20), rng.normal(0.3, 1.0, 20)]  # a weak face on these videos
    noise = rng.normal(0, 1, 40)
    weak = VoiceFusion.fit(face, noise, y, subjects, c=1.0, visual_temperature=1.0, min_subjects=3,
                           fallback_voice=noise)  # fmt: skip
    assert weak.voice_coef < 0.3 * weak.visual_scale
    np.testing.assert_allclose(np.diff(weak.fuse(face, np.zeros(40))), np.diff(face))  # ranks by the face
    backwards = VoiceFusion.fit(face, -4.0 * (y - 0.5) + 0.1 * noise, y, subjects, c=1.0, visual_temperature=1.0,
                                min_subjects=3, fallback_voice=noise)  # fmt: skip
    assert backwards.voice_coef == 0.0  # a voice ranking the subjects backwards adds nothing, not its inverse

    # too few voiced validation subjects of a class: fixed equal standardised weights, and it says so
    few = VoiceFusion.fit(visual, voice, y, subjects, c=10.0, visual_temperature=2.0, min_subjects=30,
                          fallback_voice=stream.margin(x))  # fmt: skip
    assert few.method == "equal_weights" and few.visual_coef == few.voice_coef == few.visual_scale
    assert few.fuse(np.array([1.0]), few.voice_centre)[0] == pytest.approx(0.5)  # an average voice: visual


def _saved(obj) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "x.pt"
    torch.save(obj, path)
    return path


def test_fused_model_finds_the_voice_cue_the_video_stream_cannot_see(trained):
    streams = trained.metrics["streams"]
    assert streams["voice"]["test_subject_auroc"] == pytest.approx(1.0)
    assert streams["fused"]["test_subject_auroc"] >= 0.9
    assert streams["video"]["test_subject_auroc"] < 0.9  # no video cue: the network cannot know
    assert trained.metrics["overall"]["subject"]["auroc"] == pytest.approx(
        streams["fused"]["test_subject_auroc"]
    )
    assert streams["voice_fusion"]["voiced_subjects"] == {"control": 3, "pd": 3}
    preds = pd.read_parquet(trained.model_path.parent / "predictions.parquet")
    silent = preds["video_id"].str.endswith("_v1")  # the clips without audio
    assert preds.loc[silent, "margin_voice"].isna().all() and preds.loc[~silent, "margin_voice"].notna().all()
    np.testing.assert_array_equal(preds.loc[silent, "margin"], preds.loc[silent, "margin_visual"])
    assert (preds.groupby("video_id")["margin_voice"].nunique(dropna=False) == 1).all()  # one per video
    extra = torch.load(trained.model_path, weights_only=True)["extra"]
    assert {"voice_stream", "voice_fusion"} <= set(extra) and extra["temperature"] == 1.0


def test_endpoint_measures_the_same_voice_margin_as_training_and_says_what_it_used(trained, world):
    """Train/serve parity on the mp4 files themselves: the endpoint decodes and measures the upload's audio
    with the voice stage's function and params and gets training's voice margin to the bit."""
    from hypomimia.inference import predictor as pr

    tubes_dir, _, _, videos = world
    served = pr.load_served_model(trained.model_path.parent)
    assert served.streams == ["video", "voice"] and served.voice_config.sample_rate == 16000
    preds = pd.read_parquet(trained.model_path.parent / "predictions.parquet")
    test = preds[preds["split"] == "test"]
    for video_id, clips in list(test.groupby("video_id"))[:4]:
        row = pr.voice_row(videos / f"{video_id}.mp4", served)
        margin = pr.voice_margin(row, served)
        with np.load(Path(tubes_dir) / "tubes" / f"{video_id}.npz") as z:
            tube = SimpleNamespace(frames=z["frames"])
        out = pr.answer(served, pr.forward(served, pr.clip_frames(tube.frames, served)), None, row)
        # the video network's clips are resized by the endpoint's path, training's by its frame cache
        assert out["p_pd"] == pytest.approx(clips["p"].mean(), abs=1e-3)
        m = out["modalities"]
        if video_id.endswith("_v0"):
            assert margin == clips["margin_voice"].iloc[0]  # the same measures and regression, bit for bit
            assert (
                m["used"] == ["video", "voice"]
                and m["drove"] == "voice"
                and m["note"] == "fused: video and voice"
            )
            assert set(m["contributions"]) == {"video", "voice"} and m["voice"]["status"] == "measured"
        else:
            assert row["status"] == "no_audio" and margin is None
            assert m["used"] == ["video"] and m["voice"]["p_pd"] is None
            assert "no audio track" in m["note"] and m["note"].startswith("answered from video only")
    tube_answer = pr.answer(served, pr.forward(served, pr.clip_frames(tube.frames, served)))
    assert (
        tube_answer["modalities"]["used"] == ["video"] and "tube upload" in tube_answer["modalities"]["note"]
    )
    shown = pr.voice_summary(pr.voice_row(videos / "S001_v0.mp4", served), served)  # /explain's voice
    assert shown["status"] == "measured" and shown["measures"]["intensity_db"] == pytest.approx(60.5, abs=1.5)
    assert set(shown["contributions"]) == set(served.voice_stream.measures)


@pytest.mark.realfaces
def test_real_talking_heads_are_answered_with_their_voice_and_without_it(trained, realfaces_dir, tmp_path):
    """Real clips (44.1 kHz AAC, 16 kHz AAC under MPEG-4 video): the endpoint's whole path uses the voice,
    says so, and the same clip without its sound track is answered from the face alone, with a note."""
    from hypomimia.data.video import replace_audio
    from hypomimia.inference import predictor as pr

    served = pr.load_served_model(trained.model_path.parent)
    for name in ("lp_d20.mp4", "st_WDA_AlexandriaOcasioCortez_000.mp4"):
        out = pr.predict_video(realfaces_dir / name, served)
        m = out["modalities"]
        assert m["used"] == ["video", "voice"] and m["note"] == "fused: video and voice", (name, m)
        assert m["voice"]["status"] == "measured" and 0.0 <= m["voice"]["p_pd"] <= 1.0
        assert m["drove"] in ("video", "voice") and 0.0 <= out["p_pd"] <= 1.0
        assert out["tube_quality"]["face_found_ratio"] > 0.9
    silent = replace_audio(realfaces_dir / "lp_d20.mp4", tmp_path / "lp_d20_silent.mp4", None)
    out = pr.predict_video(silent, served)
    m = out["modalities"]
    assert m["used"] == ["video"] and m["voice"]["p_pd"] is None
    assert m["note"].startswith("answered from video only") and "no audio track" in m["note"]
    # the same face: the visual margin is the answer, so only the voice term is gone
    assert 0.0 <= out["p_pd"] <= 1.0 and out["tube_quality"]["face_found_ratio"] > 0.9


def test_the_monitor_scores_the_voice_models_outputs_on_both_sides(trained, world, caplog):
    """The monitor's reference (the held-out folds) and a batch window, scored with the voice table, carry
    p_pd_voice: sigmoid of training's voice margin for the speech clips, NaN for the silent ones, and the
    voice test runs (on its own subjects: this ingest has no audio facts). Without the table the monitor
    warns, the voice P(PD) is missing and the test is skipped with the fix."""
    from hypomimia.config.monitor import MonitorConfig
    from hypomimia.monitoring.drift import compare
    from hypomimia.monitoring.scoring import Scorer
    from hypomimia.stages.monitor import current_table, reference_table

    tubes_dir, ingest_dir, voice_dir, _ = world
    cfg = MonitorConfig(min_window=5, audio_min_subjects=3)
    scorer = Scorer.load(trained.model_path)
    ref = reference_table(cfg, ingest_dir, tubes_dir, scorer, voice_dir)
    held = ref[ref["p_pd"].notna()].set_index("video_id")
    speech = held.index.str.endswith("_v0")
    assert speech.sum() >= 3 and held.loc[speech, "p_pd_voice"].notna().all()
    assert held.loc[~speech, "p_pd_voice"].isna().all()
    preds = pd.read_parquet(trained.model_path.parent / "predictions.parquet")
    margin = preds.groupby("video_id")["margin_voice"].first()
    both = held.index[speech].intersection(margin.index)
    assert len(both) >= 2
    np.testing.assert_allclose(held.loc[both, "p_pd_voice"], 1 / (1 + np.exp(-margin[both])), rtol=1e-12)
    window = current_table(cfg, ingest_dir, tubes_dir, None, None, scorer, voice_dir)[0]
    assert window["p_pd_voice"].notna().sum() == window["video_id"].str.endswith("_v0").sum()
    summary = compare(ref, window, cfg).summary
    assert summary["audio"]["skipped"] and summary["audio"]["columns"]["p_pd_voice"]["tested"]
    with caplog.at_level("WARNING", logger="hypomimia.stages.monitor"):
        faceless = reference_table(cfg, ingest_dir, tubes_dir, scorer, None)
    assert "no voice table was given (--voice)" in caplog.text and faceless["p_pd_voice"].isna().all()
    skipped = compare(faceless, window, cfg).summary["audio"]["voice_model"]["skipped"]
    assert "reference 0 clips of 0 subjects" in skipped and "hypomimia monitor --voice" in skipped


def test_monitor_patients_follows_the_fused_p_pd_with_the_voice_table(
    trained, world, repo_root, tmp_path, caplog
):
    """`hypomimia monitor patients --voice`: each visit is scored with its voice row, as /predict answers
    it, so a patient's session score is the fused P(PD) of the visit's clips and the voice separates the
    classes the face cannot see. Without the table: the face alone, and the monitor warns."""
    import json

    from typer.testing import CliRunner

    from hypomimia.cli import _app
    from hypomimia.config.monitor import MonitorConfig
    from hypomimia.monitoring.scoring import Scorer
    from hypomimia.monitoring.window import batch_table
    from hypomimia.stages.monitor import run_patients

    tubes_dir, ingest_dir, voice_dir, _ = world
    # first: the CLI below sets up logging afresh, which removes caplog's handler
    with caplog.at_level("WARNING", logger="hypomimia.stages.monitor"):
        face = run_patients(MonitorConfig(), ingest_dir, tubes_dir, tmp_path / "face", trained.model_path)
    assert "no voice table was given (--voice)" in caplog.text
    out = tmp_path / "with_voice"
    res = CliRunner().invoke(_app, ["monitor", "patients", "--ingest", str(ingest_dir), "--tubes", str(tubes_dir),
                                    "--model", str(trained.model_path), "--voice", str(voice_dir), "--out", str(out),
                                    "--params", str(repo_root / "params.yaml")])  # fmt: skip
    assert res.exit_code == 0, res.output + repr(res.exception)
    heard = json.loads((out / "patients.json").read_text())
    assert heard["score"] == "P(PD), calibrated"
    # the known answer: the Scorer on the same rows with the voice table, a subject's clips pooled on the logit
    table = batch_table(ingest_dir, tubes_dir, voice_dir=voice_dir)
    scored = Scorer.load(trained.model_path).score(table, pd.read_parquet(voice_dir / "voice.parquet"))[0]
    assert scored.loc[scored["video_id"].str.endswith("_v0"), "p_pd_voice"].notna().all()
    logit = np.log(scored["p_pd"] / (1 - scored["p_pd"]))
    expected = 1 / (1 + np.exp(-logit.groupby(scored["subject_ref"]).mean()))
    with_voice = pd.Series({ref: c["sessions"][0]["score"] for ref, c in heard["patients"].items()})
    assert set(with_voice.index) == set(expected.index) and len(with_voice) == 24
    np.testing.assert_allclose(with_voice[expected.index], expected, rtol=1e-9)
    face_only = pd.Series({ref: c["sessions"][0]["score"] for ref, c in face["patients"].items()})
    assert not np.allclose(face_only[expected.index], with_voice[expected.index])
    label = table.groupby("subject_ref")["truth_label"].first()

    def auroc(score: pd.Series) -> float:
        pd_, hc = score[label[score.index] == "pd"], score[label[score.index] != "pd"]
        return float(np.mean([(p > h) + 0.5 * (p == h) for p in pd_ for h in hc]))

    assert auroc(with_voice) >= 0.95 and auroc(face_only) < 0.9, (auroc(with_voice), auroc(face_only))


def test_model_card_and_metadata_name_the_modalities_and_the_voice_features(trained):
    import json

    from hypomimia.lineage.model_card import build_model_card, render_markdown
    from hypomimia.voice.schema import FEATURE_VERSION

    meta = json.loads(trained.metadata_path.read_text())
    assert list(meta["modalities"]) == ["video", "voice"]
    assert meta["voice"]["feature_version"] == FEATURE_VERSION and "workers" not in meta["voice"]["params"]
    assert meta["lineage"]["voice"]["measured"] > 0 and len(meta["voice"]["table_sha256"]) == 64
    card = build_model_card(trained.model_path.parent)
    assert card["modalities"]["used"] == ["video", "voice"]
    assert card["modalities"]["voice"]["feature_version"] == FEATURE_VERSION
    assert "## Modalities" in render_markdown(card)


def test_too_few_voiced_subjects_leave_a_visual_model_and_a_foreign_table_is_refused(world, tmp_path):
    from hypomimia.errors import UserError
    from hypomimia.stages import train

    tubes_dir, ingest_dir, voice_dir, _ = world
    cfg = tiny_train_config(voice_stream={**VOICE, "min_subjects": 50}, epochs=1, bootstrap=0)
    r = train.run(cfg, tubes_dir, ingest_dir, tmp_path / "visual", tracking_uri="off", voice_dir=voice_dir)
    assert "too few training subjects with voice" in r.metrics["streams"]["voice"]["skipped"]
    assert "voice_stream" not in torch.load(r.model_path, weights_only=True)["extra"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    table = pd.read_parquet(voice_dir / "voice.parquet")
    table.assign(sha256="0" * 64).to_parquet(foreign / "voice.parquet", index=False)
    (foreign / "voice_report.json").write_text((voice_dir / "voice_report.json").read_text())
    with pytest.raises(UserError, match="other content in the voice table"):
        train.run(cfg, tubes_dir, ingest_dir, tmp_path / "x", tracking_uri="off", voice_dir=foreign)
    with pytest.raises(UserError, match="no voice table was given"):
        train.run(cfg, tubes_dir, ingest_dir, tmp_path / "y", tracking_uri="off")


def test_evaluate_compares_video_voice_and_fused_on_the_same_folds(world, trained, tmp_path):
    from hypomimia.config.evaluate import EvaluateConfig
    from hypomimia.stages import evaluate

    tubes_dir, ingest_dir, voice_dir, _ = world
    cfg = EvaluateConfig(
        models=["i3d", "voice"], folds=[0, 1], ablation={"frames": []}, bootstrap=50, epochs=1
    )
    train_cfg = tiny_train_config(voice_stream=VOICE, epochs=1)
    r = evaluate.run(cfg, train_cfg, tubes_dir, ingest_dir, tmp_path / "ev", model_dir=trained.model_path.parent,
                     tracking_uri="off", voice_dir=voice_dir)  # fmt: skip
    assert set(r.settings) == {"i3d", "voice", "i3d_without_voice"}
    assert r.settings["voice"] == pytest.approx(1.0) and r.settings["i3d"] >= 0.9
    assert r.settings["i3d_without_voice"] < 0.9
    ev = pd.read_json(r.evaluation_path, typ="series")
    assert ev["settings"]["voice"]["voice"]["subjects_without_voice"] == 0
    assert {(c["a"], c["b"]) for c in ev["comparisons"]} == {("i3d", "voice"), ("i3d", "i3d_without_voice")}
    assert "i3d_without_voice: no training of its own" in r.report_path.read_text()


def test_the_voice_baseline_scores_a_subject_without_voice_at_one_half():
    from hypomimia.config.train import VoiceStreamConfig
    from hypomimia.evaluation.voice import fit_predict
    from hypomimia.voice.table import VoiceTable

    rng = np.random.default_rng(1)
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(12)], "subject_id": [f"s{i}" for i in range(12)],
                           "label": [i % 2 for i in range(12)]})  # fmt: skip
    rows = videos.assign(status="measured", sha256="x", feature_version="voice-2")
    for m in VoiceStreamConfig().measures:
        rows[m] = rng.normal(0, 1, 12) - 2.0 * videos["label"]
    rows.loc[11, "status"] = "no_voice"
    clips = fit_predict(
        videos.iloc[:8], videos.iloc[8:], VoiceTable(rows, {}, "voice-2", ""), VoiceStreamConfig()
    )
    assert sorted(clips["subject_id"]) == ["s10", "s11", "s8", "s9"]  # every held-out subject, paired
    silent = clips.set_index("subject_id").loc["s11"]
    assert silent["margin"] == 0.0 and not silent["voiced"]


def test_the_answer_shares_the_fused_margin_out_between_video_landmarks_and_voice():
    """Hand-set streams: the fused margin, and the modality terms that add up to it (less the constants)."""
    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.config.voice import VoiceConfig
    from hypomimia.inference import predictor as pr
    from hypomimia.models.fusion import LateFusion
    from hypomimia.voice.schema import FEATURE_VERSION

    late = LateFusion(
        0.0, 1.0, 0.0, 1.0, video_coef=1.0, landmark_coef=1.0, bias=0.0, video_temperature=2.0, c=1.0
    )
    stream = VoiceStream(("intensity_db",), (0.0,), (1.0,), (-1.0,), 0.0, 1.0, FEATURE_VERSION)  # quieter: PD
    vf = VoiceFusion(0.0, 2.0, 0.0, 1.0, visual_coef=1.0, voice_coef=2.0, bias=0.1, visual_temperature=1.0, c=1.0,
                     method="stacking", voiced_subjects={})  # fmt: skip
    model = pr.ServedModel(
        net=None, labels=("control", "pd"), frames=8, stride=1, size=32, clips_per_video=2, temperature=1.0,
        abstain_band=0.1, face_tubes=FacetubesConfig(), metadata={}, metrics={},
        source=pr.ModelSource("m", None, None, "here"), folder=Path("."), landmark_stream=object(), fusion=late,
        voice_stream=stream, voice_fusion=vf, voice_config=VoiceConfig(),
    )  # fmt: skip
    outputs = np.column_stack([[0.5, 1.5], np.zeros((2, 3))])  # two clips' video margins, then embeddings
    out = pr.answer(model, outputs, landmark=0.5, voice={"status": "measured", "intensity_db": -1.0})
    fused = (np.array([0.5, 1.5]) + 0.5) / 2.0 + 2.0 * 1.0 + 0.1  # visual / its scale, + 2 x voice margin 1
    assert out["p_pd"] == pytest.approx(float(np.mean(1 / (1 + np.exp(-fused)))))
    m = out["modalities"]
    assert m["contributions"] == pytest.approx({"video": 0.5, "landmarks": 0.25, "voice": 2.0})
    assert sum(m["contributions"].values()) + vf.bias == pytest.approx(fused.mean())  # the terms add up
    assert m["drove"] == "voice" and m["used"] == ["video", "landmarks", "voice"]
    assert m["note"] == "fused: video, landmarks and voice" and m["fused"]["p_pd"] == out["p_pd"]
    quiet = pr.answer(
        model, outputs, landmark=0.5, voice={"status": "no_voice", "detail": "0.20 s of voiced speech"}
    )
    assert (
        quiet["modalities"]["used"] == ["video", "landmarks"]
        and "too little voiced speech" in quiet["modalities"]["note"]
    )
    assert quiet["p_pd"] == pytest.approx(float(np.mean(1 / (1 + np.exp(-(np.array([0.5, 1.5]) + 0.5))))))
