"""The model endpoint hospitals call: `bentoml serve serving.service:Gateway` (or `hypomimia serve`).

Two services, as BentoML recommends for heavy pre-processing: the public ``Gateway`` checks the
upload, makes the face tube (the facetubes stage's function), measures the voice of a model that has
one (the voice stage's function) and answers; the internal
``TubeModel`` runs the network with adaptive batching, so concurrent requests share forwards.
Everything domain-specific lives in ``hypomimia.inference``; this file is wiring.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import anyio
import bentoml
import numpy as np

from hypomimia.logs import silence_native_logs, telemetry_off

telemetry_off()
silence_native_logs()  # mediapipe/TFLite native lines never reach the server log

from hypomimia.inference import prediction_log as plog  # noqa: E402
from hypomimia.inference import predictor as pr  # noqa: E402
from hypomimia.inference.settings import api_keys, serve_config, voice_config  # noqa: E402
from serving.middleware import (  # noqa: E402
    ApiKeyMiddleware,
    FormGuardMiddleware,
    GetRoutesMiddleware,
    MaxBodySizeMiddleware,
)
from serving.protocols import FhirMiddleware, oip_app  # noqa: E402

log = logging.getLogger("bentoml.hypomimia")  # bentoml.* loggers reach `bentoml serve` output


class _NoClientAddress(logging.Filter):
    """Privacy: BentoML's access log starts with the client's ip:port; log '-' instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = ("-", *record.args[1:])
        return True


logging.getLogger("bentoml.access").addFilter(_NoClientAddress())
CFG = serve_config()
VOICE = voice_config()  # the upload's sound is measured as the voice stage measured the training clips
HERE = Path(__file__).resolve().parent
# A bento carries its model in serving/model (hypomimia serve build); otherwise params/env decide.
MODEL = os.environ.get("HYPOMIMIA_SERVE_MODEL") or (
    str(HERE / "model") if (HERE / "model" / "model.pt").is_file() else CFG.model
)
TEST_HOOKS = os.environ.get("HYPOMIMIA_SERVE_TEST_HOOKS") == "1"  # tests only: honour x-test-delay-s
STATE: dict = {}  # what the GET routes show, set once the Gateway is loaded

REQUESTS = bentoml.metrics.Counter(
    name="hypomimia_requests_total", documentation="answers by endpoint, outcome and reason",
    labelnames=["endpoint", "outcome", "reason"])  # fmt: skip
ABSTENTIONS = bentoml.metrics.Counter(
    name="hypomimia_abstentions_total", documentation="'uncertain' answers", labelnames=["endpoint"])  # fmt: skip
LATENCY = bentoml.metrics.Histogram(
    name="hypomimia_latency_seconds", documentation="time to answer", labelnames=["endpoint"],
    buckets=[0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32])  # fmt: skip
P_PD = bentoml.metrics.Histogram(
    name="hypomimia_p_pd", documentation="calibrated P(PD) answered", buckets=[i / 10 for i in range(1, 11)])  # fmt: skip


@bentoml.service(name="hypomimia_model", workers=1, threads=1, resources={"cpu": str(CFG.threads)},
                 traffic={"timeout": CFG.timeout_s * 2},
                 # never recycle the gateway's connection mid-flight (a 500 under load otherwise)
                 runner_connection={"max_requests": 10**9, "max_age": 1e9})  # fmt: skip
class TubeModel:
    def __init__(self) -> None:
        self.served = pr.load_served_model(MODEL, CFG.tracking_uri, threads=CFG.threads)
        s = self.served.face_tubes.size
        pr.forward(self.served, np.zeros((1, self.served.frames, s, s, 3), np.uint8))  # warm up

    # max_batch_size 1 = no batching (the benchmark's baseline; BentoML needs > 1 for a batchable API)
    @(
        bentoml.api(
            batchable=True, batch_dim=0, max_batch_size=CFG.max_batch_size, max_latency_ms=CFG.max_latency_ms
        )
        if CFG.max_batch_size > 1
        else bentoml.api
    )
    def forward(self, clips: np.ndarray) -> np.ndarray:
        return pr.forward(self.served, clips)


@bentoml.service(name="hypomimia", workers=1, resources={"cpu": "2"},
                 traffic={"timeout": CFG.timeout_s, "max_concurrency": CFG.max_concurrency})  # fmt: skip
class Gateway:
    model = bentoml.depends(TubeModel)

    def __init__(self) -> None:
        self.served = pr.load_served_model(MODEL, CFG.tracking_uri, threads=1)
        pr.warm_up_face_models(self.served)  # /readyz stays 503 until mediapipe is loaded too
        self.store = Path(CFG.prediction_log)
        STATE["model"] = pr.model_summary(self.served)
        log.info("serving %s", pr.describe_source(self.served.source))

    @bentoml.api(route="/predict")
    async def predict(
        self, video: Path, ctx: bentoml.Context, subject_ref: str = "", session: str = ""
    ) -> dict:
        async def work():
            await self._test_delay(ctx)
            upload = await anyio.to_thread.run_sync(pr.check_upload, video, CFG)
            tube = await anyio.to_thread.run_sync(pr.face_tube, video, self.served)
            landmark = await anyio.to_thread.run_sync(pr.landmark_margin, tube, self.served)
            voice = await anyio.to_thread.run_sync(pr.voice_row, video, self.served)  # None: no voice stream
            clips = pr.clip_frames(tube.frames, self.served)
            answer = await self._answer(clips, landmark, voice)
            # for the log; a model with the voice stream measured this sound already, with these params
            measured = voice if self.served.voice_config == VOICE else None
            audio = await anyio.to_thread.run_sync(pr.audio_facts, upload, video, VOICE, measured)
            return answer, pr.quality_summary(tube), audio

        return await self._respond("predict", ctx, subject_ref, session, work)

    @bentoml.api(route="/predict_tube")
    async def predict_tube(
        self, tube: Path, ctx: bentoml.Context, subject_ref: str = "", session: str = ""
    ) -> dict:
        async def work():
            frames = await anyio.to_thread.run_sync(pr.read_tube_upload, tube, self.served)
            return await self._answer(pr.clip_frames(frames, self.served)), {"n_frames": len(frames)}

        return await self._respond("predict_tube", ctx, subject_ref, session, work)

    @bentoml.api(route="/explain")
    async def explain(self, video: Path, ctx: bentoml.Context) -> dict:
        async def work():
            out = await anyio.to_thread.run_sync(pr.explain_video, video, self.served, CFG)
            return out, out.pop("tube_quality")

        return await self._respond("explain", ctx, "", "", work)

    async def tube_answer(self, frames: np.ndarray, endpoint: str, subject_ref: str = "", session: str = ""):
        """/predict_tube's path for a tube already in memory (the Open Inference Protocol's infer,
        serving/protocols.py): (HTTP status, the answer or the refusal, the embedding or None)."""
        status, kept = SimpleNamespace(response=SimpleNamespace(status_code=200)), {}

        async def work():
            checked = pr.check_tube(frames, self.served)
            result = await self._answer(pr.clip_frames(checked, self.served))
            kept["embedding"] = list(result["embedding"])  # _respond logs it and leaves it out of the answer
            return result, {"n_frames": len(checked)}

        out = await self._respond(endpoint, status, subject_ref, session, work)
        return status.response.status_code, out, kept.get("embedding")

    async def _answer(
        self, clips: np.ndarray, landmark: float | None = None, voice: dict | None = None
    ) -> dict:
        return pr.answer(self.served, await self.model.to_async.forward(clips), landmark, voice)

    async def _test_delay(self, ctx) -> None:
        if TEST_HOOKS and ctx is not None and ctx.request.headers.get("x-test-delay-s"):
            await anyio.sleep(float(ctx.request.headers["x-test-delay-s"]))

    async def _respond(self, endpoint, ctx, subject_ref, session, work) -> dict:
        request_id, t0 = uuid.uuid4().hex, time.perf_counter()
        src = self.served.source
        record = {"request_id": request_id, "endpoint": endpoint, "model_name": src.name,
                  "model_version": src.version, "model_alias": src.alias, "data_version": self.served.data_version}  # fmt: skip
        try:
            pr.check_pseudonym(subject_ref, "subject_ref")
            pr.check_pseudonym(session, "session")
            record.update(
                subject_ref=subject_ref or None, session=session or None
            )  # only once they are codes
            result, quality, *heard = await work()  # /predict also returns the upload's audio facts
        except pr.Refusal as r:
            ctx.response.status_code = r.status
            ms = (time.perf_counter() - t0) * 1000
            self._log(record, outcome="refused", status_code=r.status, reason=r.reason, latency_ms=ms)
            REQUESTS.labels(endpoint=endpoint, outcome="refused", reason=r.reason).inc()
            return {"error": r.problem, "reason": r.reason, "fix": r.fix, "request_id": request_id}
        except Exception:
            self._log(record, outcome="error", status_code=500, latency_ms=(time.perf_counter() - t0) * 1000)
            REQUESTS.labels(endpoint=endpoint, outcome="error", reason="").inc()
            raise
        ms = (time.perf_counter() - t0) * 1000
        outcome = "uncertain" if result["label"] == "uncertain" else "ok"
        embedding = result.pop("embedding")
        self._log(record, outcome=outcome, p_pd=result["p_pd"], label=result["label"], n_clips=len(result["clips"]),
                  latency_ms=ms, tube_quality=quality, embedding=embedding, audio=heard[0] if heard else None,
                  **pr.log_modalities(result))  # fmt: skip
        REQUESTS.labels(endpoint=endpoint, outcome=outcome, reason="").inc()
        ABSTENTIONS.labels(endpoint=endpoint).inc(outcome == "uncertain")
        LATENCY.labels(endpoint=endpoint).observe(ms / 1000)
        P_PD.observe(result["p_pd"])
        if "overlay_gif" in result:
            import base64

            result["overlay_gif"] = (
                "data:image/gif;base64," + base64.b64encode(result["overlay_gif"]).decode()
            )
        model = {"name": src.name, "version": src.version, "alias": src.alias, "note": src.note}
        return {**result, "tube_quality": quality, "model": model, "data_version": self.served.data_version,
                "request_id": request_id, "latency_ms": round(ms, 1)}  # fmt: skip

    def _log(self, record: dict, **fields) -> None:
        try:
            plog.append(plog.PredictionRecord(**record, **fields), self.store)
        except Exception as e:  # the answer must not fail because the log disk is full
            where = (
                [err["loc"] for err in e.errors()] if hasattr(e, "errors") else ""
            )  # field names, no values
            log.error("prediction log write failed: %s %s", type(e).__name__, where)


def _get_routes() -> dict:
    page = (HERE / "static" / "index.html").read_bytes()
    return {
        "/": lambda: (200, "text/html; charset=utf-8", page),
        "/ui": lambda: (200, "text/html; charset=utf-8", page),
        "/model": lambda: (200, "application/json", STATE["model"]) if "model" in STATE else (503, "application/json", {"error": "loading"}),
    }  # fmt: skip


def _current_gateway():
    try:
        return bentoml.get_current_service()
    except bentoml.exceptions.BentoMLException:  # not loaded yet
        return None


# The first middleware added is the outermost: FHIR negotiation (so every refusal below it can become an
# OperationOutcome), key, size, form checks, the GET routes. /v2 (Open Inference Protocol) is mounted.
FORMS = {"/predict": ("video", frozenset({"subject_ref", "session"})),
         "/predict_tube": ("tube", frozenset({"subject_ref", "session"})), "/explain": ("video", frozenset())}  # fmt: skip
Gateway.mount_asgi_app(oip_app(_current_gateway), path="/")
Gateway.add_asgi_middleware(FhirMiddleware, paths=("/predict", "/predict_tube"))
Gateway.add_asgi_middleware(ApiKeyMiddleware, keys=api_keys(CFG))
Gateway.add_asgi_middleware(MaxBodySizeMiddleware, max_bytes=int(CFG.max_upload_mb * 2**20))
Gateway.add_asgi_middleware(FormGuardMiddleware, forms=FORMS)
Gateway.add_asgi_middleware(GetRoutesMiddleware, routes=_get_routes())
