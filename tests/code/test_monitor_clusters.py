"""Issue 26, monitoring: clips of one person are not independent (subject-level tests), lost videos
are a signal (a window that loses 3 of 20 videos is flagged, not too_small), and drift.html's
headline is the decision monitor.json holds. Synthetic tables, no video (~10 s)."""

import json

import numpy as np
import pandas as pd
import pytest

from hypomimia.config.monitor import MonitorConfig
from hypomimia.monitoring.decision import decide
from hypomimia.monitoring.drift import HEADLINE_ID, compare, subject_table
from hypomimia.stages import monitor as stage

CFG = MonitorConfig(min_window=5)


def clustered(subjects, clips, seed, subject_sd=1.5, shift=0.0):
    """``subjects`` x ``clips`` rows; each subject has its own level (a face, a severity), clips
    scatter little around it: the clustering that made 20 clips of 5 people look like 20 people."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        level = rng.normal(shift, subject_sd)
        blur = rng.normal(200, 40)
        for c in range(clips):
            logit = level + rng.normal(0, 0.3)
            p = 1 / (1 + np.exp(-logit))
            rows.append({
                "video_id": f"s{seed}_{s}_{c}", "subject_ref": f"S{seed}_{s}",
                "blur_mean": blur + rng.normal(0, 5), "p_pd": p,
                "label": "uncertain" if abs(p - 0.5) < 0.15 else ("pd" if p >= 0.5 else "control"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_one_row_per_subject_and_the_majority_label():
    df = pd.DataFrame({
        "subject_ref": ["a", "a", "a", "b", "b"], "blur_mean": [1.0, 2.0, 9.0, 4.0, 4.0],
        "p_pd": [0.9, 0.8, 0.1, 0.2, 0.7], "label": ["pd", "pd", "control", "control", "pd"],
    })  # fmt: skip
    t = subject_table(df, ["blur_mean"], True, [])
    assert t["blur_mean"].tolist() == [2.0, 4.0]
    assert t["label"].tolist() == ["pd", "uncertain"]  # b: one control, one pd -> a tie
    assert t["p_pd"].round(3).tolist() == [0.6, 0.45]


@pytest.mark.slow
def test_same_distribution_clustered_windows_do_not_alarm_where_clip_tests_did():
    """40 windows of 5 subjects x 4 clips against 5 held-out subjects x 4: the subject-level tests
    stay within alpha; the same windows tested clip by clip (the old behaviour) alarm far more."""
    ref = clustered(5, 4, seed=0)
    subject_alarms, clip_alarms = 0, 0
    for k in range(40):
        cur = clustered(5, 4, seed=100 + k)
        subject_alarms += decide(compare(ref, cur, CFG).summary, CFG).outcome != "ok"
        flat = lambda d: d.assign(subject_ref=d["video_id"])  # noqa: E731  every clip its own subject
        clip_alarms += decide(compare(flat(ref), flat(cur), CFG).summary, CFG).outcome != "ok"
    assert subject_alarms <= 2, subject_alarms  # <= 5 % of 40
    assert clip_alarms > 2 * max(subject_alarms, 1), (clip_alarms, subject_alarms)


def test_a_shift_of_every_subject_is_still_detected():
    ref = clustered(30, 1, seed=1)  # a training cohort: many subjects
    cur = clustered(5, 4, seed=2)
    cur["blur_mean"] = cur["blur_mean"] * 0.2  # another camera: every subject's clips blurred
    d = decide(compare(ref, cur, CFG).summary, CFG)
    assert d.outcome != "ok" and "blur_mean" in d.drivers


@pytest.mark.parametrize(("face_lost", "expected"), [(3, "lost_videos"), (0, None)])
def test_lost_videos_are_a_signal(face_lost, expected):
    ref, cur = clustered(10, 2, seed=3), clustered(5, 4, seed=4).iloc[: 20 - face_lost]
    lost = {"submitted": 20, "ingest_quarantined": 0, "face_lost": face_lost,
            "reference": {"submitted": 20, "ingest_quarantined": 0, "face_lost": 0}}  # fmt: skip
    summary = compare(ref, cur.reset_index(drop=True), CFG, lost).summary
    d = decide(summary, CFG)
    if expected:
        assert d.outcome in ("warn", "retrain") and expected in d.drivers
        assert any(r.startswith("lost_videos: 3 of 20") for r in d.reasons), d.reasons
    else:
        assert d.outcome == "ok"
    assert summary["tests"] == 5 and summary["lost"]["tests"]["face_lost"]["current"] == face_lost


def test_many_lost_videos_drift_by_fisher_exact_on_a_large_window():
    lost = {"submitted": 200, "ingest_quarantined": 20, "face_lost": 0,
            "reference": {"submitted": 400, "ingest_quarantined": 8, "face_lost": 0}}  # fmt: skip
    d = decide(compare(clustered(20, 2, 5), clustered(50, 4, 6), MonitorConfig(max_lost_share=0.5), lost).summary,
               MonitorConfig(max_lost_share=0.5))  # fmt: skip
    assert "ingest_quarantined" in d.drivers and "lost_videos" not in d.drivers


# -- the stage on hand-made stage folders: 3 of 20 videos lose their face, and the page's headline
def _stage_folders(root, name, n_subjects, clips, face_lost, seed, folds):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for c in range(clips):
            rows.append({"video_id": f"{name}{s:02d}_{c}", "subject_id": f"{name}S{s:02d}", "label": "pd"})
    ing = pd.DataFrame(rows).assign(status="accepted", session="", nominal_fps=25.0, width=320, height=320,
                                    duration_s=3.0)  # fmt: skip
    tubes = ing[["video_id", "subject_id", "label"]].assign(
        status="accepted", reason="", tube=[f"tubes/{v}.npz" for v in ing["video_id"]], n_frames=75,
        face_found_ratio=1.0, face_size_mean=rng.normal(0.4, 0.02, len(ing)),
        blur_mean=rng.normal(200, 20, len(ing)), brightness_mean=rng.normal(120, 5, len(ing)),
    )  # fmt: skip
    tubes.loc[tubes.index[:face_lost], ["status", "reason", "tube"]] = ["quarantined", "no_face", None]
    (root / name / "ingest").mkdir(parents=True)
    (root / name / "tubes").mkdir(parents=True)
    ing.to_parquet(root / name / "ingest" / "ingested.parquet")
    tubes.to_parquet(root / name / "tubes" / "tubes.parquet")
    f = ing[["video_id"]].assign(fold=np.arange(len(ing)) % 2, repeat=0)
    (f if folds else f.iloc[:0]).to_parquet(root / name / "ingest" / "folds.parquet")
    return root / name / "ingest", root / name / "tubes"


def test_a_window_losing_3_of_20_videos_is_flagged_not_too_small_and_the_page_says_so(tmp_path):
    ref = _stage_folders(tmp_path, "ref", 10, 4, 0, seed=0, folds=True)
    cur = _stage_folders(tmp_path, "cur", 5, 4, 3, seed=1, folds=False)
    r = stage.run(MonitorConfig(), *ref, tmp_path / "out", current_ingest=cur[0], current_tubes=cur[1])
    assert r.window["submitted"] == 20 and r.window["videos"] == 17 and r.window["lost"] == 3
    assert r.decision.outcome in ("warn", "retrain") and "lost_videos" in r.decision.drivers
    report = json.loads((tmp_path / "out" / "monitor.json").read_text())
    _headline_matches(tmp_path / "out" / "drift.html", report)


def test_the_headline_of_drift_html_is_the_decision(tmp_path):
    """ok and retrain windows: the first block of the page is monitor.json's outcome and drivers, and
    Evidently's dataset-level headline (a share of drifted columns, not our decision) is gone."""
    ref = _stage_folders(tmp_path, "ref", 10, 4, 0, seed=0, folds=True)
    for name, seed, lost in (("same", 2, 0), ("drifted", 3, 0)):
        cur = _stage_folders(tmp_path, name, 5, 4, lost, seed=seed, folds=False)
        if name == "drifted":  # another camera: darker, blurred
            t = pd.read_parquet(cur[1] / "tubes.parquet")
            t["blur_mean"] *= 0.3
            t["brightness_mean"] *= 0.5
            t.to_parquet(cur[1] / "tubes.parquet")
        out = tmp_path / f"out_{name}"
        r = stage.run(MonitorConfig(), *ref, out, current_ingest=cur[0], current_tubes=cur[1])
        report = json.loads((out / "monitor.json").read_text())
        assert report["decision"]["outcome"] == ("ok" if name == "same" else "retrain"), report
        _headline_matches(out / "drift.html", report)
        assert r.summary["unit"] == "subject" and r.summary["n_current_subjects"] == 5


def _headline_matches(html_path, report):
    page = html_path.read_text(encoding="utf-8")
    assert "Dataset Drift is" not in page  # no DataDriftPreset headline that could contradict us
    body = page.index("<body")
    block = page.index(f'id="{HEADLINE_ID}"')
    assert block > body and page.index("<div", body) == block - 5  # the first thing in the body
    outcome = report["decision"]["outcome"]
    assert f'data-outcome="{outcome}"' in page[block : block + 200]
    assert f'Monitor decision: <span class="outcome">{outcome.upper()}</span>' in page
    for driver in report["decision"]["drivers"]:
        assert driver in page[block : page.index("</div>", block)]
