"""Probe of single files: facts about good videos, a stable problem string for bad ones."""

import hashlib

import pytest

from hypomimia.data.probe import _mp4_has_moov, probe, sha256_file
from tests.helpers_ingest import encode


def test_good_video_facts(tmp_path):
    path = encode(tmp_path / "v.mp4", 12, fps=10)
    p = probe(path)
    assert p.problem == ""
    assert (p.container.split(",")[0], p.codec, p.width, p.height) == ("mov", "h264", 160, 128)
    assert (p.declared_frames, p.decoded_frames, p.decode_ratio) == (12, 12, 1.0)
    assert p.nominal_fps == 10 and p.real_fps == pytest.approx(10) and not p.vfr
    assert p.duration_s == pytest.approx(1.2)
    assert not p.has_audio and p.rotation == 0
    assert p.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)


@pytest.mark.parametrize("angle", [90, -90, 180])
def test_rotation_metadata_is_reported_and_display_size_follows(tmp_path, angle):
    p = probe(encode(tmp_path / "r.mp4", 4, rotation=angle))
    assert p.rotation == angle
    swapped = abs(angle) == 90
    assert (p.display_width, p.display_height) == ((128, 160) if swapped else (160, 128))


def test_variable_frame_rate_is_measured(tmp_path):
    pts = [0, 33, 66, 166, 199, 232, 332, 365, 398, 498]
    p = probe(encode(tmp_path / "vfr.mp4", len(pts), fps=30, pts_ms=pts))
    assert p.vfr
    assert p.real_fps == pytest.approx(9 / 0.498, rel=0.01)
    assert p.nominal_fps == 30


def test_too_large_is_not_decoded(tmp_path):
    p = probe(encode(tmp_path / "big.mp4", 3, size=(640, 480), flat=True), max_pixels=320 * 240)
    assert (p.width, p.height, p.declared_frames, p.decoded_frames) == (640, 480, 3, 0)


def test_moov_walk(tmp_path):
    whole = encode(tmp_path / "v.mp4", 4)
    assert _mp4_has_moov(whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:100])
    assert not _mp4_has_moov(cut)


def test_folder_is_not_a_video(tmp_path):
    assert probe(tmp_path).problem == "not_a_video"


def test_permission_denied_is_unreadable_file(tmp_path, monkeypatch):
    # chmod 0 does not stop root (CI containers), so simulate the refusal the OS would give.
    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("hypomimia.data.probe.sha256_file", refuse)
    p = probe(encode(tmp_path / "locked.mp4", 2))
    assert (p.problem, p.detail) == ("unreadable_file", "permission denied when reading the file")


def test_unexpected_errors_become_a_reason_not_a_crash(tmp_path, monkeypatch):
    def explode(*args):
        raise RuntimeError("a decoder bug")

    monkeypatch.setattr("hypomimia.data.probe._probe_container", explode)
    p = probe(encode(tmp_path / "v.mp4", 2))
    assert p.problem == "unreadable_codec" and "RuntimeError" in p.detail
    assert p.sha256  # the hash is still known, so duplicates can be traced
