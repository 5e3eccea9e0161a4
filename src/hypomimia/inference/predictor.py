"""One video in, one calibrated answer out: the inference path the endpoint and offline scoring share.

    check the upload (probe: ingest's reasons) -> face tube (faces.tube.extract_tube with the
    face-tube params the model was trained on) -> judge it (facetubes' reasons) -> evaluation clips
    (learning.clips: evenly spaced, no augmentation) -> logits + embedding -> temperature-scaled
    P(PD) per clip, averaged -> pd | control | uncertain (the abstain band)

    and, for a model with the voice: the upload's audio -> voice measures (voice.clip.measure_video
    with the voice params of the training's table) -> voice margin, fused with the visual margin; a
    clip without audio or voiced speech is answered from the face alone, and the answer says so

Every step is the function training and evaluation used, so the endpoint sees the inputs the reported
metrics came from. A video that cannot be answered raises :class:`Refusal` with a machine-readable
``reason`` from ingest's and facetubes' vocabulary and the HTTP status the endpoint answers with.

The model comes from the MLflow registry (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``) or a
local training folder (``model.pt`` + ``metadata.json`` + ``metrics.json``); see :func:`load_served_model`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.config.serve import ServeConfig
from hypomimia.errors import UserError

log = logging.getLogger(__name__)

# Upload problems: the probe's and ingest's reasons; 415 = not a video at all, 422 = a video we refuse.
NOT_A_VIDEO = frozenset({"empty_file", "image_not_video", "not_a_video", "audio_only"})
MODEL_FILES = ("model.pt", "metadata.json", "metrics.json")


class Refusal(UserError):
    """A request the endpoint answers with a 4xx: ``reason`` is machine-readable, ``problem`` for people."""

    def __init__(self, reason: str, problem: str, status: int = 422, fix: str = ""):
        self.reason, self.status = reason, status
        super().__init__(problem, fix)


# -- the model ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSource:
    """Where the served model came from (what /model and every prediction-log record report)."""

    name: str
    version: str | None
    alias: str | None
    uri: str
    run_id: str | None = None
    note: str = ""  # e.g. "no 'champion' alias yet: serving the newest version"


@dataclass
class ServedModel:
    net: Any  # torch.nn.Module, eval mode
    labels: tuple[str, ...]
    frames: int  # per clip
    stride: int
    size: int  # clip side the network takes
    clips_per_video: int
    temperature: float
    abstain_band: float
    face_tubes: FacetubesConfig  # the params the training tubes were made with
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    source: ModelSource
    folder: Path
    data_version: str | None = None
    embed_dim: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    landmark_stream: Any = None  # models.fusion.LandmarkStream of a two-stream model, else None
    fusion: Any = None  # models.fusion.LateFusion, with the landmark stream
    voice_stream: Any = None  # models.fusion.VoiceStream of a model with the voice, else None
    voice_fusion: Any = None  # models.fusion.VoiceFusion, with the voice stream
    voice_config: Any = None  # config.voice.VoiceConfig the training's voice table was measured with

    @property
    def streams(self) -> list[str]:
        """The modalities the model reads (video; landmarks and voice when it has those streams)."""
        return ["video", *(["landmarks"] if self.fusion is not None else []),
                *(["voice"] if self.voice_fusion is not None else [])]  # fmt: skip


def resolve_model(
    spec: str, tracking_uri: str | None = None, cache: Path | None = None
) -> tuple[Path, ModelSource]:
    """A local folder holding :data:`MODEL_FILES` and where it came from.

    ``spec``: a folder, ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME`` (newest).
    When the alias does not exist yet, the newest registered version is used and ``note`` says so.
    """
    if not spec.startswith("models:/"):
        folder = Path(spec)
        if not (folder / "model.pt").is_file() or not (folder / "metadata.json").is_file():
            raise UserError(
                f"no model at {folder}: model.pt and metadata.json are needed",
                "train one (hypomimia train --out work/train) or pass models:/hypomimia-i3d@champion",
            )
        meta = json.loads((folder / "metadata.json").read_text())
        known = json.loads((folder / "source.json").read_text()) if (folder / "source.json").is_file() else {}
        run_id = known.get("run_id") or (meta.get("mlflow") or {}).get("run_id")
        name = known.get("name") or meta.get("name", "hypomimia-i3d")
        note = known.get("note") or "a local model folder, not from the registry"
        return folder, ModelSource(name, known.get("version"), known.get("alias"), str(folder), run_id, note)

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from hypomimia.learning.mlflow_runs import default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    ref = spec.removeprefix("models:/")
    name, alias, version, note = ref, None, None, ""
    if "@" in ref:
        name, alias = ref.split("@", 1)
    elif "/" in ref:
        name, version = ref.split("/", 1)
    try:
        if alias:
            try:
                mv = client.get_model_version_by_alias(name, alias)
            except MlflowException:
                mv = _newest_version(client, name)
                note = f"no '{alias}' alias yet: serving the newest version ({mv.version})"
                alias = None
        elif version:
            mv = client.get_model_version(name, version)
        else:
            mv = _newest_version(client, name)
            note = "no alias asked for: serving the newest version"
    except MlflowException as e:
        raise UserError(
            f"model {spec} is not in the MLflow registry at {uri} ({e.error_code})",
            "train and register one (hypomimia train), or set serve.model / --model",
        ) from None
    folder = Path(cache or tempfile.mkdtemp(prefix="hypomimia-model-")) / f"{name}-v{mv.version}"
    folder.mkdir(parents=True, exist_ok=True)
    import os

    import mlflow.artifacts

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in server logs
    for f in MODEL_FILES:
        if not (folder / f).is_file():
            mlflow.artifacts.download_artifacts(
                run_id=mv.run_id, artifact_path=f, dst_path=str(folder), tracking_uri=uri
            )
    data_version = None
    try:
        tags = client.get_run(mv.run_id).data.tags
        data_version = tags.get("data.tubes_digest")
    except MlflowException:
        pass
    source = ModelSource(name, str(mv.version), alias, spec, mv.run_id, note)
    # Where the files came from travels with them (a bento built from this folder reports it too).
    (folder / "source.json").write_text(json.dumps({**source.__dict__, "data_version": data_version}))
    return folder, source


def _newest_version(client, name: str):
    from mlflow.exceptions import MlflowException

    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise MlflowException(
            f"registered model {name} has no versions", error_code="RESOURCE_DOES_NOT_EXIST"
        )
    return max(versions, key=lambda v: int(v.version))


def load_served_model(
    spec: str | Path, tracking_uri: str | None = None, threads: int | None = None
) -> ServedModel:
    """The model behind ``spec`` with everything serving needs (temperature, band, clip and tube params)."""
    import torch

    from hypomimia.faces.tube import TUBE_CODE_VERSION
    from hypomimia.models import load_model

    if threads:
        torch.set_num_threads(threads)
    folder, source = resolve_model(str(spec), tracking_uri)
    loaded = load_model(folder / "model.pt")
    meta = json.loads((folder / "metadata.json").read_text())
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    tubes = meta.get("face_tubes")
    if not tubes:
        raise UserError(
            "the model's metadata.json has no face_tubes params, so the endpoint cannot make its tubes as training did",
            "retrain on tubes made by 'hypomimia facetubes' (it records the params the model needs)",
        )
    tubes = dict(tubes)
    code = tubes.pop("tube_code_version", None)
    if code != TUBE_CODE_VERSION:
        raise UserError(
            f"the model was trained on tubes of tube code version {code}; this package makes version {TUBE_CODE_VERSION}",
            "retrain the model with this version, or serve it with the package version that trained it",
        )
    extra = loaded.extra
    # The training data's version as the model's lineage recorded it (the DVC version of the videos);
    # models trained before that record fall back to the registry run's digest of its training tubes.
    source_file = folder / "source.json"
    data_version = (meta.get("lineage") or {}).get("data_version") or (
        json.loads(source_file.read_text()).get("data_version") if source_file.is_file() else None
    )
    streams = {}
    if "fusion" in extra and "landmark_stream" in extra:
        from hypomimia.models.fusion import LandmarkStream, LateFusion

        streams = {
            "landmark_stream": LandmarkStream.from_dict(extra["landmark_stream"]),
            "fusion": LateFusion.from_dict(extra["fusion"]),
        }
    if "voice_fusion" in extra and "voice_stream" in extra:
        streams |= _voice_streams(extra, meta)
    net = loaded.model.eval()
    with torch.inference_mode():
        dim = int(net.embed(torch.zeros(1, *loaded.clip["shape"])).shape[1])
    return ServedModel(
        net=net,
        labels=loaded.labels,
        frames=loaded.config.frames,
        stride=int(extra.get("stride", 1)),
        size=loaded.config.size,
        clips_per_video=int(extra.get("eval_clips_per_video", 4)),
        temperature=float(extra.get("temperature", 1.0)),
        abstain_band=float(extra.get("abstain_band", 0.0)),
        face_tubes=FacetubesConfig(**tubes),
        metadata=meta,
        metrics=metrics,
        source=source,
        folder=folder,
        data_version=str(data_version) if data_version else None,
        embed_dim=dim,
        extra=extra,
        **streams,
    )


def _voice_streams(extra: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The voice stream, its fusion and the voice params an upload must be measured with."""
    from hypomimia.config.voice import VoiceConfig
    from hypomimia.models.fusion import VoiceFusion, VoiceStream
    from hypomimia.voice.schema import FEATURE_VERSION

    voice = meta.get("voice") or {}
    if not voice.get("params"):
        raise UserError(
            "the model has a voice stream but its metadata.json has no voice params, so the endpoint cannot "
            "measure an upload's voice as training did",
            "retrain with a voice table made by 'hypomimia voice' (it records the params the model needs)",
        )
    stream = VoiceStream.from_dict(extra["voice_stream"])
    if stream.feature_version != FEATURE_VERSION:
        raise UserError(
            f"the model's voice stream read voice features {stream.feature_version}; this package measures "
            f"{FEATURE_VERSION}",
            "retrain the model with this version, or serve it with the package version that trained it",
        )
    return {
        "voice_stream": stream,
        "voice_fusion": VoiceFusion.from_dict(extra["voice_fusion"]),
        "voice_config": VoiceConfig(**voice["params"]),
    }


# -- the steps ------------------------------------------------------------------------------------
def check_upload(path: Path, limits: ServeConfig):
    """Probe the upload and apply the endpoint's limits; the Probe, or :class:`Refusal` (ingest's reasons)."""
    from hypomimia.data.probe import probe, quality_problem

    p = probe(path, max_pixels=limits.max_pixels)
    if p.problem:
        status = 415 if p.problem in NOT_A_VIDEO else 422
        raise Refusal(
            p.problem, p.detail or p.problem, status, "upload a video file (mp4, mov, webm, mkv, avi)"
        )
    # The endpoint checks no decode ratio: a cut-short upload still has its decodable frames judged.
    reason, detail = quality_problem(
        p,
        section="serve",
        max_pixels=limits.max_pixels,
        min_side=limits.min_side,
        min_frames=limits.min_frames,
        min_duration_s=limits.min_duration_s,
        max_duration_s=limits.max_duration_s,
    )
    if reason:
        raise Refusal(reason, detail, 422)
    return p


def face_tube(path: Path, model: ServedModel):
    """The face tube of the video, made exactly as for training; :class:`Refusal` when it is unusable."""
    from hypomimia.faces.tube import extract_tube, judge

    try:
        tube = extract_tube(path, model.face_tubes)
    except Exception as e:  # a video that probes but breaks the tracker
        log.warning("tube extraction failed: %s", type(e).__name__)
        raise Refusal("tube_failed", f"face-tube extraction failed ({type(e).__name__})", 422) from None
    reason, detail = judge(tube, model.face_tubes)
    if reason:
        raise Refusal(
            reason, detail, 422, "film one face, frontal, well lit, filling a good part of the frame"
        )
    return tube


def clip_frames(frames: np.ndarray, model: ServedModel) -> np.ndarray:
    """The evaluation clips of a tube, ``K x T x S x S x 3`` uint8 (learning.clips: evenly spaced starts)."""
    from hypomimia.learning.clips import clip_starts, frame_indices

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise Refusal(
            "bad_tube", f"a tube must be T x S x S x 3 uint8 frames, got {frames.shape} {frames.dtype}", 422
        )
    n = len(frames)
    starts = clip_starts(n, (model.frames - 1) * model.stride + 1, model.clips_per_video)
    return np.stack([frames[frame_indices(s, model.frames, model.stride, n)] for s in starts])


def forward(model: ServedModel, clips: np.ndarray) -> np.ndarray:
    """``N x T x S x S x 3`` uint8 clips -> ``N x (1 + D)`` float32: the PD margin (PD logit - control
    logit) and the embedding. Resizing as in evaluation (``ClipDataset``: bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(clips))  # N,T,H,W,3
    n, t = x.shape[:2]
    x = x.reshape(n * t, *x.shape[2:]).permute(0, 3, 1, 2).float().div_(255.0)  # N*T,3,H,W
    if x.shape[-1] != model.size or x.shape[-2] != model.size:
        x = F.interpolate(x, size=(model.size, model.size), mode="bilinear", antialias=True)
    x = x.reshape(n, t, 3, model.size, model.size).permute(0, 2, 1, 3, 4).contiguous()
    with torch.inference_mode():
        out = model.net.forward_all(x)
    logits = out["logits"].float()
    margin = (logits[:, 1] - logits[:, 0])[:, None]
    return torch.cat([margin, out["embedding"].float()], dim=1).numpy().astype(np.float32)


def landmark_margin(tube, model: ServedModel) -> float | None:
    """The landmark stream's margin of a tube (None: a video-only model). Same features as training."""
    if model.landmark_stream is None:
        return None
    return model.landmark_stream.tube_margin(tube.landmarks, tube.valid, tube.fps)


_TIMING = ("seconds", "praat_s", "egemaps_s")


def voice_row(path: Path, model: ServedModel) -> dict[str, Any] | None:
    """The voice row of an upload, measured as the voice stage measured the training videos (the same
    function and params); None for a model without the voice. Never raises for a bad audio track: that is
    the row's ``failed`` status, and the video is still answered from the face."""
    if model.voice_stream is None:
        return None
    from hypomimia.voice.clip import blank_row, measure_video

    try:
        row = measure_video(Path(path), model.voice_config)
    except Exception as e:  # as the stage's measure_job: one bad track is the clip's failure, not a 500
        log.warning("voice measures failed: %s", type(e).__name__)
        row = blank_row(model.voice_config) | {"status": "failed", "reason": "voice_failed"}
    return {k: v for k, v in row.items() if k not in _TIMING}


def voice_margin(row: dict[str, Any] | None, model: ServedModel) -> float | None:
    """The voice stream's margin of a voice row (None: no voice stream, or no measures in the row)."""
    return None if model.voice_stream is None else model.voice_stream.row_margin(row)


def _p(margins: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(margins, np.float64) / temperature, -60, 60)))


def _no_voice_reason(row: dict[str, Any] | None) -> str:
    if row is None:
        return "no audio: a tube upload carries frames only"
    status = row.get("status")
    if status == "no_audio":
        return "the clip has no audio track"
    if status == "no_voice":
        return f"the clip's audio holds too little voiced speech ({row.get('detail') or 'no voice'})"
    return f"the audio track could not be measured ({row.get('reason') or status})"


def answer(
    model: ServedModel,
    outputs: np.ndarray,
    landmark: float | None = None,
    voice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Calibrated P(PD) per clip, averaged per video as in evaluation; the label abstains ('uncertain')
    inside the band. Also the spread over clips (the answer's uncertainty) and ``modalities``.

    The clips' video margins are fused with the video's ``landmark`` margin (a two-stream model) and then
    with its ``voice`` (the row of :func:`voice_row`; a model with the voice), as in training. A modality
    the input lacks is left out: without landmarks (a tube upload) the video stream answers with its own
    temperature; without voice (no audio, no voiced speech, a tube) the visual model answers unchanged.
    ``modalities`` gives P(PD) per modality and fused, which were ``used``, which ``drove`` the answer
    (the largest standardised term of the fused margin on the answer's side; ``contributions``: each
    modality's term, log-odds) and a ``note`` saying what the answer was made from."""
    video = outputs[:, 0].astype(np.float64)
    late, vf = model.fusion, model.voice_fusion
    video_t = late.video_temperature if late else vf.visual_temperature if vf else model.temperature
    modalities: dict[str, Any] = {"video": {"p_pd": float(_p(video, video_t).mean())}}
    if late is not None and landmark is not None:
        zv = (video - late.video_centre) / late.video_scale
        zl = (landmark - late.landmark_centre) / late.landmark_scale
        visual, visual_t = late.fuse(video, landmark), late.temperature
        terms = {"video": late.video_coef * zv, "landmarks": late.landmark_coef * zl}
        modalities["landmarks"] = {"p_pd": float(_p(landmark, 1.0))}
    else:
        visual, visual_t, terms = video, video_t, {"video": video / video_t}
        if late is not None:
            modalities["landmarks"] = {
                "p_pd": None,
                "reason": "no landmarks: a tube upload carries frames only",
            }
    # The voice joins the visual model it was fitted with: never a tube's video stream alone.
    voiced = voice_margin(voice, model) if late is None or landmark is not None else None
    if vf is not None and voiced is not None:
        margins = vf.fuse(visual, voiced)
        visual_term, voice_term = vf.terms(visual, voiced)
        if "landmarks" in terms:  # the visual term shared out as the landmark fusion's own terms are
            terms = {
                m: vf.visual_coef / vf.visual_scale / vf.visual_temperature * t for m, t in terms.items()
            }
        else:
            terms = {"video": visual_term}
        terms["voice"] = voice_term
        modalities["voice"] = {"p_pd": float(_p(voiced, 1.0)), "status": voice["status"]}
        p_clips = _p(margins, vf.temperature)
    else:
        p_clips = _p(visual, visual_t)
        if vf is not None:
            status = {"status": voice["status"]} if voice else {}
            modalities["voice"] = {"p_pd": None, **status, "reason": _no_voice_reason(voice)}
    p = float(p_clips.mean())
    label = "uncertain" if abs(p - 0.5) < model.abstain_band else "pd" if p >= 0.5 else "control"
    used = [k for k, v in modalities.items() if v["p_pd"] is not None]
    contributions = {k: float(np.mean(t)) for k, t in terms.items()}
    side = max if p >= 0.5 else min
    drove = side(contributions, key=contributions.get) if len(contributions) > 1 else used[0]
    return {
        "p_pd": p,
        "label": label,
        "calibrated": True,
        "uncertainty": {
            "clip_p_sd": float(p_clips.std()),
            "clip_p_range": [float(p_clips.min()), float(p_clips.max())],
            "abstain_band": [0.5 - model.abstain_band, 0.5 + model.abstain_band],
        },
        "modalities": {
            "used": used,
            "drove": drove,
            "note": _modality_note(model, used, modalities),
            **modalities,
            "fused": {"p_pd": p},
            "contributions": contributions if len(contributions) > 1 else {},
        },
        "clips": [{"index": i, "p_pd": float(q)} for i, q in enumerate(p_clips)],
        "embedding": outputs[:, 1:].mean(0).astype(float).tolist(),
    }


def _modality_note(model: ServedModel, used: list[str], modalities: dict[str, Any]) -> str:
    missing = [m for m in model.streams if m not in used]
    if not missing:
        return "fused: " + _listed(used) if len(used) > 1 else "one modality: the video network"
    why = "; ".join(f"{m}: {modalities[m]['reason']}" for m in missing)
    return f"answered from {_listed(used)} only ({why})"


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def log_modalities(result: dict[str, Any]) -> dict[str, Any]:
    """The prediction-log fields of an answer's modalities: which were used, and the voice's status and
    P(PD) (numbers and codes only), so monitoring can follow the voice as it follows the face."""
    m = result.get("modalities") or {}
    voice = m.get("voice") or {}
    return {"modalities": m.get("used"), "voice": {k: voice[k] for k in ("status", "p_pd") if k in voice}}


def quality_summary(tube) -> dict[str, Any]:
    """Tube quality for the answer and the log: numbers only (no frames, no landmarks)."""
    out: dict[str, Any] = {}
    for k, v in tube.metrics.items():
        if isinstance(v, bool | np.bool_):
            out[k] = int(v)
        elif isinstance(v, int | float | np.integer | np.floating):
            out[k] = None if v != v else float(v) if isinstance(v, float | np.floating) else int(v)
    out["n_frames"] = len(tube.valid)
    return out


def audio_facts(upload, path: Path, voice, measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """The upload's sound for the prediction log (``prediction_log.AudioFacts``): the stream facts of
    ``upload`` (the Probe :func:`check_upload` returned) and :func:`hypomimia.voice.clip.listen` with
    ``voice`` (a VoiceConfig, the voice stage's params). ``measured``: the upload's voice row when
    :func:`voice_row` already measured it with these same params; its numbers are logged rather than
    decoding and listening again. A clip without audio gives ``has_audio`` false and nulls. Never
    raises: a voice analysis that fails logs ``voice_status: failed`` and the answer goes out as it
    would have."""
    import math

    def finite(x):
        return float(x) if x is not None and math.isfinite(x) else None

    if not upload.has_audio:
        return {"has_audio": False}
    facts: dict[str, Any] = {
        "has_audio": True,
        "codec": upload.audio_codec or None,
        "sample_rate": upload.audio_sample_rate or None,
        "channels": upload.audio_channels or None,
        "duration_s": finite(upload.audio_duration_s),
        "loudness_lufs": finite(upload.audio_loudness_lufs),
        "peak_dbfs": finite(upload.audio_peak_dbfs),
        "clipped_share": finite(upload.audio_clipped_share),
    }
    try:
        from hypomimia.voice.clip import heard, listen

        sound = heard(measured) if measured is not None else listen(path, voice)
    except Exception as e:  # the voice must never cost the answer
        log.warning("audio facts failed: %s", type(e).__name__)
        return facts | {"voice_status": "failed"}
    return facts | {"voice_status": sound.pop("status")} | sound


def predict_video(path: Path, model: ServedModel, limits: ServeConfig | None = None) -> dict[str, Any]:
    """The whole path in one process (offline scoring, benchmarks): upload checks, tube, clips, answer."""
    check_upload(Path(path), limits or ServeConfig())
    tube = face_tube(Path(path), model)
    voice = voice_row(Path(path), model)
    result = answer(
        model, forward(model, clip_frames(tube.frames, model)), landmark_margin(tube, model), voice
    )
    result["tube_quality"] = quality_summary(tube)
    return result


def model_summary(model: ServedModel) -> dict[str, Any]:
    """What GET /model shows: the model card when ``hypomimia.lineage`` builds one, else a summary of
    metadata.json + metrics.json (intended use, not a medical device, metrics with CIs, data version)."""
    try:
        from hypomimia.lineage import build_model_card  # another wing's model card, where present

        card = build_model_card(model.folder)
    except (ImportError, AttributeError):
        card = None
    except Exception as e:  # a card that fails to build must not take /model down
        log.warning("model card failed (%s); serving the summary", type(e).__name__)
        card = None
    meta, src = model.metadata, model.source
    summary = {
        "name": src.name,
        "version": src.version,
        "alias": src.alias,
        "uri": src.uri,
        "note": src.note,
        "intended_use": meta.get("intended_use"),
        "medical_device": False,
        "disclaimer": "Not a medical device. Research use only; not for diagnosis or treatment decisions.",
        "task": meta.get("task"),
        "labels": list(model.labels),
        "metrics": meta.get("metrics", {}),
        "subject_level_test": (model.metrics.get("overall") or {}).get("subject", {}),
        "calibration": {"temperature": model.temperature, "abstain_band": model.abstain_band},
        "streams": model.streams,
        "input": {
            "clip": {"frames": model.frames, "stride": model.stride, "size": model.size},
            "clips_per_video": model.clips_per_video,
            "face_tubes": model.face_tubes.model_dump(mode="json", exclude={"workers"}),
        },
        "training_data": {"version": model.data_version, **(meta.get("data_source") or {})},
        "mlflow_run_id": src.run_id,
    }
    if card is not None:
        summary["model_card"] = card
    return summary


def explain_video(path: Path, model: ServedModel, limits: ServeConfig | None = None) -> dict[str, Any]:
    """Grad-CAM of the middle evaluation clip: an overlay GIF (bytes) and the map's share per face
    region (explain wing: the same maps and regions as ``hypomimia explain``), plus the answer."""
    import cv2
    import torch

    from hypomimia.explain.gradcam import activation_maps
    from hypomimia.explain.regions import label_images, region_mass
    from hypomimia.explain.render import overlay
    from hypomimia.learning.clips import clip_starts, frame_indices

    check_upload(Path(path), limits or ServeConfig())
    tube = face_tube(Path(path), model)
    voice = voice_row(Path(path), model)
    result = answer(
        model, forward(model, clip_frames(tube.frames, model)), landmark_margin(tube, model), voice
    )
    n = len(tube.frames)
    starts = clip_starts(n, (model.frames - 1) * model.stride + 1, model.clips_per_video)
    idx = frame_indices(starts[len(starts) // 2], model.frames, model.stride, n)
    frames = tube.frames[idx]
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)
    if x.shape[-1] != model.size:
        x = torch.nn.functional.interpolate(x, size=(model.size, model.size), mode="bilinear", antialias=True)
    x = x.permute(1, 0, 2, 3)[None].contiguous()
    with torch.enable_grad():
        maps, _ = activation_maps(model.net, x, methods=("gradcam",))
    cam = next(iter(maps.values()))["gradcam"][0].numpy()  # T x h x w in [0, 1]
    side = frames.shape[1]
    if cam.shape[-1] != side:
        cam = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_LINEAR) for c in cam])
    labels = label_images(tube.landmarks[idx], tube.valid[idx], (side, side))
    regions = region_mass(cam.astype(np.float32), labels).as_dict()
    gif = _gif_bytes(overlay(frames, np.clip(cam, 0, 1)), model.face_tubes.fps / model.stride)
    return {**result, "tube_quality": quality_summary(tube), "regions": regions, "overlay_gif": gif,
            "clip_frames": [int(i) for i in idx], "voice": voice_summary(voice, model)}  # fmt: skip


def voice_summary(row: dict[str, Any] | None, model: ServedModel) -> dict[str, Any] | None:
    """What /explain shows beside the Grad-CAM: the voice measures, and each measure's term of the voice
    margin (positive: speaks for PD); None for a model without the voice."""
    if model.voice_stream is None:
        return None
    from hypomimia.models.fusion import voice_features
    from hypomimia.voice.schema import MEASURES

    row = row or {"status": "no_audio"}
    out: dict[str, Any] = {k: row.get(k) for k in ("status", "reason", "detail", "voiced_s", "duration_s")}
    out["measures"] = {m: row.get(m) for m in MEASURES}
    margin = voice_margin(row, model)
    if margin is not None:
        terms = model.voice_stream.contributions(voice_features([row], model.voice_stream.measures))[0]
        out["contributions"] = dict(zip(model.voice_stream.measures, map(float, terms), strict=True))
        out["p_pd"] = float(_p(margin, 1.0))
    return out


def _gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000 / fps)),
        loop=0,
    )
    return buf.getvalue()


# -- service helpers --------------------------------------------------------------------------------
_PSEUDONYM = __import__("re").compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def check_pseudonym(value: str, field_name: str) -> None:
    """``subject_ref``/``session`` are pseudonymous codes (letters, digits, . _ : -, up to 64), never
    names: a value with spaces or other characters is refused rather than logged."""
    if value and not _PSEUDONYM.fullmatch(value):
        raise Refusal(
            f"bad_{field_name}",
            f"{field_name} must be a pseudonymous code of letters, digits and . _ : - (up to 64)",
            422,
            "use a study code such as 'pt-0042', never a name or record number",
        )


def read_tube_upload(path: Path, model: ServedModel) -> np.ndarray:
    """Frames of an uploaded tube: a facetubes ``.npz`` (docs/data-format.md section 3, ``frames``) or a
    bare ``.npy``; ``T x S x S x 3`` uint8 with S the model's tube side. No pickles are ever loaded."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
        if head.startswith(b"PK"):
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"]
        elif head == b"\x93NUMPY":
            frames = np.load(path, allow_pickle=False)
        else:
            raise Refusal("not_a_tube", "the upload is neither a .npz face tube nor a .npy array", 415,
                          "send the facetubes .npz (field 'frames') or a .npy of T x S x S x 3 uint8 frames")  # fmt: skip
    except (OSError, KeyError, ValueError) as e:
        raise Refusal("not_a_tube", f"the tube cannot be read ({type(e).__name__})", 422) from None
    return check_tube(frames, model)


def check_tube(frames: np.ndarray, model: ServedModel) -> np.ndarray:
    """The frames of a tube the model can answer: ``T x S x S x 3`` uint8 with S the model's tube side
    and at least facetubes' minimum of frames; :class:`Refusal` otherwise. Every tube route calls it
    (``/predict_tube``'s upload, the Open Inference Protocol's tensor), so they refuse alike."""
    s = model.face_tubes.size
    if frames.ndim != 4 or frames.shape[1:] != (s, s, 3) or frames.dtype != np.uint8:
        raise Refusal("bad_tube", f"tube frames must be T x {s} x {s} x 3 uint8, got {frames.shape} {frames.dtype}", 422)  # fmt: skip
    if len(frames) < model.face_tubes.min_frames:
        raise Refusal(
            "too_few_face_frames", f"{len(frames)} frames; at least {model.face_tubes.min_frames}", 422
        )
    return frames


def warm_up_face_models(model: ServedModel) -> None:
    """Load mediapipe's face models and run them once, so the first request pays nothing extra."""
    from hypomimia.doctor import sample_face_rgb
    from hypomimia.faces.track import FaceTracker

    with FaceTracker(model.face_tubes) as tracker:
        face = sample_face_rgb()
        tracker.track(face, 0)  # detection + FaceMesh
        tracker.track(face, 1)


def describe_source(src: ModelSource) -> str:
    where = f"{src.name} v{src.version}" if src.version else f"{src.name} ({src.uri})"
    return where + (f" @{src.alias}" if src.alias else "") + (f" -- {src.note}" if src.note else "")
