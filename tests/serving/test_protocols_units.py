"""The protocol modules without a server: Open Inference Protocol requests as tritonclient writes them
(JSON and binary tensors) and answers tritonclient reads back, every malformed request refused with a
clear error; FHIR Bundles and OperationOutcomes that fhir.resources (R4B) parses back field by field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hypomimia.inference import fhir, oip

ANSWER = {
    "p_pd": 0.7123456789012345, "label": "pd", "calibrated": True,
    "uncertainty": {"clip_p_sd": 0.01, "clip_p_range": [0.70, 0.72], "abstain_band": [0.45, 0.55]},
    "clips": [{"index": 0, "p_pd": 0.70}, {"index": 1, "p_pd": 0.72}], "tube_quality": {"n_frames": 50},
    "model": {"name": "hypomimia-i3d", "version": "3", "alias": "champion", "note": ""},
    "data_version": "dvc-md5-abc", "request_id": "0123456789abcdef0123456789abcdef", "latency_ms": 12.5,
}  # fmt: skip


def triton_request(
    tensor: np.ndarray, binary: bool, outputs=None, parameters=None
) -> tuple[bytes, str | None]:
    """The exact body (and binary header length) tritonclient.http sends for one UINT8 input 'tube'."""
    from tritonclient.http import InferInput
    from tritonclient.http._utils import _get_inference_request

    inp = InferInput("tube", list(tensor.shape), "UINT8")
    inp.set_data_from_numpy(tensor, binary_data=binary)
    body, size = _get_inference_request([inp], "req-1", outputs, 0, False, False, 0, None, parameters)
    return (body if isinstance(body, bytes) else body.encode()), (None if size is None else str(size))


@pytest.mark.parametrize("binary", [True, False])
def test_oip_reads_the_tube_tritonclient_sends(binary):
    tube = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    body, header = triton_request(tube, binary, parameters={"subject_ref": "pt-0042"})
    assert (header is not None) == binary
    req = oip.parse_infer_request(body, header)
    assert req.id == "req-1" and oip.text_parameter(req, "subject_ref") == "pt-0042"
    got = oip.tube_input(req)
    assert got.dtype == np.uint8 and np.array_equal(got, tube)
    nested = json.dumps(
        {"inputs": [{"name": "tube", "datatype": "UINT8", "shape": [3, 4, 4, 3], "data": tube.tolist()}]}
    )
    assert np.array_equal(oip.tube_input(oip.parse_infer_request(nested.encode())), tube)  # nested JSON too


@pytest.mark.parametrize("binary_out", [True, False])
def test_oip_answers_tritonclient_reads_back(binary_out):
    from tritonclient.http import InferRequestedOutput, InferResult

    embedding = [0.25, -1.5, 3.0]
    outputs = (
        None
        if binary_out
        else [InferRequestedOutput(n, binary_data=False) for n in ("p_pd", "label", "embedding")]
    )
    body, header = triton_request(np.zeros((1, 2, 2, 3), np.uint8), True, outputs=outputs)
    req = oip.parse_infer_request(body, header)
    data, headers = oip.encode_infer_response(req, oip.answer_outputs(ANSWER, embedding), model_name="m",
                                              model_version="3", parameters={"request_id": "r"})  # fmt: skip
    length = headers.get(oip.BINARY_HEADER.lower())
    assert (length is not None) == binary_out
    result = InferResult.from_response_body(data, header_length=None if length is None else int(length))
    assert result.as_numpy("p_pd")[0] == ANSWER["p_pd"]  # FP64: the answer's float, bit for bit
    assert result.as_numpy("label")[0] in (b"pd", "pd")
    assert result.as_numpy("embedding").tolist() == embedding
    assert result.get_response()["model_version"] == "3" and result.get_response()["id"] == "req-1"
    ours = oip.decode_infer_response(data, length)
    assert ours["label"] == ["pd"] and ours["p_pd"][0] == ANSWER["p_pd"]


def test_oip_asks_for_one_output_only():
    from tritonclient.http import InferRequestedOutput

    body, header = triton_request(
        np.zeros((1, 2, 2, 3), np.uint8), True, outputs=[InferRequestedOutput("p_pd")]
    )
    data, headers = oip.encode_infer_response(oip.parse_infer_request(body, header),
                                              oip.answer_outputs(ANSWER, [0.0]), model_name="m", model_version=None)  # fmt: skip
    assert list(oip.decode_infer_response(data, headers.get(oip.BINARY_HEADER.lower()))) == ["p_pd"]


def _req(inputs, **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def _binary(inputs, blob: bytes) -> tuple[bytes, str]:
    """A binary-extension body: the JSON header, then ``blob``; and the header's length."""
    head = _req(inputs)
    return head + blob, str(len(head))


TUBE = {"name": "tube", "datatype": "UINT8", "shape": [1, 1, 1, 3]}


@pytest.mark.parametrize(
    ("body", "header", "says"),
    [
        (b"not json", None, "not JSON"),
        (_req([]), None, "no 'inputs'"),
        (_req([{**TUBE, "datatype": "STRING", "data": [1, 2, 3]}]), None, "not supported"),
        (_req([{**TUBE, "shape": [1, -1, 1, 3], "data": [1, 2, 3]}]), None, "non-negative"),
        (_req([{**TUBE, "data": [1, 2]}]), None, "2 values for shape"),
        (_req([{**TUBE, "data": [1, 2, 300]}]), None, "outside 0..255"),
        (_req([{**TUBE, "data": [1, 2, 2.5]}]), None, "must be integers"),
        (_req([{**TUBE, "data": ["a", "b", "c"]}]), None, "must be numbers"),
        (_req([TUBE]), None, "neither 'data'"),
        (*_binary([{**TUBE, "parameters": {"binary_data_size": 3}}], b"\x01\x02"), "does not fit"),
        (*_binary([{**TUBE, "data": [1, 2, 3]}], b"\x01"), "belong to no input"),
        (_req([{**TUBE, "data": [1, 2, 3]}]), "99999", "Inference-Header-Content-Length"),
        (_req([{**TUBE, "parameters": {"shared_memory_region": "r"}}]), None, "shared memory"),
    ],
)
def test_oip_refuses_malformed_requests_with_a_clear_error(body, header, says):
    with pytest.raises(oip.OipError) as e:
        oip.parse_infer_request(body, header)
    assert e.value.status == 400 and says in e.value.error and e.value.fix


def test_oip_wants_one_uint8_tube_and_the_served_model():
    wrong = oip.parse_infer_request(_req([{**TUBE, "name": "video", "data": [1, 2, 3]}]))
    with pytest.raises(oip.OipError, match="one input named 'tube'"):
        oip.tube_input(wrong)
    floats = oip.parse_infer_request(_req([{**TUBE, "datatype": "FP32", "data": [1, 2, 3]}]))
    with pytest.raises(oip.OipError, match="is FP32"):
        oip.tube_input(floats)
    with pytest.raises(oip.OipError) as e:
        oip.check_model("other", None, "hypomimia-i3d", "3")
    assert e.value.status == 404 and "hypomimia-i3d" in e.value.fix
    with pytest.raises(oip.OipError, match="no version '2'"):
        oip.check_model("hypomimia-i3d", "2", "hypomimia-i3d", "3")
    oip.check_model("hypomimia-i3d", "3", "hypomimia-i3d", "3")
    meta = oip.model_metadata("hypomimia-i3d", "3", 112, 64)
    assert meta["inputs"][0] == {"name": "tube", "datatype": "UINT8", "shape": [-1, 112, 112, 3]}
    assert [o["name"] for o in meta["outputs"]] == ["p_pd", "label", "embedding"]


# -- FHIR -----------------------------------------------------------------------------------------------
def test_wants_fhir_reads_accept_and_format():
    assert fhir.wants_fhir("application/fhir+json")
    assert fhir.wants_fhir("application/json;q=0.5, application/fhir+json")
    assert not fhir.wants_fhir("application/json") and not fhir.wants_fhir("*/*") and not fhir.wants_fhir("")
    assert not fhir.wants_fhir("application/fhir+json;q=0")
    assert fhir.wants_fhir("", "_format=json") and fhir.wants_fhir("", "_format=application%2Ffhir%2Bjson")


def parsed_bundle(answer, **kw):
    from fhir.resources.R4B.bundle import Bundle

    text = fhir.prediction_bundle(answer, **kw).model_dump_json()
    bundle = Bundle.model_validate_json(text)  # what a FHIR client does with the answer
    return bundle, {e.resource.get_resource_type(): e for e in bundle.entry}


def test_the_bundle_holds_the_answer_model_and_provenance():
    bundle, by_type = parsed_bundle(ANSWER, subject_ref="pt-0042", session="visit-1",
                                    model_card_url="http://h:3000/model")  # fmt: skip
    assert bundle.type == "collection" and bundle.identifier.value == ANSWER["request_id"]
    assert set(by_type) == {"RiskAssessment", "Device", "DocumentReference", "Provenance"}
    risk, device = by_type["RiskAssessment"].resource, by_type["Device"].resource
    card, prov = by_type["DocumentReference"].resource, by_type["Provenance"].resource
    assert [(c.system, c.code) for c in risk.meta.security] == [(fhir.AIAST["system"], "AIAST")]
    assert risk.subject.identifier.value == "pt-0042" and risk.subject.type == "Patient"
    assert risk.encounter.identifier.value == "visit-1"
    pred = risk.prediction[0]
    assert float(pred.probabilityDecimal) == ANSWER["p_pd"]
    assert pred.qualitativeRisk.coding[0].code == "pd" and pred.outcome.coding[0].code == "49049000"
    assert pred.extension[0].url == fhir.ABSTAINED_URL and pred.extension[0].valueBoolean is False
    assert risk.performer.reference == by_type["Device"].fullUrl
    assert device.deviceName[0].name == "hypomimia-i3d"
    assert [(v.type.text, v.value) for v in device.version] == [
        ("registry version", "3"),
        ("registry alias", "champion"),
    ]
    assert device.extension[0].valueReference.reference == by_type["DocumentReference"].fullUrl
    assert card.content[0].attachment.url == "http://h:3000/model"
    assert prov.target[0].reference == by_type["RiskAssessment"].fullUrl
    assert prov.agent[0].who.reference == by_type["Device"].fullUrl
    assert prov.agent[0].who.identifier.value == "models:/hypomimia-i3d/3"
    idents = {e.what.identifier.system: e.what.identifier.value for e in prov.entity if e.what.identifier}
    assert idents == {
        fhir.SYSTEMS["request_id"]: ANSWER["request_id"],
        fhir.SYSTEMS["data_version"]: "dvc-md5-abc",
    }
    assert prov.recorded == risk.occurrenceDateTime == bundle.timestamp
    again, _ = parsed_bundle(
        ANSWER, subject_ref="pt-0042", session="visit-1", model_card_url="http://h:3000/model"
    )
    assert [e.fullUrl for e in again.entry] == [e.fullUrl for e in bundle.entry]  # stable per request


def test_an_abstention_without_subject_or_registry_version_is_still_valid():
    answer = {**ANSWER, "label": "uncertain", "p_pd": 0.5, "data_version": None,
              "model": {"name": "hypomimia-i3d", "version": None, "alias": None, "note": "a local model folder"}}  # fmt: skip
    _, by_type = parsed_bundle(answer)
    risk = by_type["RiskAssessment"].resource
    assert risk.prediction[0].extension[0].valueBoolean is True
    assert risk.prediction[0].qualitativeRisk.coding[0].code == "uncertain"
    assert risk.subject.extension[0].url == fhir.DATA_ABSENT and risk.encounter is None
    assert "DocumentReference" not in by_type and by_type["Device"].resource.version is None


@pytest.mark.parametrize(
    ("status", "body", "code", "reason"),
    [
        (401, {"error": "missing or invalid API key", "reason": "unauthorized", "fix": "send the key"}, "login", "unauthorized"),
        (413, [{"error": "the request body is larger than 2 MB"}], "too-long", None),
        (415, {"error": "empty", "reason": "empty_file", "fix": "upload a video", "request_id": "ab12"}, "not-supported", "empty_file"),
        (422, {"error": "no face", "reason": "no_face", "fix": "film one face"}, "processing", "no_face"),
        (422, {"error": "bad code", "reason": "bad_subject_ref", "fix": "use a code"}, "value", "bad_subject_ref"),
        (400, {"error": "1 validation error", "detail": [{"msg": "Field required"}]}, "invalid", None),
        (500, "Internal Server Error", "exception", None),
    ],
)  # fmt: skip
def test_refusals_become_operation_outcomes(status, body, code, reason):
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    out = OperationOutcome.model_validate_json(fhir.operation_outcome(status, body).model_dump_json())
    issue = out.issue[0]
    assert issue.code == code and issue.severity == ("fatal" if status >= 500 else "error")
    assert (issue.details.coding[0].code if issue.details.coding else None) == reason
    assert issue.details.text
    if isinstance(body, dict) and body.get("fix"):
        assert issue.diagnostics == body["fix"]
    if isinstance(body, dict) and body.get("request_id"):
        assert out.id == body["request_id"]
