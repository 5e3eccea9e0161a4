"""The inference wing without a server: the endpoint's tube is byte-identical to the facetubes stage's
(run as users run it, the CLI in its own process, which also must print no native log noise), the
calibrated answer and its abstain band, the model summary, and the API-key middleware failing closed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from hypomimia.faces.tube import save_tube
from hypomimia.inference import predictor as pr
from tests.helpers_facetubes import make_ingested, native_noise
from tests.helpers_serving import REPO, TUBES


@pytest.fixture(scope="module")
def served(served_model_dir):
    return pr.load_served_model(served_model_dir)


def test_endpoint_tube_is_byte_identical_to_the_facetubes_stage_and_the_cli_is_quiet(served, clip, tmp_path):
    ingest = make_ingested(tmp_path / "ingest", {"visit": clip})
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"facetubes": TUBES.model_dump(mode="json")}))
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    env.pop("HYPOMIMIA_NATIVE_LOGS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "hypomimia", "facetubes", "--params", str(params), "--ingest", str(ingest),
         "--out", str(tmp_path / "tubes")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert not native_noise(output), output[-2000:]

    table = pd.read_parquet(tmp_path / "tubes" / "tubes.parquet")
    stage_file = tmp_path / "tubes" / table.loc[0, "tube"]
    sha = table.loc[0, "sha256"]
    tube = pr.face_tube(clip, served)  # what /predict does
    save_tube(tmp_path / "endpoint.npz", tube, sha)
    assert (tmp_path / "endpoint.npz").read_bytes() == stage_file.read_bytes()

    # Drift monitoring scores the stage's tube with the same arithmetic as the endpoint, so the
    # reference window's probabilities and the prediction log's are the same quantity.
    from hypomimia.monitoring.scoring import Scorer

    endpoint = pr.answer(served, pr.forward(served, pr.clip_frames(tube.frames, served)))
    monitored, clips = Scorer(served).score(table.assign(tube=str(stage_file)))
    assert monitored.loc[0, "p_pd"] == pytest.approx(endpoint["p_pd"], abs=1e-9)
    assert monitored.loc[0, "label"] == endpoint["label"]
    assert clips["p"].tolist() == pytest.approx([c["p_pd"] for c in endpoint["clips"]], abs=1e-9)


def test_answer_is_calibrated_and_abstains_inside_the_band(served):
    def outputs(margins):
        return np.column_stack([np.array(margins, np.float32), np.zeros((len(margins), 4), np.float32)])

    t, band = served.temperature, served.abstain_band
    sure_pd = pr.answer(served, outputs([4.0 * t, 6.0 * t]))
    assert sure_pd["label"] == "pd" and sure_pd["p_pd"] == pytest.approx(
        np.mean(1 / (1 + np.exp([-4.0, -6.0])))
    )
    assert pr.answer(served, outputs([-5.0 * t, -5.0 * t]))["label"] == "control"
    edge = np.log((0.5 + band / 2) / (0.5 - band / 2)) * t  # p = 0.5 + band/2: inside the band
    assert pr.answer(served, outputs([edge, edge]))["label"] == "uncertain"


def test_clips_are_the_evaluation_clips(served):
    frames = np.arange(50, dtype=np.uint8)[:, None, None, None] * np.ones((1, 112, 112, 3), np.uint8)
    clips = pr.clip_frames(frames, served)
    span = (served.frames - 1) * served.stride + 1
    assert clips.shape == (served.clips_per_video, served.frames, 112, 112, 3)
    assert clips[0, 0, 0, 0, 0] == 0 and clips[-1, -1, 0, 0, 0] == 49  # the last clip ends on the last frame
    assert span <= 50
    out = pr.forward(served, clips)
    assert out.shape == (served.clips_per_video, 1 + served.embed_dim) and out.dtype == np.float32


def test_model_summary_and_clear_errors(served, served_model_dir, tmp_path):
    card = pr.model_summary(served)
    assert card["medical_device"] is False and card["input"]["face_tubes"]["size"] == 112
    from hypomimia.errors import UserError

    with pytest.raises(UserError, match="no model at"):
        pr.resolve_model(str(tmp_path))
    (tmp_path / "m").mkdir()
    for f in ("model.pt", "metrics.json"):
        (tmp_path / "m" / f).write_bytes((served_model_dir / f).read_bytes())
    meta = json.loads((served_model_dir / "metadata.json").read_text())
    meta["face_tubes"] = None
    (tmp_path / "m" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no face_tubes params"):
        pr.load_served_model(tmp_path / "m")


def test_api_key_middleware_fails_closed_and_compares_every_key(monkeypatch):
    sys.path.insert(0, str(REPO))
    from serving import middleware

    calls = []
    real = middleware.hmac.compare_digest
    monkeypatch.setattr(middleware.hmac, "compare_digest", lambda a, b: calls.append(b) or real(a, b))

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})

    def status(keys, headers):
        sent = []

        async def send(msg):
            sent.append(msg)

        scope = {"type": "http", "path": "/predict", "headers": headers}
        asyncio.run(middleware.ApiKeyMiddleware(app, keys)(scope, None, send))
        return sent[0]["status"]

    assert status([], [(b"x-api-key", b"")]) == 401  # no key configured: nothing gets in
    assert status([], [(b"x-api-key", b"anything")]) == 401
    assert status([b"k1", b"k2"], [(b"x-api-key", b"k1")]) == 200
    assert calls[-2:] == [b"k1", b"k2"]  # no early exit on the first match
    assert status([b"k1"], [(b"authorization", b"Bearer k1")]) == 200
    assert status([b"k1"], [(b"authorization", b"Bearer k")]) == 401


def test_k8s_manifests_probe_the_real_routes_and_request_resources():
    docs = {p.stem: yaml.safe_load(p.read_text()) for p in (REPO / "serving" / "k8s").glob("*.yaml")}
    assert {d["kind"] for d in docs.values()} == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = docs["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert (
        pod["readinessProbe"]["httpGet"]["path"] == "/readyz"
        and pod["livenessProbe"]["httpGet"]["path"] == "/livez"
    )
    assert pod["resources"]["requests"]["cpu"] and pod["resources"]["requests"]["memory"]
    assert docs["hpa"]["spec"]["scaleTargetRef"]["name"] == docs["deployment"]["metadata"]["name"]
    assert docs["service"]["spec"]["selector"] == docs["deployment"]["spec"]["selector"]["matchLabels"]
