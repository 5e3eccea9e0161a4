"""Ingest on a folder holding every real-world bad input: each file gets its own reason, the good ones pass."""

import json
import os

import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.errors import UserError
from hypomimia.stages.ingest import run
from tests.helpers_ingest import TEST_CFG, build_bad_inputs, encode, write_manifest

# Keys shared by the parametrized tests: built once per module (about 3 s).
EXPECTED = {
    "good_a": "",
    "good_b": "",
    "rotated": "",
    "vfr": "",
    "uhd_4k": "",
    "zero_bytes": "empty_file",
    "truncated": "truncated",
    "truncated_faststart": "truncated",
    "text_as_mp4": "not_a_video",
    "png_as_mp4": "image_not_video",
    "jpeg": "image_not_video",
    "audio_only": "audio_only",
    "raw_codec": "unreadable_codec",
    "corrupt_stream": "unreadable_codec",
    "one_frame": "too_few_frames",
    "too_short": "too_short",
    "too_small": "too_small",
    "uhd_5k": "too_large",
    "missing": "missing_file",
    "good_a_again": "duplicate_content",
    "listed_twice": "duplicate_listing",
    "control_updrs3": "label_score_inconsistent",
    "bad_label": "invalid_row",
}


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs")
    manifest, expected = build_bad_inputs(folder)
    assert expected == EXPECTED, "helper and test disagree on the fixture set"
    return manifest


@pytest.fixture(scope="module")
def ingested(bad_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest_out")
    result = run(TEST_CFG, bad_folder, out)
    table = pd.read_parquet(out / "ingested.parquet").set_index("video_id")
    return result, table, out


@pytest.mark.parametrize("video_id", sorted(EXPECTED))
def test_each_file_gets_its_specific_reason(ingested, video_id):
    _, table, _ = ingested
    row = table.loc[video_id]
    assert row["reason"] == EXPECTED[video_id], row["detail"]
    assert row["status"] == ("quarantined" if EXPECTED[video_id] else "accepted")
    if EXPECTED[video_id]:
        assert row["detail"], "a quarantined video always says why in words"


def test_every_listed_file_is_accounted_for(ingested):
    result, table, out = ingested
    report = json.loads((out / "report.json").read_text())
    assert report["listed"] == len(EXPECTED) == len(table)
    assert report["accepted"] + report["quarantined"] == report["listed"]
    assert (result.accepted, result.quarantined) == (report["accepted"], report["quarantined"])
    assert report["reasons"] == dict(
        pd.Series([r for r in EXPECTED.values() if r]).value_counts().sort_index()
    )
    quarantine = pd.read_csv(out / "quarantine.csv", keep_default_na=False)
    assert sorted(quarantine["video_id"]) == sorted(v for v, r in EXPECTED.items() if r)
    assert list(quarantine.columns) == ["manifest_row", "video_id", "reason", "detail"]


def test_duplicates_point_at_the_first_listing(ingested):
    _, table, _ = ingested
    assert "video_id good_a" in table.loc["good_a_again", "detail"]
    assert table.loc["good_a_again", "sha256"] == table.loc["good_a", "sha256"]
    assert "video_id good_b" in table.loc["listed_twice", "detail"]


def test_rotated_phone_video_reports_rotation_and_display_size(ingested):
    _, table, _ = ingested
    row = table.loc["rotated"]
    assert (row["width"], row["height"]) == (160, 128)
    assert row["rotation"] == 90
    assert (row["display_width"], row["display_height"]) == (128, 160)


def test_variable_frame_rate_is_flagged_with_both_rates(ingested):
    _, table, _ = ingested
    row = table.loc["vfr"]
    assert row["vfr"]
    assert row["nominal_fps"] == 30 and row["real_fps"] == pytest.approx(17.3, abs=0.2)
    assert not table.loc["good_a", "vfr"]


def test_4k_is_accepted_and_5k_is_too_large_under_the_default_limit(ingested):
    _, table, _ = ingested
    assert (table.loc["uhd_4k", "width"], table.loc["uhd_4k", "height"]) == (3840, 2160)
    assert "ingest.max_pixels" in table.loc["uhd_5k", "detail"]


def test_unlisted_files_are_reported_with_safe_names(ingested):
    _, _, out = ingested
    unlisted = pd.read_csv(out / "unlisted.csv")
    assert sorted(unlisted["path"]) == ["not_listed.mp4", "v\\xff_latin1.mp4"]
    assert "not valid UTF-8" in unlisted.set_index("path").loc["v\\xff_latin1.mp4", "note"]


def test_folds_cover_only_accepted_pd_and_control_videos(ingested):
    _, table, out = ingested
    folds = pd.read_parquet(out / "folds.parquet")
    accepted = table[table["status"] == "accepted"]
    assert sorted(folds["video_id"]) == sorted(accepted.index)
    assert (folds.groupby("subject_id")["fold"].nunique() == 1).all()
    counts = json.loads((out / "report.json").read_text())["fold_counts"]
    assert sum(c["pd_videos"] + c["control_videos"] for c in counts) == len(folds)


def test_same_input_gives_byte_identical_outputs(bad_folder, ingested, tmp_path):
    _, _, out = ingested
    run(TEST_CFG, bad_folder, tmp_path)
    for name in ("ingested.parquet", "folds.parquet", "quarantine.csv", "unlisted.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], (
        "temporary files are renamed or removed"
    )


def test_manifest_and_paths_are_not_logged(bad_folder, tmp_path, caplog):
    caplog.set_level("DEBUG", logger="hypomimia")
    run(TEST_CFG.model_copy(update={"workers": 1}), bad_folder, tmp_path)
    text = caplog.text
    assert "quarantined good_a_again" in text
    for name in ("good_a_copy.mp4", "photo_renamed", str(bad_folder.parent)):
        assert name not in text


def test_cli_prints_the_summary(bad_folder, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("ingest:\n  folds: 2\n  min_frames: 4\n  min_duration_s: 0.5\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(_app, ["ingest", str(bad_folder), "--out", str(out), "--params", str(params)])
    assert res.exit_code == 0, res.output
    assert "accepted 5 + quarantined 18 = listed 23" in res.output
    assert "unreadable_codec" in res.output


def test_too_few_subjects_for_the_folds_ingests_without_folds_after_probing(tmp_path):
    # Folds are a training concern: the batch is probed and accounted for, folds.parquet is empty,
    # report.json says why (training then refuses it, see tests/data/test_monitor_phantom.py).
    for i in range(2):
        encode(tmp_path / f"v{i}.mp4", 12, seed=i)
    rows = [
        {"video_id": "v0", "path": "v0.mp4", "subject_id": "S0", "label": "pd"},
        {"video_id": "v1", "path": "v1.mp4", "subject_id": "S1", "label": "control"},
        {"video_id": "v2", "path": "gone.mp4", "subject_id": "S2", "label": "pd"},
        {"video_id": "v3", "path": "gone.mp4", "subject_id": "S3", "label": "control"},
    ]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    result = run(TEST_CFG, manifest, tmp_path / "out")
    assert (result.accepted, result.quarantined, result.fold_videos) == (2, 2, 0)
    assert "1 pd, 1 control" in result.folds_note
    assert pd.read_parquet(tmp_path / "out" / "folds.parquet").empty
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["folds_note"] == result.folds_note


def test_video_root_and_absolute_paths(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(4):
        encode(videos / f"v{i}.mp4", 12, seed=i)
    rows = [
        {"video_id": f"v{i}", "path": f"v{i}.mp4", "subject_id": f"S{i}", "label": ("pd", "control")[i % 2]}
        for i in range(3)
    ] + [{"video_id": "v3", "path": str(videos / "v3.mp4"), "subject_id": "S3", "label": "control"}]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    result = run(TEST_CFG, manifest, tmp_path / "out", video_root=videos)
    assert (result.accepted, result.unlisted) == (4, 0)
    with pytest.raises(UserError, match="video root is not a folder"):
        run(TEST_CFG, manifest, tmp_path / "out", video_root=tmp_path / "nope")


def test_macos_decomposed_file_names_match_composed_manifest_paths(tmp_path):
    decomposed = "vide\u0301o_{}.mp4"  # how macOS stores "vidéo" on disk
    rows = []
    for i in range(4):
        encode(tmp_path / decomposed.format(i), 12, seed=i)
        rows.append({"video_id": f"v{i}", "path": f"vidéo_{i}.mp4", "subject_id": f"S{i}", "label": "pd"})
    rows[1]["label"] = rows[3]["label"] = "control"
    result = run(TEST_CFG, write_manifest(tmp_path / "manifest.csv", rows), tmp_path / "out")
    assert (result.accepted, result.unlisted) == (4, 0)
