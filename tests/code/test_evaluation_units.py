"""Evaluation's pieces: paired statistics, multiple-comparison correction, landmark features,
the blessing decision, the plan's settings, and standard JSON."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from hypomimia import jsonio
from hypomimia.config.evaluate import BlessingConfig, EvaluateConfig
from hypomimia.config.train import TrainConfig
from hypomimia.errors import UserError
from hypomimia.evaluation import blessing, calibration, external, landmarks, plan, stats
from hypomimia.faces import landmarks as geo
from hypomimia.learning.metrics import aggregate


def test_delong_matches_the_paired_bootstrap_and_detects_a_real_difference():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    good = y + rng.normal(0, 0.5, 80)  # AUROC ~0.92
    poor = y + rng.normal(0, 3.0, 80)  # AUROC ~0.6
    d = stats.delong(y, good, poor)
    from sklearn.metrics import roc_auc_score

    assert d["auroc_a"] == pytest.approx(roc_auc_score(y, good))
    assert d["auroc_b"] == pytest.approx(roc_auc_score(y, poor))
    assert d["p_value"] < 0.01
    bs = stats.paired_bootstrap(y, good, poor, n=500, seed=0)
    assert bs["p_value"] < 0.02 and bs["difference_ci95"][0] > 0
    same = stats.delong(y, good, good + 1e-9 * rng.normal(size=80))
    assert same["difference"] == pytest.approx(0.0, abs=1e-6)


def test_delong_is_not_significant_between_two_equal_models():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 20)
    a, b = y + rng.normal(0, 1, 40), y + rng.normal(0, 1, 40)
    assert stats.delong(y, a, b)["p_value"] > 0.05


def test_holm_is_step_down_and_monotone():
    assert stats.adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert stats.adjust([0.01, 0.04], "bonferroni") == pytest.approx([0.02, 0.08])
    out = stats.adjust([0.02, math.nan], "holm")
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1])


def test_unpaired_tables_are_refused():
    a = pd.DataFrame({"subject_id": ["s1", "s2"], "label": [0, 1], "p": [0.2, 0.8]})
    b = pd.DataFrame({"subject_id": ["s1", "s3"], "label": [0, 1], "p": [0.2, 0.8]})
    with pytest.raises(UserError, match="not paired"):
        stats.paired_subjects(a, b, ("i3d", "landmark_static"))


def _face(t: int, blink_frames=(), mouth_speed: float = 0.0) -> np.ndarray:
    """A face-shaped landmark set: eye corners 1 apart; eyelids close on blink frames; mouth moves."""
    base = np.random.default_rng(0).normal(0, 0.3, (geo.N_LANDMARKS, 2))
    base[geo.RIGHT_EYE_OUTER], base[geo.RIGHT_EYE_INNER] = (-0.7, 0), (-0.3, 0)
    base[geo.LEFT_EYE_INNER], base[geo.LEFT_EYE_OUTER] = (0.3, 0), (0.7, 0)
    lm = np.repeat(base[None], t, axis=0)
    for ear_idx in (geo.RIGHT_EYE_EAR, geo.LEFT_EYE_EAR):
        x0 = base[ear_idx[0], 0]
        for k, dx in ((1, 0.13), (2, 0.27), (5, 0.13), (4, 0.27)):
            lm[:, ear_idx[k]] = (x0 + dx * np.sign(base[ear_idx[3], 0] - x0), 0.1 if k in (1, 2) else -0.1)
    for f in blink_frames:
        for ear_idx in (geo.RIGHT_EYE_EAR, geo.LEFT_EYE_EAR):
            lm[f, [ear_idx[1], ear_idx[2], ear_idx[4], ear_idx[5]], 1] = 0.0
    lm[:, list(geo.LIPS), 1] += 0.2 * np.sin(np.arange(t) * mouth_speed)[:, None]
    return lm


def test_dynamic_features_count_blinks_and_scale_with_motion():
    still = landmarks.dynamic_features(_face(250, blink_frames=[50, 51, 150]), fps=25.0)
    assert still["blink_rate_per_min"] == pytest.approx(2 / (250 / 25 / 60))
    moving = landmarks.dynamic_features(_face(250, mouth_speed=0.5), fps=25.0)
    assert moving["speed_mean_mouth"] > 10 * max(still["speed_mean_mouth"], 1e-6)
    assert moving["range_mouth_opening"] >= still["range_mouth_opening"]
    assert list(moving) == landmarks.feature_names("landmark_dynamic")


def test_static_features_are_the_normalised_mean_face():
    lm = _face(10)
    shifted = lm * 3.0 + 40.0  # another crop of the same face
    a = landmarks.static_features(landmarks.normalised(lm))
    b = landmarks.static_features(landmarks.normalised(shifted))
    assert np.allclose(a, b) and len(a) == len(landmarks.feature_names("landmark_static"))


def test_plan_pairs_designs_and_dedupes_the_shipped_point():
    train = TrainConfig(model={"frames": 14}, stride=4)
    cfg = EvaluateConfig(models=["i3d", "landmark_static"], ablation={"frames": [4, 14]})
    names = [s.name for s in plan.settings(cfg, train)]
    assert names[:2] == ["i3d", "landmark_static"] and "i3d/fixed_duration/f4" in names
    by = {s.name: s for s in plan.settings(cfg, train)}
    assert by["i3d/fixed_stride/f14"].run_key == by["i3d"].run_key  # trained once
    assert by["i3d/fixed_duration/f4"].stride == round(13 * 4 / 3)  # spans what 14 x 4 spans
    tasks = plan.tasks(cfg, train, [0, 1])
    assert len(tasks) == len({(t.setting.run_key, t.fold) for t in tasks})
    tc = plan.train_config(by["i3d/fixed_duration/f4"], train, 1, epochs=2)
    assert (tc.fold, tc.model.frames, tc.stride, tc.epochs, tc.registered_model) == (1, 4, 17, 2, "")


def _candidate(auc, lo, digest="d1"):
    return blessing.Candidate("i3d", auc, (lo, min(1.0, auc + 0.1)), digest, "2")


def test_blessing_floor_champion_margin_and_folds():
    cfg = BlessingConfig(min_auroc_lower_ci=0.7, max_drop_vs_champion=0.02)
    assert blessing.decide(cfg, _candidate(0.9, 0.75), None).blessed  # first blessed model
    assert not blessing.decide(cfg, _candidate(0.9, 0.6), None).blessed  # under the floor
    assert not blessing.decide(cfg, _candidate(0.9, math.nan), None).blessed  # no CI -> no blessing
    champ = blessing.Champion("1", 0.95, "d1")
    worse = blessing.decide(cfg, _candidate(0.9, 0.75), champ)
    assert not worse.blessed and "not_worse_than_champion" in worse.reason
    assert blessing.decide(cfg, _candidate(0.94, 0.75), champ).blessed  # within the margin
    other_folds = blessing.decide(cfg, _candidate(0.99, 0.9), blessing.Champion("1", 0.5, "d0"))
    assert not other_folds.blessed and "other folds" in other_folds.reason


def test_json_is_standard_with_null_and_a_reason():
    text = jsonio.dumps(
        {"overall": {"subject": {"auroc": float("nan"), "auroc_ci95": (np.float64("nan"), 0.9)}}}
    )
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert data["overall"]["subject"]["auroc"] is None
    assert "both classes" in data["nulls"]["overall.subject.auroc"]
    assert "overall.subject.auroc_ci95.0" in data["nulls"]


def test_the_gpu_profile_is_valid_and_runs_the_full_ablation(repo_root):
    from hypomimia.config import load_params
    from pipeline.pipeline import evaluation_tasks

    gpu = load_params(repo_root / "params" / "gpu.yaml")
    assert (gpu.train.model.width, gpu.train.model.size, gpu.train.amp) == (1.0, 224, "bf16")
    assert gpu.evaluate.ablation.frames == [4, 8, 14, 16, 32] and len(gpu.evaluate.ablation.designs) == 2
    assert set(gpu.evaluate.models) == {"i3d", "r3d18", "resnet2d50", "landmark_static", "landmark_dynamic",
                                        "landmark_trajectory", "voice"}  # fmt: skip
    # 3 networks + 8 ablation points (14 frames fixed-duration = the shipped clip) per fold and seed,
    # + 3 landmark fits and the voice fit per fold (deterministic: once)
    assert len(gpu.evaluate.seeds) >= 3
    assert len(evaluation_tasks(gpu)) == gpu.ingest.folds * ((3 + 8) * len(gpu.evaluate.seeds) + 4)


def test_comparison_networks_see_plain_rgb_and_the_2d_model_fewer_frames():
    """The I3D's frame-difference stream is its recipe; r3d18/resnet2d50 are built as plain RGB networks."""
    train = TrainConfig(model={"frames": 14, "stream": "rgb+diff"}, stride=4)
    cfg = EvaluateConfig(models=["i3d", "r3d18", "resnet2d50"], frames_2d=4, ablation={"frames": []})
    by = {s.name: s for s in plan.settings(cfg, train)}
    assert (by["resnet2d50"].frames, by["resnet2d50"].stride) == (4, 17)  # the same 2.1 s span
    assert (by["r3d18"].frames, by["r3d18"].stride) == (14, 4)
    streams = {n: plan.train_config(by[n], train, 0, epochs=1).model.stream for n in by}
    assert streams == {"i3d": "rgb+diff", "r3d18": "rgb", "resnet2d50": "rgb"}
    full = EvaluateConfig(models=["i3d", "resnet2d50"], frames_2d=None, ablation={"frames": []})
    assert plan.settings(full, train)[1].frames == 14


def test_every_network_task_is_repeated_per_seed_and_the_fan_out_carries_the_seed(repo_root):
    from hypomimia.config import load_params
    from hypomimia.pipeline_runner import apply_overrides
    from hypomimia.stages.evaluate import task_from_json, task_json
    from pipeline.pipeline import evaluation_tasks

    train = TrainConfig(model={"frames": 14}, stride=4, seed=0)
    cfg = EvaluateConfig(models=["i3d", "landmark_static"], ablation={"frames": [4], "designs": ["fixed_stride"]},
                         seeds=[0, 1, 2])  # fmt: skip
    tasks = plan.tasks(cfg, train, [0, 1])
    nets = [t for t in tasks if t.setting.network]
    assert {(t.setting.run_key, t.fold, t.seed) for t in nets} == {
        (k, f, s) for k in ("i3d-f14-s4", "i3d-f4-s4") for f in (0, 1) for s in (0, 1, 2)
    }
    landmark = [t for t in tasks if not t.setting.network]
    assert [t.seed for t in landmark] == [None, None]  # deterministic: once per fold
    assert nets[0].folder == "i3d-f14-s4/seed0/fold0" and landmark[-1].folder == "landmark_static/fold1"
    assert plan.train_config(nets[-1].setting, train, 1, None, nets[-1].seed).seed == 2
    assert all(task_from_json(task_json(t)) == t for t in tasks)
    with pytest.raises(ValueError, match="distinct"):
        EvaluateConfig(seeds=[1, 1])

    params = apply_overrides(load_params(repo_root / "params.yaml"), ["evaluate.seeds=[0,1]"])
    fan_out = [json.loads(t) for t in evaluation_tasks(params)]
    nets = [t for t in fan_out if t["setting"]["model"] in plan.NETWORKS]
    assert {t["seed"] for t in nets} == {0, 1} and len(nets) == 2 * len(
        {(json.dumps(t["setting"]), t["fold"]) for t in nets}
    )
    assert {t["seed"] for t in fan_out if t not in nets} == {None}


def test_baseline_networks_can_run_fewer_seeds_than_the_reference():
    train = TrainConfig(model={"frames": 14}, stride=4, seed=0)
    cfg = EvaluateConfig(models=["i3d", "resnet2d50", "landmark_dynamic"], ablation={"frames": []},
                         seeds=[0, 1, 2], baseline_seeds=[0])  # fmt: skip
    seeds = {}
    for t in plan.tasks(cfg, train, [0, 1]):
        seeds.setdefault(t.setting.name, set()).add(t.seed)
    assert seeds == {"i3d": {0, 1, 2}, "resnet2d50": {0}, "landmark_dynamic": {None}}
    with pytest.raises(ValueError, match="baseline_seeds"):
        EvaluateConfig(baseline_seeds=[])


def test_only_the_reference_network_gets_the_landmark_stream():
    train = TrainConfig(landmark_stream={"enabled": True})
    cfg = EvaluateConfig(models=["i3d", "resnet2d50"], ablation={"frames": [8], "designs": ["fixed_stride"]})
    on = {
        s.name: plan.train_config(s, train, 0, None).landmark_stream.enabled
        for s in plan.settings(cfg, train)
    }
    assert on == {"i3d": True, "resnet2d50": False, "i3d/fixed_stride/f8": True}


def test_only_the_reference_network_gets_the_voice_and_the_voice_model_is_fit_once_per_fold():
    train = TrainConfig(voice_stream={"enabled": True})
    cfg = EvaluateConfig(models=["i3d", "resnet2d50", "voice"], ablation={"frames": []}, seeds=[0, 1])
    by = {s.name: s for s in plan.settings(cfg, train)}
    on = {n: plan.train_config(s, train, 0, None).voice_stream.enabled for n, s in by.items() if s.network}
    assert on == {"i3d": True, "resnet2d50": False}
    voice_tasks = [t for t in plan.tasks(cfg, train, [0, 1]) if t.setting.name == "voice"]
    assert [(t.fold, t.seed) for t in voice_tasks] == [(0, None), (1, None)]  # deterministic: no seeds


def _miscalibrated(shift: float, sharpen: float, n: int = 400, folds: int = 4):
    """Subjects whose true P(PD) is sigmoid(z); the model reports sigmoid(sharpen * z + shift)."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    table = pd.DataFrame({"subject_id": [f"s{i}" for i in range(n)], "label": y,
                          "p": 1 / (1 + np.exp(-(sharpen * z + shift)))})  # fmt: skip
    return table, {f"s{i}": i % folds for i in range(n)}


def test_cross_fitted_calibration_reduces_the_pooled_ece_of_a_miscalibrated_model():
    over, fold_of = _miscalibrated(shift=0.0, sharpen=3.0)  # overconfident: a temperature fixes it
    t = calibration.summary(over, fold_of, "temperature")
    assert (
        t["ece_before"] > 0.1
        and t["ece_after"] < t["ece_before"] / 2
        and t["brier_after"] < t["brier_before"]
    )
    assert len(t["folds"]) == 4 and all(f["subjects_fitted"] == 300 for f in t["folds"])
    assert 2.0 < t["all_folds"]["temperature"] < 4.5  # the true temperature is 3
    shifted, fold_of = _miscalibrated(shift=1.5, sharpen=1.0)  # a wrong base rate: only Platt moves it
    pl = calibration.summary(shifted, fold_of, "platt")
    assert pl["ece_after"] < pl["ece_before"] / 2 and pl["all_folds"]["intercept"] < -1.0
    # cross-fitting: fold 0's subjects are mapped by the fit on folds 1-3 only
    after, per_fold = calibration.cross_fit(over, fold_of, "temperature")
    rest = over[[fold_of[s] != 0 for s in over["subject_id"]]]
    fitted = calibration.fit(rest["p"].to_numpy(), rest["label"].to_numpy(), "temperature")
    assert per_fold[0]["temperature"] == pytest.approx(fitted["temperature"])
    one = calibration.summary(over, dict.fromkeys(fold_of, 0), "temperature")
    assert math.isnan(one["ece_after"]) and "two" in one["note"]
    assert calibration.summary(over, fold_of, "none")["ece_after"] == t["ece_before"]


def test_consistency_resampling_tells_sampling_noise_from_miscalibration():
    """On 32 subjects a perfectly calibrated model still shows a sizeable ECE; the consistency test says
    how large, and flags an overconfident model whose ECE the noise does not explain."""
    calibrated, _ = _miscalibrated(shift=0.0, sharpen=1.0, n=32)
    c = calibration.consistency(calibrated["p"].to_numpy(), calibrated["label"].to_numpy())
    assert 0.08 < c["expected_if_calibrated"] < 0.25 and c["q95_if_calibrated"] > c["expected_if_calibrated"]
    assert c["p"] > 0.05  # calibrated by construction: not flagged
    over, _ = _miscalibrated(shift=0.0, sharpen=4.0, n=400)
    o = calibration.consistency(over["p"].to_numpy(), over["label"].to_numpy())
    assert o["ece"] > o["q95_if_calibrated"] and o["p"] < 0.01
    assert calibration.consistency(over["p"].to_numpy(), over["label"].to_numpy()) == o  # seeded
    t = calibration.summary(calibrated, {f"s{i}": i % 4 for i in range(32)}, "temperature")
    assert (
        t["consistency_before"]["ece"] == t["ece_before"] and t["consistency_after"]["ece"] == t["ece_after"]
    )


def test_videos_calibrated_one_by_one_make_a_cautious_subject_mean_and_the_report_shows_both_levels():
    """Each video's p is its exact posterior (calibrated where the endpoint answers); a subject's p is the
    mean of its 6 videos', which averages independent evidence away: the subject level is under-confident
    (a sharpening temperature < 1), the video level is not, and ``summary`` reports both."""
    rng = np.random.default_rng(1)
    n, k, mu = 300, 6, 0.5
    y = np.repeat(rng.integers(0, 2, n), k)
    score = rng.normal(np.where(y == 1, mu, -mu), 1.0)
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(n * k)], "subject_id": [f"s{i // k}" for i in range(n * k)],
                           "label": y, "p": 1 / (1 + np.exp(-2 * mu * score))})  # fmt: skip
    subjects = (
        videos.groupby("subject_id", sort=True).agg(label=("label", "first"), p=("p", "mean")).reset_index()
    )
    s = calibration.summary(subjects, {f"s{i}": i % 4 for i in range(n)}, "temperature", videos)
    assert s["video"]["videos"] == n * k and s["video"]["p"] > 0.05  # calibrated per video: not flagged
    assert s["video"]["ece"] == pytest.approx(calibration.consistency(videos["p"].to_numpy(), y)["ece"])
    assert s["consistency_before"]["p"] < 0.01 and s["all_folds"]["temperature"] < 0.6  # cautious subjects
    assert s["ece_after"] < s["ece_before"] / 2
    assert "video" not in calibration.summary(subjects, {f"s{i}": i % 4 for i in range(n)}, "temperature")


def _cohort(seed: int, n: int, k: int = 6, mu: float = 0.5) -> pd.DataFrame:
    """n subjects of k videos, each video's p its exact posterior (the construction above)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(rng.integers(0, 2, n), k)
    score = rng.normal(np.where(y == 1, mu, -mu), 1.0)
    return pd.DataFrame({"video_id": [f"v{i}" for i in range(n * k)], "subject_id": [f"s{i // k}" for i in range(n * k)],
                         "label": y, "p": 1 / (1 + np.exp(-2 * mu * score))})  # fmt: skip


def test_the_deployment_map_fitted_in_development_calibrates_an_unseen_cohort():
    """evaluate's per-seed map (fitted on every held-out subject) applied to a new cohort's subject means:
    the cautious subject level becomes consistent with calibrated there, and the report says so."""
    dev = aggregate(_cohort(1, 300), "subject")
    cal_map = calibration.summary(dev, {f"s{i}": i % 4 for i in range(300)}, "temperature")["all_folds"]
    evaluation = {"reference": "i3d", "settings": {"i3d": {"seeds": {"per_seed": [
        {"seed": 0, "calibration_map": {"temperature": 9.0}}, {"seed": 1, "calibration_map": cal_map}]}}}}  # fmt: skip
    assert external.deployment_map(evaluation, 1) == cal_map and external.deployment_map(evaluation, 2) == {}
    assert external.deployment_map({"settings": {}}, 0) == {}  # an older evaluation.json: no map, no crash
    unseen = _cohort(2, 400)
    r = external.measure(unseen, cal_map, bootstrap=50)
    assert r["subjects"] == 400 and r["videos"] == 2400 and r["subject_auroc"] > 0.8
    assert r["before"]["p"] < 0.01 and r["after"]["p"] > 0.05  # miscalibrated before, consistent after
    assert r["after"]["ece"] < r["before"]["ece"] / 2 and r["brier_after"] < r["brier_before"]
    expected = calibration.apply(aggregate(unseen, "subject")["p"].to_numpy(), cal_map)
    assert r["after"]["ece"] == pytest.approx(
        calibration.consistency(expected, aggregate(unseen, "subject")["label"].to_numpy())["ece"]
    )
    # a map fitted on a calibration cohort (another draw of 400) brings the unseen one's ECE down as well
    platt = external.cohort_map(_cohort(3, 400), "platt")
    with_cohort = external.measure(unseen, cal_map, bootstrap=0, cohort_cal=platt)
    assert with_cohort["cohort_map"] == platt and r["after_cohort_map"] is None
    assert with_cohort["after_cohort_map"]["ece"] < r["before"]["ece"] / 3  # 0.058 vs 0.273
    wrong = external.measure(unseen, {"temperature": 9.0}, bootstrap=0)  # a map from another seed's model
    assert wrong["after"]["p"] < 0.01
    none = external.measure(unseen, {}, bootstrap=0)
    assert none["after"] is None and "undefined" in none["note"]
    s = external.summarize([r, wrong, none])
    assert s["models"] == 3 and s["ece_after"]["mean"] == pytest.approx(
        (r["after"]["ece"] + wrong["after"]["ece"]) / 2
    )


def test_the_gate_reports_each_seeds_own_verdict_and_can_require_agreement():
    seeds = [{"seed": 0, "auroc": 0.85, "auroc_ci95": (0.72, 0.95)},
             {"seed": 1, "auroc": 0.70, "auroc_ci95": (0.50, 0.86)}]  # fmt: skip
    ens = blessing.Candidate("i3d", 0.82, (0.71, 0.93), "d1", "2", seeds=seeds)
    d = blessing.decide(BlessingConfig(min_auroc_lower_ci=0.7), ens, None)
    assert d.blessed and d.extra["seed_agreement"] == 0.5  # decided on the ensemble; agreement reported
    assert d.extra["seeds_passing_floor"] == {"0": True, "1": False} and "seed 1 fails" in d.reason
    strict = blessing.decide(BlessingConfig(min_auroc_lower_ci=0.7, min_seed_agreement=1.0), ens, None)
    assert not strict.blessed and "seed_agreement" in strict.reason
    assert blessing.decide(BlessingConfig(), _candidate(0.9, 0.75), None).extra["seeds_passing_floor"] == {}
