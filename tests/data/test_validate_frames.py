"""Derived per-row columns of the gate tables and the reference statistics (pandas only, no GX)."""

import numpy as np
import pandas as pd

from hypomimia.validation import frames, reference


def _folds(rows):
    return pd.DataFrame(rows, columns=["video_id", "subject_id", "label", "repeat", "fold"])


def test_folds_frame_counts_folds_per_subject_and_classes_per_fold():
    folds = _folds(
        [
            ("a1", "A", "pd", 0, 0),
            ("a2", "A", "pd", 0, 1),  # subject A in two folds
            ("b1", "B", "control", 0, 1),
            ("c1", "C", "pd", 1, 0),  # repeat 1 is its own k-fold
            ("d1", "D", "control", 1, 1),
        ]
    )
    ingested = pd.DataFrame(
        {"video_id": ["a1", "a2", "b1", "c1"], "status": ["accepted"] * 3 + ["quarantined"]}
    )
    tubes = pd.DataFrame({"video_id": ["a1", "b1"], "status": ["accepted", "accepted"]})
    df = frames.folds_frame(folds, ingested, tubes).set_index(["repeat", "video_id"])
    assert df.loc[(0, "a1"), "subject_fold_count"] == 2
    assert df.loc[(0, "b1"), "subject_fold_count"] == 1
    assert df.loc[(0, "a1"), "fold_n_classes"] == 1 and df.loc[(0, "b1"), "fold_n_classes"] == 2
    assert df.loc[(1, "c1"), "subject_fold_count"] == 1
    # repeat 0: overall PD share 2/3, fold 0 all PD -> deviation 1/3; fold 1 half PD -> 1/6
    assert np.isclose(df.loc[(0, "a1"), "fold_pd_share_deviation"], 1 / 3)
    assert np.isclose(df.loc[(0, "b1"), "fold_pd_share_deviation"], 1 / 6)
    assert not df.loc[(1, "c1"), "accepted_in_ingest"] and not df.loc[(1, "d1"), "accepted_in_ingest"]
    assert df.loc[(0, "a1"), "has_tube"] and not df.loc[(0, "a2"), "has_tube"]


def _tube(path, value: int, frames: int = 30):
    np.savez_compressed(path, frames=np.full((frames, 8, 8, 3), value, np.uint8))
    return path.name


def test_leakage_frame_finds_same_bytes_and_near_duplicates_across_folds_only(tmp_path):
    folds = _folds(
        [
            ("x", "X", "pd", 0, 0),
            ("y", "Y", "control", 0, 1),
            ("z", "Z", "pd", 0, 0),
            ("w", "W", "control", 0, 1),
        ]
    )
    ingested = pd.DataFrame(
        {"video_id": ["x", "y", "z", "w"], "sha256": ["h1", "h1", "h2", "h3"], "status": "accepted"}
    )
    tubes = pd.DataFrame(
        {
            "video_id": ["x", "y", "z", "w"],
            "status": "accepted",
            # y is 3 bits from x in another fold with near-identical pixels (a copy); z shares x's fold;
            # w collides with x's pHash but its pixels differ (another video of a similar-looking face)
            "mean_frame_phash": ["00000000000000ff", "00000000000000f8", "00000000000000ff", "00000000000000ff"],
            "tube": [_tube(tmp_path / "x.npz", 100), _tube(tmp_path / "y.npz", 101), _tube(tmp_path / "z.npz", 100),
                     _tube(tmp_path / "w.npz", 160)],
        }
    )  # fmt: skip
    df = frames.leakage_frame(folds, ingested, tubes, tmp_path, max_hamming=4).set_index("video_id")
    assert df.loc["x", "sha256_fold_count"] == 2 and df.loc["z", "sha256_fold_count"] == 1
    assert df.loc["y", "phash_distance_other_folds"] == 3
    assert df.loc["x", "phash_distance_other_folds"] == 0  # w
    assert df.loc["y", "near_duplicate_pixel_diff"] == 1.0  # vs x or z
    assert df.loc["w", "near_duplicate_pixel_diff"] == 60.0
    far = frames.leakage_frame(folds, ingested, tubes, tmp_path, max_hamming=0).set_index("video_id")
    assert np.isnan(far.loc["y", "near_duplicate_pixel_diff"])  # 3 bits: not even a candidate


def test_manifest_frame_flags_label_score_conflicts():
    ingested = pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d", "e", "f"],
            "subject_id": ["S1", "S1", "S2", "S3", "S3", "S4"],
            "label": ["pd", "control", "control", "control", "unknown", "unknown"],
            "updrs_3_2": pd.array([2, 0, 3, None, None, None], dtype="Int64"),
            "hoehn_yahr": [2.0, np.nan, np.nan, 0.0, np.nan, np.nan],
            "status": "accepted",
        }
    )
    df = frames.manifest_frame(ingested).set_index("video_id")
    assert df["label_score_consistent"].to_dict() == {
        "a": True, "b": True, "c": False, "d": True, "e": True, "f": True,
    }  # fmt: skip
    # pd + control is a contradiction; control + unknown is one diagnosis; unknown alone is none
    assert df["subject_n_labels"].to_dict() == {"a": 2, "b": 2, "c": 1, "d": 1, "e": 1, "f": 0}


def test_tube_file_check_reports_what_is_wrong(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(
        good,
        frames=np.zeros((4, 8, 8, 3), np.uint8),
        landmarks=np.zeros((4, 478, 2), np.float32),
        valid=np.ones(4, bool),
    )
    bad = tmp_path / "bad.npz"
    np.savez_compressed(
        bad,
        frames=np.zeros((4, 8, 6, 3), np.uint8),
        landmarks=np.zeros((4, 478, 2), np.float32),
        valid=np.ones(4, bool),
    )
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert frames._tube_file_check(tmp_path, "good.npz", 4) == "ok"
    assert frames._tube_file_check(tmp_path, "good.npz", 5) == "table says 5 frames, file has 4"
    assert "want T x S x S x 3" in frames._tube_file_check(tmp_path, "bad.npz", 4)
    assert frames._tube_file_check(tmp_path, "junk.npz", 4).startswith("unreadable")
    assert frames._tube_file_check(tmp_path, "gone.npz", 4) == "file missing"


def test_reference_histograms_use_fixed_edges_and_count_out_of_range():
    stats = reference._feature_stats(pd.Series([0.5, 0.52, 1.5, -1.0, None]), [0.0, 0.5, 1.0])
    assert stats["count"] == 4 and stats["missing"] == 1
    assert stats["histogram"] == {"edges": [0.0, 0.5, 1.0], "counts": [0, 2], "below": 1, "above": 1}
    assert set(stats["quantiles"]) == {"p5", "p25", "p50", "p75", "p95"}
