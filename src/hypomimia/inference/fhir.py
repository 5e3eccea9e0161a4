"""FHIR for the endpoint: an answer becomes a Bundle, a refusal an OperationOutcome.

    Bundle (collection, identifier = the request id)
      RiskAssessment   P(PD), the label, the abstain flag; subject = the pseudonymous subject_ref;
                       meta.security AIAST (HL7 AI Transparency on FHIR: "Artificial Intelligence asserted")
      Device           the model: name, registry version and alias, a link to its model card
      DocumentReference  the model card (GET /model), as the AI Transparency IG's AI-ModelCard
      Provenance       who (the Device) made what (the RiskAssessment), when, from which request, model
                       version and training-data version

FHIR version: R4B (``fhir.resources.R4B``). Hospitals run R4 (4.0.1) and R4B adds no breaking change to
the resources used here, so an R4 server and client read these as R4 (and HL7's AI Transparency IG is
built on 4.0.1). R5 is not what EHRs speak yet. Every resource is built with, and so validated by,
``fhir.resources``; docs/operations.md maps each field of the JSON answer to its FHIR element.

Identifiers and codes of our own live under ``urn:hypomimia:`` (subject_ref, session, request id,
label, refusal reason, model, data version); a site with its own canonical base changes :data:`BASE`.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

FHIR_JSON = "application/fhir+json"
BASE = "urn:hypomimia"
SYSTEMS = {
    "subject_ref": f"{BASE}:subject-ref",
    "session": f"{BASE}:session",
    "request_id": f"{BASE}:request-id",
    "label": f"{BASE}:label",
    "reason": f"{BASE}:reason",
    "model": f"{BASE}:model",
    "data_version": f"{BASE}:data-version",
}
ABSTAINED_URL = f"{BASE}:fhir:abstained"  # extension on RiskAssessment.prediction: valueBoolean
AIAST = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "AIAST",
         "display": "Artificial Intelligence asserted"}  # fmt: skip
AI_IG = "http://hl7.org/fhir/uv/aitransparency"  # HL7 AI Transparency on FHIR (ballot, on R4 4.0.1)
MODEL_CARD_EXTENSION = f"{AI_IG}/StructureDefinition/aitransparency.modelCardDescription"
PARKINSONS = {
    "system": "http://snomed.info/sct",
    "code": "49049000",
    "display": "Parkinson's disease (disorder)",
}
LABELS = {
    "pd": "Parkinson's disease pattern",
    "control": "control pattern",
    "uncertain": "uncertain: the model abstained (P(PD) inside the abstain band)",
}
DISCLAIMER = "Not a medical device. Research use only; not for diagnosis or treatment decisions."
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

# OperationOutcome.issue.code (IssueType) per refusal reason, then per HTTP status.
ISSUE_BY_REASON = {
    "bad_subject_ref": "value", "bad_session": "value", "unknown_field": "structure",
    "missing_field": "required", "bad_form": "structure", "not_a_file": "structure",
    "url_not_allowed": "not-supported", "bad_inference_request": "structure",
}  # fmt: skip
ISSUE_BY_STATUS = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
                   413: "too-long", 415: "not-supported", 422: "processing", 429: "throttled",
                   503: "transient", 504: "timeout"}  # fmt: skip
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FORMATS = {"json", "application/json", FHIR_JSON, "application/json+fhir", "fhir+json"}


def wants_fhir(accept: str, query_string: str = "") -> bool:
    """Whether the caller asked for FHIR: ``Accept: application/fhir+json`` (q > 0) or ``?_format=json``
    (FHIR's own override of Accept, also ``application/fhir+json``)."""
    from urllib.parse import parse_qs

    for fmt in parse_qs(query_string).get("_format", []):
        if fmt.strip().lower() in _FORMATS:
            return True
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        if media in (FHIR_JSON, "application/json+fhir"):
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                if float(q) > 0:
                    return True
            except ValueError:
                return True
    return False


def _uuid(request_id: str, kind: str) -> str:
    """A stable urn:uuid per (request, resource), so the same answer gives the same Bundle."""
    try:
        base = uuid.UUID(hex=request_id)
    except (TypeError, ValueError):
        base = uuid.uuid5(uuid.NAMESPACE_URL, f"{BASE}:{request_id}")
    return f"urn:uuid:{uuid.uuid5(base, kind)}"


def _pseudonym_ref(kind: str, value: str | None, system_key: str) -> dict[str, Any]:
    if value:
        return {"type": kind, "identifier": {"system": SYSTEMS[system_key], "value": value}}
    return {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}


def prediction_bundle(
    answer: dict[str, Any],
    *,
    subject_ref: str | None = None,
    session: str | None = None,
    model_card_url: str | None = None,
    now: datetime | None = None,
):
    """The Bundle of an answer of ``/predict`` or ``/predict_tube`` (their JSON, as the endpoint sends it).

    ``subject_ref``/``session``: the request's pseudonymous codes (checked by the endpoint before it
    answers); ``model_card_url``: where GET /model is. Returns a ``fhir.resources.R4B`` Bundle.
    """
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.device import Device
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.provenance import Provenance
    from fhir.resources.R4B.riskassessment import RiskAssessment

    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rid, label, p = str(answer["request_id"]), answer["label"], float(answer["p_pd"])
    model, data_version = answer.get("model") or {}, answer.get("data_version")
    urls = {k: _uuid(rid, k) for k in ("RiskAssessment", "Device", "DocumentReference", "Provenance")}
    request_ident = {"system": SYSTEMS["request_id"], "value": rid}
    name, version, alias = model.get("name") or "hypomimia-i3d", model.get("version"), model.get("alias")
    model_ident = {"system": SYSTEMS["model"], "value": f"models:/{name}/{version}" if version else name}
    who = f"{name}" + (f" v{version}" if version else "") + (f" @{alias}" if alias else "")
    band = (answer.get("uncertainty") or {}).get("abstain_band") or [0.5, 0.5]
    sd = (answer.get("uncertainty") or {}).get("clip_p_sd")
    n_clips = len(answer.get("clips") or [])

    rationale = f"temperature-calibrated P(PD) averaged over {n_clips} clips of the face tube"
    rationale += f" (clip SD {sd:.3f})" if sd is not None else ""
    rationale += f"; the model abstains ('uncertain') when P(PD) is within {band[0]:g}..{band[1]:g}"
    risk = RiskAssessment.model_validate({
        "resourceType": "RiskAssessment",
        "meta": {"security": [AIAST]},
        "identifier": [request_ident],
        "status": "final",
        "code": {"text": "Parkinson's disease from facial expressivity (hypomimia) on video"},
        "method": {"text": "I3D network on the face tube of a facial video (hypomimia)"},
        "subject": _pseudonym_ref("Patient", subject_ref, "subject_ref"),
        **({"encounter": _pseudonym_ref("Encounter", session, "session")} if session else {}),
        "occurrenceDateTime": now,
        "performer": {"reference": urls["Device"], "display": who},
        "prediction": [{
            "extension": [{"url": ABSTAINED_URL, "valueBoolean": label == "uncertain"}],
            "outcome": {"coding": [PARKINSONS], "text": "Parkinson's disease"},
            "probabilityDecimal": p,
            "qualitativeRisk": {"coding": [{"system": SYSTEMS["label"], "code": label, "display": LABELS[label]}],
                                "text": label},
            "rationale": rationale,
        }],
        "note": [{"text": DISCLAIMER}],
    })  # fmt: skip
    versions = [{"type": {"text": "registry version"}, "value": version}] if version else []
    versions += [{"type": {"text": "registry alias"}, "value": alias}] if alias else []
    device = Device.model_validate({
        "resourceType": "Device",
        "identifier": [model_ident],
        "status": "active",
        "deviceName": [{"name": name, "type": "model-name"}],
        "type": {"text": "AI model (software)"},
        **({"version": versions} if versions else {}),
        **({"extension": [{"url": MODEL_CARD_EXTENSION, "valueReference": {"reference": urls["DocumentReference"]}}]}
           if model_card_url else {}),
        "note": [{"text": t} for t in (DISCLAIMER, model.get("note")) if t],
    })  # fmt: skip
    card = DocumentReference.model_validate({
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": f"{AI_IG}/CodeSystem/AIinputsCS", "code": "AIModelCard",
                             "display": "AI Model-Card"}], "text": "model card"},
        "description": f"model card of {who} (GET /model, with the API key)",
        "content": [{"attachment": {"contentType": "application/json", "url": model_card_url,
                                    "title": "model card"}}],
    }) if model_card_url else None  # fmt: skip
    entities = [{"role": "source", "what": {"identifier": request_ident, "display": "the request (the video is not kept)"}}]  # fmt: skip
    if card is not None:
        entities.append({"role": "derivation", "what": {"reference": urls["DocumentReference"], "display": "model card"}})  # fmt: skip
    if data_version:
        entities.append({"role": "derivation", "what": {
            "identifier": {"system": SYSTEMS["data_version"], "value": str(data_version)},
            "display": "the training data's version"}})  # fmt: skip
    provenance = Provenance.model_validate({
        "resourceType": "Provenance",
        "target": [{"reference": urls["RiskAssessment"]}],
        "occurredDateTime": now,
        "recorded": now,
        "reason": [{"coding": [AIAST]}],
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": "CREATE", "display": "create"}]},
        "agent": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                 "code": "author", "display": "Author"}]},
            "who": {"reference": urls["Device"], "identifier": model_ident, "display": who},
        }],
        "entity": entities,
    })  # fmt: skip
    resources = [
        ("RiskAssessment", risk),
        ("Device", device),
        ("DocumentReference", card),
        ("Provenance", provenance),
    ]
    return Bundle.model_validate({
        "resourceType": "Bundle",
        "identifier": request_ident,
        "type": "collection",
        "timestamp": now,
        "entry": [{"fullUrl": urls[kind], "resource": r} for kind, r in resources if r is not None],
    })  # fmt: skip


def operation_outcome(status: int, body: Any = None):
    """The OperationOutcome of a refusal: ``body`` is what the endpoint answered (``{"error", "reason",
    "fix", "request_id"}``, BentoML's ``[{"error": ...}]``, or text). Returns a ``fhir.resources.R4B``
    OperationOutcome: severity error (fatal for 5xx), IssueType from the reason or the status, the
    reason as a code, the problem as text and the fix as diagnostics."""
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        body = {"error": str(body)[:500]} if body else {}
    reason, problem = str(body.get("reason") or ""), str(body.get("error") or f"HTTP {status}")
    if isinstance(body.get("detail"), list):  # BentoML's input validation errors
        problem += ": " + "; ".join(
            str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in body["detail"]
        )
    code = ISSUE_BY_REASON.get(reason) or ISSUE_BY_STATUS.get(status) or ("exception" if status >= 500 else "processing")  # fmt: skip
    details: dict[str, Any] = {"text": problem}
    if reason:
        details["coding"] = [{"system": SYSTEMS["reason"], "code": reason}]
    issue: dict[str, Any] = {
        "severity": "fatal" if status >= 500 else "error",
        "code": code,
        "details": details,
    }
    if body.get("fix"):
        issue["diagnostics"] = str(body["fix"])
    rid = str(body.get("request_id") or "")
    return OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            **({"id": rid} if _FHIR_ID.fullmatch(rid) else {}),
            "issue": [issue],
        }
    )
