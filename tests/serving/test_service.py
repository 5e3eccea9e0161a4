"""The endpoint, driven by real HTTP requests against one served instance: answers, every refusal
with its status and reason, health/metrics/model routes, and the prediction log written per request."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import socket
import time

import httpx
import numpy as np
import pytest

from hypomimia.inference import prediction_log as plog
from tests.helpers_ingest import encode, encode_audio
from tests.helpers_serving import KEYS

AUTH = {"X-API-Key": KEYS[1]}


def post(server, path, files, headers=AUTH, timeout=60, **kw):
    return httpx.post(server.url + path, files=files, headers=headers, timeout=timeout, **kw)


def video(path, ctype="video/mp4"):
    return {"video": (path.name, path.read_bytes(), ctype)}


def test_predict_answers_a_face_clip_with_a_calibrated_probability(server, clip):
    r = post(server, "/predict", video(clip), data={"subject_ref": "pt-0042", "session": "visit-1"},
             headers={"Authorization": f"Bearer {KEYS[0]}"})  # fmt: skip
    assert r.status_code == 200, r.text
    out = r.json()
    assert 0.0 <= out["p_pd"] <= 1.0 and out["calibrated"] is True
    assert out["label"] in {"pd", "control", "uncertain"}
    lo, hi = out["uncertainty"]["abstain_band"]
    assert (out["label"] == "uncertain") == (lo < out["p_pd"] < hi)
    assert len(out["clips"]) == 2 and out["p_pd"] == pytest.approx(np.mean([c["p_pd"] for c in out["clips"]]))
    assert out["tube_quality"]["face_found_ratio"] > 0.9 and out["tube_quality"]["n_frames"] == 50
    assert out["model"]["name"] == "hypomimia-i3d" and "local" in out["model"]["note"]
    assert len(out["request_id"]) == 32 and out["latency_ms"] > 0


@pytest.mark.realfaces
def test_predict_answers_real_face_clips(server, realfaces_dir):
    for name in ("feat_single_face.mp4", "lp_d20.mp4"):
        r = post(server, "/predict", video(realfaces_dir / name))
        assert r.status_code == 200, (name, r.text)
        assert r.json()["calibrated"] and r.json()["tube_quality"]["face_found_ratio"] > 0.9


def test_predict_tube_takes_a_facetubes_npz(server, clip, tmp_path):
    from hypomimia.faces.tube import extract_tube, save_tube
    from tests.helpers_serving import TUBES

    tube = extract_tube(clip, TUBES)
    save_tube(tmp_path / "t.npz", tube, "0" * 64)
    r = post(
        server,
        "/predict_tube",
        {"tube": ("t.npz", (tmp_path / "t.npz").read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    direct = post(server, "/predict", video(clip)).json()
    assert r.json()["p_pd"] == pytest.approx(direct["p_pd"], abs=1e-6)  # same tube -> same answer
    bad = np.zeros((30, 64, 64, 3), np.uint8)
    np.save(tmp_path / "bad.npy", bad)
    r = post(
        server,
        "/predict_tube",
        {"tube": ("bad.npy", (tmp_path / "bad.npy").read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 422 and r.json()["reason"] == "bad_tube"


def test_explain_returns_an_overlay_and_region_shares(server, clip):
    r = post(server, "/explain", video(clip))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["overlay_gif"].startswith("data:image/gif;base64,")
    assert set(out["regions"]["shares"]) >= {"eyes", "mouth", "nose"}


def test_health_metrics_and_page_are_open_model_card_is_not(server):
    for path in ("/livez", "/readyz", "/metrics", "/"):
        assert httpx.get(server.url + path).status_code == 200, path
    assert "<script src=" not in httpx.get(server.url + "/").text  # self-contained: nothing from a CDN
    assert httpx.get(server.url + "/model").status_code == 401
    card = httpx.get(server.url + "/model", headers=AUTH).json()
    assert card["medical_device"] is False and "not" in card["intended_use"]
    assert "test_subject_auroc_ci95" in card["metrics"] and card["calibration"]["temperature"] > 0
    assert card["input"]["face_tubes"]["max_seconds"] == 4.0


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer key-on"}, {"Authorization": "Basic key-one"}],
)
def test_401_without_a_valid_key(server, clip, headers):
    r = post(server, "/predict", video(clip), headers=headers)
    assert r.status_code == 401 and r.json()["reason"] == "unauthorized"


def test_413_over_the_body_limit_with_and_without_content_length(server):
    big = b"\0" * (3 * 2**20)
    r = post(server, "/predict", {"video": ("big.mp4", big, "video/mp4")})
    assert r.status_code == 413 and r.json()["reason"] == "too_large"

    def chunks():
        for _ in range(48):
            yield b"\0" * 65536

    r = httpx.post(server.url + "/predict", content=chunks(), timeout=30,
                   headers={**AUTH, "content-type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert r.status_code == 413


def test_not_a_video_is_refused_with_ingest_reasons(server, tmp_path):
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = f.read()
    audio = encode_audio(tmp_path / "voice.m4a").read_bytes()
    cases = {
        "notes.txt": (b"patient notes, not a video\n" * 20, "text/plain", "not_a_video"),
        "photo.mp4": (photo, "video/mp4", "image_not_video"),
        "empty.mp4": (b"", "video/mp4", "empty_file"),
        "voice.mp4": (audio, "video/mp4", "audio_only"),
    }
    for name, (data, ctype, reason) in cases.items():
        r = post(server, "/predict", {"video": (name, data, ctype)})
        assert r.status_code in (415, 422), (name, r.status_code, r.text)
        assert r.json()["reason"] == reason, (name, r.text)


def test_a_video_without_a_face_is_refused_no_face(server, tmp_path, realfaces_dir_or_none):
    if realfaces_dir_or_none is not None:
        clip = realfaces_dir_or_none / "feat_no_face.mp4"
    else:
        clip = encode(tmp_path / "wall.mp4", 30, fps=15, size=(160, 160), flat=True)
    r = post(server, "/predict", video(clip))
    assert r.status_code == 422 and r.json()["reason"] == "no_face", r.text


def test_too_long_and_too_small_videos_are_refused(server, tmp_path):
    long_clip = encode(tmp_path / "long.mp4", 90, fps=10, size=(160, 160), flat=True)  # 9 s > 8 s limit
    r = post(server, "/predict", video(long_clip))
    assert r.status_code == 422 and r.json()["reason"] == "too_long", r.text
    small = encode(tmp_path / "small.mp4", 20, fps=10, size=(96, 96), flat=True)
    r = post(server, "/predict", video(small))
    assert r.status_code == 422 and r.json()["reason"] == "too_small", r.text


def test_wrong_field_and_url_strings_get_400_and_nothing_is_fetched(server, clip):
    r = post(server, "/predict", {"clip": (clip.name, clip.read_bytes(), "video/mp4")})
    assert r.status_code == 400 and r.json()["reason"] == "unknown_field"
    r = httpx.post(server.url + "/predict", headers=AUTH, files={"note": ("n.txt", b"x", "text/plain")})
    assert r.status_code == 400
    r = httpx.post(server.url + "/predict", headers=AUTH, json={"video": "x"})
    assert r.status_code == 400 and r.json()["reason"] == "bad_form"

    hits = []
    with socket.socket() as trap:  # a URL the server would fetch, if it fetched
        trap.bind(("127.0.0.1", 0))
        trap.listen()
        trap.settimeout(0.5)
        port = trap.getsockname()[1]
        for url in (f"http://127.0.0.1:{port}/clip.mp4", "https://example.org/clip.mp4"):
            r = httpx.post(server.url + "/predict", headers=AUTH, files={"video": (None, url)})
            assert r.status_code == 400 and r.json()["reason"] == "url_not_allowed", r.text
        r = httpx.post(server.url + "/predict", headers=AUTH, data={"video": url})  # urlencoded
        assert r.status_code == 400 and r.json()["reason"] == "bad_form"
        with contextlib.suppress(TimeoutError):
            hits.append(trap.accept())
    assert hits == []


def test_bad_subject_ref_is_refused_not_logged(server, clip):
    r = post(server, "/predict", video(clip), data={"subject_ref": "John Smith"})
    assert r.status_code == 422 and r.json()["reason"] == "bad_subject_ref"


def test_429_over_max_concurrency_and_504_past_the_timeout(server, clip):
    slow = {**AUTH, "x-test-delay-s": "2"}
    with cf.ThreadPoolExecutor(6) as pool:
        codes = list(
            pool.map(lambda _: post(server, "/predict", video(clip), headers=slow).status_code, range(6))
        )
    assert codes.count(429) >= 1 and set(codes) <= {200, 429}, codes
    t0 = time.perf_counter()
    r = post(server, "/predict", video(clip), headers={**AUTH, "x-test-delay-s": "30"})
    assert r.status_code == 504 and time.perf_counter() - t0 < 15


def test_metrics_count_outcomes_and_abstentions(server, clip):
    post(server, "/predict", video(clip))
    text = httpx.get(server.url + "/metrics").text
    assert 'hypomimia_requests_total{endpoint="predict",outcome="refused",reason="no_face"}' in text
    assert "hypomimia_abstentions_total" in text and "hypomimia_latency_seconds_bucket" in text


def test_prediction_log_has_one_record_per_request_and_no_phi(server, clip):
    r = post(server, "/predict", video(clip), data={"subject_ref": "pt-0007", "session": "2026-12-01"})
    assert r.status_code == 200, r.text
    assert post(server, "/predict", {"video": ("e.mp4", b"", "video/mp4")}).status_code == 415
    deadline = time.time() + 5
    while time.time() < deadline:
        recs = plog.read(server.store)
        if any(r.subject_ref == "pt-0007" for r in recs):
            break
        time.sleep(0.1)
    mine = [r for r in recs if r.subject_ref == "pt-0007"]
    assert len(mine) == 1
    rec = mine[0]
    assert rec.outcome in ("ok", "uncertain") and rec.session == "2026-12-01"
    assert rec.model_name == "hypomimia-i3d" and rec.n_clips == 2 and rec.latency_ms > 0
    assert rec.tube_quality["face_found_ratio"] > 0.9 and len(rec.embedding) > 0
    refused = [r for r in recs if r.outcome == "refused"]
    assert "empty_file" in {r.reason for r in refused} and all(r.status_code >= 400 for r in refused)
    raw = "".join(p.read_text() for p in server.store.glob("*.jsonl"))
    assert clip.name not in raw and "127.0.0.1" not in raw and "John Smith" not in raw
    frame = plog.to_frame(recs)
    assert {"q_face_found_ratio", "p_pd", "outcome"} <= set(frame.columns)
    assert rec.audio == plog.AudioFacts(has_audio=False)  # a silent clip logs that it had no sound


def test_the_prediction_log_holds_the_uploads_sound(server, clip, tmp_path):
    """/predict logs the upload's audio facts (issue 25: audio drift): the probe's stream facts and
    the voice stage's SNR, high band, intensity and F0 SD, measured with the answer."""
    from hypomimia.data.video import AudioTrack, replace_audio
    from tests.helpers_voice import vowel

    sound = np.zeros(2 * 16000)
    sound[8000:24000] = vowel(16000, seconds=1.0, f0_hz=200.0, vibrato_st=0.0, rms_db=70.0)
    sound += 1e-4 * np.random.default_rng(0).standard_normal(len(sound))  # a quiet room, about 45 dB below
    pcm = np.round(sound * 32768).astype(np.int16)
    speaking = replace_audio(clip, tmp_path / "speaking.mp4", AudioTrack(pcm, 16000))
    r = post(server, "/predict", video(speaking), data={"subject_ref": "pt-0025"})
    assert r.status_code == 200, r.text
    rec = next(r for r in plog.read(server.store) if r.subject_ref == "pt-0025")
    audio = rec.audio
    assert audio.has_audio and (audio.codec, audio.sample_rate, audio.channels) == ("aac", 16000, 1)
    assert audio.voice_status == "measured" and audio.f0_mean_hz == pytest.approx(200.0, rel=0.03)
    assert (
        audio.snr_db > 30.0 and audio.loudness_lufs < 0 and audio.intensity_db == pytest.approx(70.0, abs=1.5)
    )


def test_server_log_has_no_native_noise_file_names_or_client_addresses(server, clip):
    text = server.log_file.read_text(errors="replace")
    assert "W0000" not in text and "GetPrototype" not in text and "inference_feedback_manager" not in text
    assert clip.name not in text
    assert "127.0.0.1:" not in text.split("listening on")[-1].split("\n", 1)[-1]
    assert "POST" in text or "path=/predict" in text  # the access log itself is still there


def test_batched_concurrent_requests_all_answer(server, clip):
    with cf.ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda _: post(server, "/predict", video(clip)), range(3)))
    assert [r.status_code for r in rs] == [200, 200, 200]
    assert len({round(r.json()["p_pd"], 9) for r in rs}) == 1  # batching does not change the answer
