"""The hospital's and the platform's protocols on the same service (wiring only; the logic is in
``hypomimia.inference.fhir`` and ``hypomimia.inference.oip``).

- ``FhirMiddleware``: content negotiation on /predict and /predict_tube. With ``Accept:
  application/fhir+json`` (or ``?_format=json``) the answer becomes a FHIR Bundle and every refusal
  an OperationOutcome, whichever layer refused (key, size, form guard, the API). It is the outermost
  of our middlewares; BentoML's own 429 (max concurrency) and 504 (timeout) sit outside it and stay JSON.
- ``oip_app``: the Open Inference Protocol v2 routes under /v2, a Starlette app mounted on the
  Gateway, behind the same middlewares (so the same API keys). Inference runs on the Gateway's
  /predict_tube path (``Gateway.tube_answer``).
"""

from __future__ import annotations

import json
import logging

from hypomimia import __version__
from hypomimia.inference import fhir, oip
from serving.middleware import FORM_TEXT

log = logging.getLogger("bentoml.hypomimia")


class FhirMiddleware:
    """Answers ``paths`` in FHIR when asked; ``model_card_path`` is linked from the Bundle's Device."""

    def __init__(self, app, paths, model_card_path: str = "/model"):
        self.app, self.paths, self.model_card_path = app, frozenset(paths), model_card_path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        accept = headers.get(b"accept", b"").decode("latin-1")
        if not fhir.wants_fhir(accept, scope.get("query_string", b"").decode("latin-1")):
            return await self.app(scope, receive, send)
        start, chunks = None, []

        async def capture(msg):
            nonlocal start
            if msg["type"] == "http.response.start":
                start = msg
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except Exception:
            log.exception("%s failed", scope["path"])
            start, chunks = (
                {"status": 500, "headers": []},
                [b'{"error": "internal error (see the server log)"}'],
            )
        status, raw = (start or {"status": 500})["status"], b"".join(chunks)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            body = raw.decode("utf-8", "replace")
        try:
            if status == 200 and isinstance(body, dict) and "p_pd" in body:
                form = scope.get(FORM_TEXT) or {}
                host = headers.get(b"host", b"").decode("latin-1")
                card = f"{scope.get('scheme', 'http')}://{host}{self.model_card_path}" if host else None
                resource = fhir.prediction_bundle(
                    body,
                    subject_ref=form.get("subject_ref"),
                    session=form.get("session"),
                    model_card_url=card,
                )
            else:
                resource = fhir.operation_outcome(status if status != 200 else 500, body)
                status = status if status != 200 else 500
        except Exception:  # a Bundle that fails to build is our fault: say so in FHIR
            log.exception("FHIR answer failed for %s", scope["path"])
            status, resource = (
                500,
                fhir.operation_outcome(500, {"error": "the FHIR answer could not be built"}),
            )
        data = resource.model_dump_json().encode()
        kept = [(k, v) for k, v in (start or {}).get("headers", []) if k.lower() not in (b"content-type", b"content-length")]  # fmt: skip
        out = [
            *kept,
            (b"content-type", fhir.FHIR_JSON.encode()),
            (b"content-length", str(len(data)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": data})


def oip_app(get_gateway):
    """The /v2 routes; ``get_gateway()`` returns the Gateway instance (None while it loads)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def gateway_or_503():
        gw = get_gateway()
        if gw is None:
            raise oip.OipError(503, "the model is loading", "loading", "retry once /v2/health/ready is 200")
        return gw

    def model_of(request):
        gw = gateway_or_503()
        src = gw.served.source
        oip.check_model(
            request.path_params["name"], request.path_params.get("version"), src.name, src.version
        )
        return gw

    def answer(handler):
        async def endpoint(request):
            try:
                return await handler(request)
            except oip.OipError as e:
                return JSONResponse(e.body(), e.status)
            except Exception:  # logged by the Gateway's prediction log too, when it got that far
                log.exception("%s failed", request.url.path)
                return JSONResponse({"error": "internal error (see the server log)", "reason": "error"}, 500)

        return endpoint

    async def live(request):
        return JSONResponse({"live": True})

    async def ready(request):
        ok = get_gateway() is not None
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    async def server(request):
        return JSONResponse(oip.server_metadata(__version__))

    async def metadata(request):
        gw = model_of(request)
        s = gw.served
        return JSONResponse(
            oip.model_metadata(s.source.name, s.source.version, s.face_tubes.size, s.embed_dim)
        )

    async def model_ready(request):
        model_of(request)
        return JSONResponse({"name": request.path_params["name"], "ready": True})

    async def infer(request):
        gw = model_of(request)
        if request.headers.get("content-encoding", "identity").lower() != "identity":
            raise oip.OipError(
                415, "compressed requests are not accepted", "compressed", "send the body uncompressed"
            )
        req = oip.parse_infer_request(await request.body(), request.headers.get(oip.BINARY_HEADER))
        frames = oip.tube_input(req)
        subject_ref, session = oip.text_parameter(req, "subject_ref"), oip.text_parameter(req, "session")
        status, out, embedding = await gw.tube_answer(frames, "v2_infer", subject_ref, session)
        if status != 200:
            return JSONResponse(out, status)
        src = gw.served.source
        params = {
            "request_id": out["request_id"],
            "abstained": out["label"] == "uncertain",
            "calibrated": True,
        }
        params.update(
            {k: v for k, v in (("model_alias", src.alias), ("data_version", out.get("data_version"))) if v}
        )
        body, headers = oip.encode_infer_response(
            req,
            oip.answer_outputs(out, embedding),
            model_name=src.name,
            model_version=src.version,
            parameters=params,
        )
        return Response(body, headers=headers)

    model = "/v2/models/{name}"
    version = "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/v2", answer(server), methods=["GET"]),
        Route("/v2/health/live", answer(live), methods=["GET"]),
        Route("/v2/health/ready", answer(ready), methods=["GET"]),
        *(Route(p, answer(metadata), methods=["GET"]) for p in (model, version)),
        *(Route(p + "/ready", answer(model_ready), methods=["GET"]) for p in (model, version)),
        *(Route(p + "/infer", answer(infer), methods=["POST"]) for p in (model, version)),
    ]
    return Starlette(routes=routes)
