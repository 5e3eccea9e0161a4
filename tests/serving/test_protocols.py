"""The hospital's and the platform's protocols on the running endpoint (the session's one server):
FHIR answers and OperationOutcomes parsed back with fhir.resources (R4B), and the Open Inference
Protocol driven by NVIDIA's own client (tritonclient.http), agreeing with /predict_tube and behind
the same API keys."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest

from hypomimia.inference import fhir
from hypomimia.inference import prediction_log as plog
from tests.helpers_serving import KEYS

AUTH = {"X-API-Key": KEYS[0]}
FHIR = {**AUTH, "Accept": fhir.FHIR_JSON}
MODEL = "hypomimia-i3d"


def logged(server, request_id: str, timeout: float = 5.0) -> plog.PredictionRecord:
    deadline = time.time() + timeout
    while True:
        found = [r for r in plog.read(server.store) if r.request_id == request_id]
        if found or time.time() > deadline:
            assert found, f"no prediction-log record for {request_id}"
            return found[0]
        time.sleep(0.1)


def outcome(r: httpx.Response):
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    assert r.headers["content-type"] == fhir.FHIR_JSON, r.text
    return OperationOutcome.model_validate_json(r.content)


# -- FHIR ---------------------------------------------------------------------------------------------
@pytest.mark.realfaces
def test_predict_answers_a_real_clip_with_a_fhir_bundle(server, realfaces_dir):
    from fhir.resources.R4B.bundle import Bundle

    clip = realfaces_dir / "feat_single_face.mp4"
    r = httpx.post(server.url + "/predict", headers=FHIR, timeout=60,
                   files={"video": (clip.name, clip.read_bytes(), "video/mp4")},
                   data={"subject_ref": "pt-fhir-1", "session": "visit-3"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == fhir.FHIR_JSON
    bundle = Bundle.model_validate_json(r.content)
    by_type = {e.resource.get_resource_type(): e for e in bundle.entry}
    assert bundle.type == "collection"
    assert set(by_type) == {"RiskAssessment", "Device", "DocumentReference", "Provenance"}
    risk, prov = by_type["RiskAssessment"].resource, by_type["Provenance"].resource
    device, card = by_type["Device"].resource, by_type["DocumentReference"].resource
    assert [(c.system, c.code) for c in risk.meta.security] == [(fhir.AIAST["system"], "AIAST")]
    assert risk.subject.identifier.value == "pt-fhir-1" and risk.encounter.identifier.value == "visit-3"
    pred = risk.prediction[0]
    label = pred.qualitativeRisk.coding[0].code
    assert label in fhir.LABELS and pred.extension[0].valueBoolean is (label == "uncertain")
    assert risk.performer.reference == by_type["Device"].fullUrl and device.deviceName[0].name == MODEL
    assert prov.target[0].reference == by_type["RiskAssessment"].fullUrl
    assert prov.agent[0].who.reference == by_type["Device"].fullUrl
    request_id = bundle.identifier.value
    assert {e.what.identifier.value for e in prov.entity if e.what.identifier} >= {request_id}

    # The Bundle says what the JSON answer and the prediction log say for the same request.
    rec = logged(server, request_id)
    assert rec.subject_ref == "pt-fhir-1" and rec.label == label
    assert float(pred.probabilityDecimal) == pytest.approx(rec.p_pd, abs=1e-12)
    card_url = card.content[0].attachment.url
    assert card_url == server.url + "/model"
    assert httpx.get(card_url, headers=AUTH).json()["name"] == MODEL  # the link works (with the key)


def test_refusals_become_operation_outcomes_when_fhir_is_asked_for(server):
    video = {"video": ("e.mp4", b"", "video/mp4")}
    r = httpx.post(server.url + "/predict", headers={"Accept": fhir.FHIR_JSON}, files=video)  # no key
    issue = outcome(r).issue[0]
    assert r.status_code == 401 and issue.code == "login" and issue.details.coding[0].code == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")

    r = httpx.post(server.url + "/predict", headers=FHIR, files=video)  # the API's own refusal
    out = outcome(r)
    assert r.status_code == 415 and out.issue[0].details.coding[0].code == "empty_file"
    assert out.id and out.issue[0].diagnostics.startswith("upload a video")

    r = httpx.post(server.url + "/predict", headers=FHIR, files=video, data={"subject_ref": "John Smith"})
    assert r.status_code == 422 and outcome(r).issue[0].code == "value"

    r = httpx.post(server.url + "/predict", headers=FHIR, files={"clip": ("c.mp4", b"x", "video/mp4")})
    assert r.status_code == 400 and outcome(r).issue[0].details.coding[0].code == "unknown_field"

    r = httpx.post(server.url + "/predict?_format=json", headers=AUTH,
                   files={"video": ("big.mp4", b"\0" * (3 * 2**20), "video/mp4")})  # fmt: skip
    assert r.status_code == 413 and outcome(r).issue[0].code == "too-long"

    buf = io.BytesIO()
    np.save(buf, np.zeros((30, 64, 64, 3), np.uint8))
    r = httpx.post(server.url + "/predict_tube", headers=FHIR,
                   files={"tube": ("t.npy", buf.getvalue(), "application/octet-stream")})  # fmt: skip
    assert r.status_code == 422 and outcome(r).issue[0].details.coding[0].code == "bad_tube"

    r = httpx.post(server.url + "/predict", headers=AUTH, files=video)  # no Accept: plain JSON, as before
    assert r.status_code == 415 and r.json()["reason"] == "empty_file"


# -- Open Inference Protocol (tritonclient) -----------------------------------------------------------
@pytest.fixture(scope="module")
def triton(server):
    tc = pytest.importorskip("tritonclient.http")
    client = tc.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=60)
    yield client
    client.close()


def a_tube(frames: int) -> np.ndarray:
    """A deterministic T x 112 x 112 x 3 tube (the served model's side): moving colour ramps."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(112), np.arange(112), indexing="ij")
    rgb = np.stack([(x + 3 * t) % 256, (y * 2 + t) % 256, (x + y + 5 * t) % 256], axis=-1)
    return rgb.astype(np.uint8)


def predict_tube(server, tube: np.ndarray) -> dict:
    buf = io.BytesIO()
    np.save(buf, tube)
    r = httpx.post(server.url + "/predict_tube", headers=AUTH, timeout=60,
                   files={"tube": ("t.npy", buf.getvalue(), "application/octet-stream")})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def test_tritonclient_sees_a_live_ready_model_with_its_metadata(server, triton):
    assert triton.is_server_live(headers=AUTH) and triton.is_server_ready(headers=AUTH)
    assert triton.is_model_ready(MODEL, headers=AUTH)
    assert not triton.is_model_ready("another-model", headers=AUTH)
    assert "binary_tensor_data" in triton.get_server_metadata(headers=AUTH)["extensions"]
    meta = triton.get_model_metadata(MODEL, headers=AUTH)
    assert meta["name"] == MODEL and meta["platform"] == "pytorch"
    assert meta["inputs"] == [{"name": "tube", "datatype": "UINT8", "shape": [-1, 112, 112, 3]}]
    assert {o["name"]: o["datatype"] for o in meta["outputs"]} == {
        "p_pd": "FP64",
        "label": "BYTES",
        "embedding": "FP32",
    }


def test_tritonclient_infer_gives_predict_tubes_answer_binary_and_json(server, triton):
    import tritonclient.http as tc

    emb_dim = triton.get_model_metadata(MODEL, headers=AUTH)["outputs"][2]["shape"][0]
    for frames, binary in ((50, True), (10, False)):  # JSON numbers are ~4x the bytes: a shorter tube
        tube = a_tube(frames)
        inp = tc.InferInput("tube", list(tube.shape), "UINT8")
        inp.set_data_from_numpy(tube, binary_data=binary)
        outputs = None if binary else [tc.InferRequestedOutput(n, binary_data=False) for n in ("p_pd", "label", "embedding")]  # fmt: skip
        # a copy: tritonclient writes Inference-Header-Content-Length into the dict it is given
        result = triton.infer(MODEL, [inp], outputs=outputs, headers={**AUTH}, request_id=f"t{frames}",
                              parameters={"subject_ref": f"pt-oip-{frames}"})  # fmt: skip
        direct = predict_tube(server, tube)
        assert result.as_numpy("p_pd")[0] == pytest.approx(direct["p_pd"], abs=1e-6)
        label = result.as_numpy("label")[0]
        assert (label.decode() if isinstance(label, bytes) else label) == direct["label"]
        response = result.get_response()
        assert response["id"] == f"t{frames}" and response["model_name"] == MODEL
        rec = logged(server, response["parameters"]["request_id"])
        assert rec.endpoint == "v2_infer" and rec.subject_ref == f"pt-oip-{frames}"
        assert result.as_numpy("embedding").shape == (emb_dim,)
        assert result.as_numpy("embedding").tolist() == pytest.approx(rec.embedding, abs=1e-6)


def test_v2_needs_the_api_key(server, triton):
    from tritonclient.utils import InferenceServerException

    assert not triton.is_server_live()  # 401 -> not live, as far as the client can tell
    for call in (
        lambda h: triton.get_model_metadata(MODEL, headers=h),
        lambda h: triton.get_server_metadata(headers=h),
    ):
        with pytest.raises(InferenceServerException) as e:
            call({"X-API-Key": "wrong"})
        assert e.value.status() == "401" and "API key" in e.value.message()
    r = httpx.get(server.url + "/v2/health/live")
    assert r.status_code == 401 and r.json()["reason"] == "unauthorized"
    r = httpx.get(server.url + "/v2/health/live", headers={"Authorization": f"Bearer {KEYS[1]}"})
    assert r.status_code == 200 and r.json() == {"live": True}


def test_v2_refuses_like_predict_tube(server, triton):
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException

    def infer(tube, datatype="UINT8", model=MODEL):
        inp = tc.InferInput("tube", list(tube.shape), datatype)
        inp.set_data_from_numpy(tube)
        with pytest.raises(InferenceServerException) as e:
            triton.infer(model, [inp], headers={**AUTH})
        return e.value

    e = infer(np.zeros((30, 64, 64, 3), np.uint8))  # the wrong side: /predict_tube's reason
    assert e.status() == "422" and "112 x 112" in e.message()
    assert infer(a_tube(3)).status() == "422"  # too few frames
    assert infer(np.zeros((10, 112, 112, 3), np.float32), "FP32").status() == "400"
    assert infer(a_tube(10), model="other").status() == "404"
    r = httpx.post(server.url + f"/v2/models/{MODEL}/infer", headers=AUTH, content=b"{not json")
    assert r.status_code == 400 and r.json()["reason"] == "bad_inference_request" and r.json()["fix"]
