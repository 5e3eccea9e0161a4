"""Phantom generator units: cohort design, disease model, timelines (no rendering, milliseconds)."""

from dataclasses import replace

import numpy as np
import pytest

from hypomimia.config.phantom import CueConfig, PhantomConfig
from hypomimia.phantom.cohort import plan_subjects, plan_videos, rng_for
from hypomimia.phantom.disease import LID_DROOP, SEVERITY_EFFECTS, draw_scores, make_profile
from hypomimia.phantom.identities import BASES, draw_identity
from hypomimia.phantom.synth import _write_json, subject_identity, subject_profile
from hypomimia.phantom.timeline import BLINK_MIN_GAP_S, build_timeline, pattern_events


def test_subjects_come_in_matched_pairs_with_balanced_identities():
    cfg = PhantomConfig(subjects=32)
    subjects = plan_subjects(cfg)
    assert [s.subject_id for s in subjects] == [f"ph_s{i:03d}" for i in range(32)]
    by_pair: dict[int, list[str]] = {}
    for s in subjects:
        by_pair.setdefault(s.pair, []).append(s.label)
    assert all(sorted(labels) == ["control", "pd"] for labels in by_pair.values())
    # Each base photo and mirroring appears equally often in both classes.
    for label in ("pd", "control"):
        ids = [draw_identity(np.random.default_rng(0), s.pair) for s in subjects if s.label == label]
        assert {b: sum(i.base == b for i in ids) for b in BASES} == {b: 8 for b in BASES}
        assert sum(i.mirror for i in ids) == 8


def test_pairs_share_a_base_photo_but_every_subject_looks_different():
    cfg = PhantomConfig(subjects=8)
    subjects = plan_subjects(cfg)
    ids = [subject_identity(cfg, s) for s in subjects]
    assert ids[0] == subject_identity(cfg, subjects[0])  # reproducible
    assert len({str(i.morph) for i in ids}) == 8
    for s, i in zip(subjects, ids, strict=True):
        partner = next(j for t, j in zip(subjects, ids, strict=True) if t.pair == s.pair and t is not s)
        assert (i.base, i.mirror, i.sex) == (partner.base, partner.mirror, partner.sex)
    # The dynamic-only known answer uses identical twins: the whole identity follows the pair.
    dyn = PhantomConfig(subjects=8, dynamic_only=True)
    twins = [subject_identity(dyn, s) for s in subjects]
    assert twins[0] == twins[1] and twins[2] == twins[3] and twins[0] != twins[2]


def test_uneven_pd_fraction_and_task_cycle():
    cfg = PhantomConfig(
        subjects=5, pd_fraction=0.4, videos_per_subject=6, tasks=["rest", "smile", "speech", "mimic"]
    )
    labels = [s.label for s in plan_subjects(cfg)]
    assert labels.count("pd") == 2 and labels.count("control") == 3
    plans = [p for p in plan_videos(cfg) if p.subject.index == 0]
    assert [p.task for p in plans] == ["rest", "smile", "speech", "mimic", "rest", "smile"]
    assert [p.session for p in plans] == ["s1"] * 4 + ["s2"] * 2
    assert plans[3].video_id == "ph_s000_v03"


def test_scores_follow_the_clinical_scales():
    rng = np.random.default_rng(0)
    pd_scores = [draw_scores(rng, "pd") for _ in range(300)]
    control_scores = [draw_scores(rng, "control") for _ in range(300)]
    assert {u for u, _ in pd_scores} <= {1, 2, 3, 4} and all(
        1 <= hy <= 5 and hy * 2 % 1 == 0 for _, hy in pd_scores
    )
    assert {u for u, _ in control_scores} <= {0, 1} and all(hy is None for _, hy in control_scores)
    assert np.mean([u == 0 for u, _ in control_scores]) > 0.6


def test_severity_effects_decrease_with_the_score():
    for key in ("amplitude", "upper_face", "speed", "blink", "micro"):
        values = [SEVERITY_EFFECTS[u][key] for u in range(5)]
        assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:], strict=False))
    assert (
        SEVERITY_EFFECTS[2]["lips_parted"]
        == 0
        < SEVERITY_EFFECTS[3]["lips_parted"]
        < SEVERITY_EFFECTS[4]["lips_parted"]
    )


def _profile(label, updrs, cues, dynamic_only=False):
    return make_profile(
        np.random.default_rng(7), label, updrs, 3.0 if label == "pd" else None, cues, dynamic_only
    )


def test_a_switched_off_cue_gives_pd_the_control_value():
    off = CueConfig(amplitude=False, speed=False, blink=False, micro=False, static=False)
    pd_, control = _profile("pd", 4, off), _profile("control", 0, CueConfig(static=True))
    for key in ("amplitude", "upper_face", "speed", "blink_rate", "micro", "lips_parted"):
        assert getattr(pd_, key) == getattr(control, key), key
    severe = _profile("pd", 4, CueConfig(static=True))
    assert severe.amplitude < control.amplitude and severe.speed < control.speed
    assert severe.blink_rate < control.blink_rate and severe.lips_parted > 0


def test_dynamic_only_keeps_only_the_speed_cue():
    pd_ = _profile("pd", 4, CueConfig(static=True), dynamic_only=True)
    control = _profile("control", 0, CueConfig(), dynamic_only=True)
    assert pd_.amplitude == control.amplitude == 1.0 and pd_.blink_rate == control.blink_rate
    assert pd_.micro == control.micro and pd_.lips_parted == 0
    assert pd_.speed == pytest.approx(0.5 * control.speed)


def test_dynamic_only_frames_match_in_expectation_but_velocity_does_not():
    """Time-scaling a cyclic pattern from a random phase keeps the per-frame AU distribution."""
    pattern = pattern_events(rng_for(0, 5, 0, 0), "mimic")
    slow, fast = _profile("pd", 4, CueConfig(), True), _profile("control", 0, CueConfig(), True)
    means = {"pd": [], "control": []}
    speeds = {"pd": [], "control": []}
    for k in range(60):
        for label, prof, cycles in (("pd", slow, 1.25), ("control", fast, 2.5)):
            tl = build_timeline(np.random.default_rng(k), "mimic", 4.0, 25, prof, pattern, cycles)
            expr = np.stack([tl.au[a] for a in ("au1_2", "au4", "au6", "au12", "au25", "au26")])
            means[label].append(expr.mean(1))
            speeds[label].append(np.abs(np.diff(expr, axis=1)).mean())
    pd_mean, control_mean = np.mean(means["pd"], 0), np.mean(means["control"], 0)
    assert np.allclose(pd_mean, control_mean, atol=0.02 + 0.08 * control_mean)
    assert np.mean(speeds["pd"]) < 0.65 * np.mean(speeds["control"])


def test_timeline_blinks_are_separable_and_reported():
    prof = _profile("control", 0, CueConfig())
    object.__setattr__(prof, "blink_rate", 28.0)
    for k in range(20):
        tl = build_timeline(np.random.default_rng(k), "rest", 6.0, 25, prof)
        peaks = [b["peak"] for b in tl.blinks]
        assert all(b - a >= BLINK_MIN_GAP_S * 25 - 1 for a, b in zip(peaks, peaks[1:], strict=False))
        closed = set(tl.blink_frames())
        assert all(any(f in closed for f in range(b["start"], b["end"] + 1)) for b in tl.blinks)
        assert tl.au["au45"].max() <= 1.0 and tl.pose.shape == (150, 5)


def test_every_task_has_expression_events_even_for_severe_pd():
    prof = _profile("pd", 4, CueConfig())
    for task in ("smile", "mimic", "speech"):
        tl = build_timeline(np.random.default_rng(1), task, 3.0, 25, prof)
        assert [e for e in tl.events if e.kind != "blink"], task


def _region_profile(label, updrs, region):
    return make_profile(
        np.random.default_rng(7), label, updrs, 3.0 if label == "pd" else None, CueConfig(), False, region
    )


def test_eyes_only_disease_changes_the_blinks_and_nothing_else():
    pd_, control = _region_profile("pd", 4, "eyes"), _region_profile("control", 0, "eyes")
    for key in ("amplitude", "upper_face", "speed", "micro", "lips_parted"):
        assert getattr(pd_, key) == getattr(control, key), key
    assert pd_.blink_rate < 0.6 * control.blink_rate and pd_.blink_speed == 0.5 < control.blink_speed
    slow = build_timeline(np.random.default_rng(3), "rest", 8.0, 25, replace(pd_, blink_rate=28.0))
    fast = build_timeline(np.random.default_rng(3), "rest", 8.0, 25, replace(control, blink_rate=28.0))
    closed = [len(tl.blink_frames()) / max(1, len(tl.blinks)) for tl in (slow, fast)]
    assert closed[0] > 1.5 * closed[1]  # a PD blink keeps the eye closed longer
    # Lids lowered at rest (every frame), below the blink-truth threshold: blinks are still counted only
    # where the eye closes.
    assert pd_.lid_droop == LID_DROOP[4] > 0 == control.lid_droop
    at_rest = slow.au["au45"][slow.au["au45"] < 0.5]
    assert at_rest.min() == pytest.approx(pd_.lid_droop) and fast.au["au45"].min() == 0.0
    no_droop = build_timeline(
        np.random.default_rng(3), "rest", 8.0, 25, replace(pd_, blink_rate=28.0, lid_droop=0.0)
    )
    assert slow.blink_frames() == no_droop.blink_frames() and len(slow.blinks) == len(no_droop.blinks)


def test_mouth_only_disease_changes_the_lower_face_and_nothing_else():
    pd_, control = _region_profile("pd", 4, "mouth"), _region_profile("control", 0, "mouth")
    # The upper face moves as much as the control's (amplitude x upper_face); blinks, timing, sway too.
    assert pd_.amplitude * pd_.upper_face == pytest.approx(control.amplitude * control.upper_face)
    for key in ("speed", "blink_rate", "blink_speed", "micro", "lid_droop"):
        assert getattr(pd_, key) == getattr(control, key), key
    assert pd_.amplitude < 0.5 * control.amplitude and pd_.lips_parted > 0 == control.lips_parted


def test_region_and_dynamic_only_known_answers_are_not_combined():
    with pytest.raises(ValueError, match="cue_region"):
        PhantomConfig(dynamic_only=True, cue_region="eyes")


@pytest.mark.parametrize("region", ["eyes", "mouth"])
def test_region_known_answers_draw_moderate_to_severe_pd(region):
    """As the dynamic-only study: at UPDRS 3.2 = 1 the region cues are nearly nil (no lids lowered, no
    lips parted), so a single-region study draws PD scores >= 3; the natural phantom keeps 1-4."""

    def pd_scores(cfg):
        return {subject_profile(cfg, s).updrs_3_2 for s in plan_subjects(cfg) if s.label == "pd"}

    assert pd_scores(PhantomConfig(subjects=40, cue_region=region)) <= {3, 4}
    assert min(pd_scores(PhantomConfig(subjects=40))) < 3


def test_truth_sidecar_bytes_do_not_move_with_a_last_place_difference(tmp_path):
    """CPUs' math kernels differ by an ULP (AVX-512 against AVX2); the sidecar, which data.dvc hashes,
    must print the same on both."""
    value = 0.02035618876442225
    nudged = float(np.nextafter(value, 1.0))
    _write_json(tmp_path / "a.json", {"hold": value, "events": [{"start": 1.216254712255619, "t": -1e-9}]})
    _write_json(tmp_path / "b.json", {"hold": nudged, "events": [{"start": 1.2162547122556192, "t": 1e-9}]})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_text() == '{"events":[{"start":1.216255,"t":0.0}],"hold":0.020356}\n'
