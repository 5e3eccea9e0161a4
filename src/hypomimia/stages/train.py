"""Stage `train`: face tubes + folds -> a trained I3D, its metrics, and an MLflow run.

Streams: the I3D's margin, fused late with the landmark stream (``train.landmark_stream``) and then with
the voice (``train.voice_stream``, from the voice stage's table: ``voice_dir``); see
:mod:`hypomimia.learning.fusion`. The final margin is the one every metric and the endpoint use.

Split: ``cfg.fold`` is the held-out test fold, fold ``cfg.fold + 1`` (mod folds) the validation
fold (early stopping on its subject-level AUROC, temperature scaling), the rest train. Folds are
subject-grouped by ingest, so no subject is on both sides.

Exact resume: a checkpoint at the end of every epoch holds model, optimizer, scheduler, early
stopping state and the RNG state; clip sampling and augmentation depend only on
``(seed, epoch, index)``. A run killed mid-epoch restarts that epoch from the last checkpoint and
ends with the same numbers as an uninterrupted run (deterministic mode, same thread count).

DDP: launched by ``torchrun`` or a Kubeflow PyTorchJob, every rank calls :func:`run`; rank 0
alone writes files and talks to MLflow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from hypomimia import jsonio
from hypomimia.config.train import TrainConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.learning import ddp, mlflow_runs
from hypomimia.learning.clips import (
    ClipDataset,
    EpochSampler,
    prepare_frame_cache,
)
from hypomimia.learning.fusion import fit_two_streams, fit_voice_stream
from hypomimia.learning.metrics import evaluate, fit_temperature, with_probability
from hypomimia.learning.training import (
    BEST,
    CHECKPOINT,
    AllHeads,
    IndexedClips,
    class_weights,
    config_fingerprint,
    data_fingerprint,
    load_checkpoint,
    load_split,
    lr_lambda,
    make_loader,
    predict_clips,
    save_checkpoint,
    set_determinism,
    subject_auroc_and_nll,
    train_epoch,
)
from hypomimia.lineage.provenance import mlflow_tags, run_name
from hypomimia.lineage.registry import on_registered, training_lineage
from hypomimia.models import LABELS, build_model, clip_contract, save_model, to_channels_last
from hypomimia.models.metadata import build_metadata, verify_model, write_metadata

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_path: Path
    metadata_path: Path
    metrics_path: Path
    metrics: dict  # evaluate() on the test fold
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    temperature: float
    history: list[dict] = field(default_factory=list)
    run_id: str | None = None
    model_uri: str | None = None
    registered_version: str | None = None
    tracking_uri: str | None = None
    counts: dict = field(default_factory=dict)


class SimulatedCrash(RuntimeError):
    """Raised by the ``crash_after_steps`` test hook (a kill at a known point)."""


# --- the stage -------------------------------------------------------------------------------


def run(
    cfg: TrainConfig,
    tubes_dir: Path,
    ingest_dir: Path,
    out_dir: Path,
    tracking_uri: str | None = None,
    resume: bool = True,
    *,
    voice_dir: Path | None = None,
    crash_after_steps: int | None = None,
) -> TrainResult:
    """Train on the split ``cfg.fold`` defines; write model.pt, metadata.json, metrics.json.

    ``tracking_uri``: MLflow store (None: ``MLFLOW_TRACKING_URI`` or ``work/mlflow``; ``"off"``: no
    MLflow). ``voice_dir``: the voice stage's folder, needed by ``train.voice_stream``.
    ``crash_after_steps``: test hook raising :class:`SimulatedCrash` after that many optimizer steps
    of this call.
    """
    tubes_dir, ingest_dir, out_dir = Path(tubes_dir), Path(ingest_dir), Path(out_dir)
    d = ddp.init_distributed()
    torch.set_num_threads(cfg.threads)
    set_determinism(cfg)
    split = load_split(cfg, tubes_dir, ingest_dir)
    voice = _voice_table(cfg, voice_dir, tubes_dir, split)  # checked before hours of training, not after
    digest = mlflow_runs.tubes_digest(tubes_dir, [it.tube for it in split.train + split.val + split.test])
    data_id = data_fingerprint(split, digest)
    mc = cfg.model

    cache = out_dir / "frame_cache"
    if d.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = prepare_frame_cache(split.train + split.val + split.test, cache)
    ddp.barrier(d)
    files = prepare_frame_cache(split.train + split.val + split.test, cache)  # all present: just paths
    common = {
        "frame_files": files,
        "frames": mc.frames,
        "stride": cfg.stride,
        "size": mc.size,
        "seed": cfg.seed,
    }
    train_ds = ClipDataset(
        split.train, train=True, clips_per_video=cfg.clips_per_video, augment=cfg.augment, **common
    )
    val_ds = IndexedClips(split.val, train=False, clips_per_video=cfg.eval_clips_per_video, **common)
    test_ds = IndexedClips(split.test, train=False, clips_per_video=cfg.eval_clips_per_video, **common)
    train_sampler = EpochSampler(len(train_ds), shuffle=True, seed=cfg.seed, rank=d.rank, world=d.world)
    train_dl = make_loader(train_ds, train_sampler, cfg, d.device)
    val_dl = make_loader(
        val_ds, EpochSampler(len(val_ds), shuffle=False, rank=d.rank, world=d.world), cfg, d.device
    )
    test_dl = make_loader(
        test_ds, EpochSampler(len(test_ds), shuffle=False, rank=d.rank, world=d.world), cfg, d.device
    )

    model = build_model(mc).to(d.device)
    if cfg.channels_last:
        model = to_channels_last(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, len(train_dl)))
    weights = class_weights(split.train, cfg.class_weighting).to(d.device)

    state = None
    if resume:
        state = load_checkpoint(out_dir / CHECKPOINT, cfg, data_id)
    elif d.is_main:
        for f in (out_dir / CHECKPOINT, out_dir / BEST):
            f.unlink(missing_ok=True)
    ddp.barrier(d)
    progress = {
        "epoch": 0,
        "best_auc": -1.0,
        "best_nll": float("inf"),
        "best_epoch": -1,
        "bad_epochs": 0,
        "history": [],
        "stopped_early": False,
        "run_id": None,
    }
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        progress = state["progress"]
        log.info("resuming after epoch %d", progress["epoch"])

    net: nn.Module = AllHeads(model)  # DDP syncs gradients only through the wrapped module's forward
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)

    tracker = _Tracker(cfg, tubes_dir, digest, tracking_uri, progress.get("run_id")) if d.is_main else None
    if tracker is not None:
        progress["run_id"] = tracker.run_id
    steps_done = 0
    # Test hook for a real kill (tests/model/test_train_resume_sigkill.py): SIGKILL after that many steps.
    kill_at = int(os.environ["HYPOMIMIA_KILL_AT_STEP"]) if os.environ.get("HYPOMIMIA_KILL_AT_STEP") else None

    def on_step() -> None:
        nonlocal steps_done
        steps_done += 1
        if crash_after_steps is not None and steps_done >= crash_after_steps:
            raise SimulatedCrash(f"simulated crash after {steps_done} steps")
        if kill_at is not None and steps_done >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all, as when a node dies

    try:
        while progress["epoch"] < cfg.epochs and not progress["stopped_early"]:
            epoch = progress["epoch"]
            train_sampler.set_epoch(epoch)
            net.train()
            t0 = time.perf_counter()
            losses, n_clips = train_epoch(
                net, model, train_dl, optimizer, scheduler, weights, cfg, d.device, on_step
            )
            train_time = time.perf_counter() - t0
            val_clips = predict_clips(model, val_dl, val_ds, cfg, d.device, d)
            val_auc, val_nll = subject_auroc_and_nll(val_clips)
            better = val_auc > progress["best_auc"] or (
                val_auc == progress["best_auc"] and val_nll < progress["best_nll"]
            )
            if math.isnan(val_auc):
                better = val_nll < progress["best_nll"]
            row = {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "val_subject_auroc": val_auc,
                "val_clip_nll": val_nll,
                "lr": scheduler.get_last_lr()[0],
                "train_s": train_time,
                "train_clips_per_s": n_clips * d.world / train_time,
            }
            progress["history"].append(row)
            # select: last keeps every epoch's weights in turn (the schedule's end wins); best keeps the epoch
            # of best validation AUROC, which on a fold of 8 subjects often picks an undertrained epoch 1.
            keep = better or cfg.select == "last"
            if better:
                progress.update(best_auc=val_auc, best_nll=val_nll, bad_epochs=0)
            else:
                progress["bad_epochs"] += 1
                progress["stopped_early"] = cfg.select == "best" and progress["bad_epochs"] >= cfg.patience
            if keep:
                progress["best_epoch"] = epoch + 1
            progress["epoch"] = epoch + 1
            log.info(
                "epoch %d/%d loss %.4f val subject AUROC %.3f (%.1f clips/s)",
                epoch + 1,
                cfg.epochs,
                row["train_loss"],
                val_auc,
                row["train_clips_per_s"],
            )
            if d.is_main:
                if keep:
                    save_checkpoint(out_dir / BEST, {"model": model.state_dict(), "epoch": epoch + 1})
                save_checkpoint(
                    out_dir / CHECKPOINT,
                    {
                        "config": config_fingerprint(cfg),
                        "data": data_id,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": {
                            "torch": torch.get_rng_state(),
                            "numpy": np.random.get_state(),
                            "python": random.getstate(),
                        },
                        "progress": progress,
                    },
                )
                tracker.epoch(row)
            ddp.barrier(d)

        # Final: the kept weights (train.select), temperature on validation, metrics on the held-out test fold.
        best = torch.load(out_dir / BEST, map_location="cpu", weights_only=True)
        model.load_state_dict(best["model"])
        val_clips = predict_clips(model, val_dl, val_ds, cfg, d.device, d)
        test_clips = predict_clips(model, test_dl, test_ds, cfg, d.device, d)
        temperature = fit_temperature(val_clips["margin"].to_numpy(), val_clips["label"].to_numpy())
        streams = None
        if cfg.landmark_stream.enabled and mc.arch == "i3d":
            # The second stream: landmark motion, fused late (models/fusion.py); from here on, margin is fused.
            landmark, fusion, val_clips, test_clips = fit_two_streams(
                cfg.landmark_stream, split.train, split.val + split.test, val_clips, test_clips, temperature
            )
            temperature = fusion.temperature
            streams = {"landmark_stream": landmark.to_dict(), "fusion": fusion.to_dict()}
            log.info("stream weights on validation: %s", {k: round(v, 3) for k, v in fusion.weights.items()})
        voice_note = None
        if voice is not None:
            # The second modality: the voice, fused with the visual margin; videos without voice keep it.
            fitted = fit_voice_stream(
                cfg.voice_stream, voice, split.train, val_clips, test_clips, temperature
            )
            if isinstance(fitted, str):
                voice_note = fitted
                log.warning("voice stream: %s", fitted)
            else:
                stream, voice_fusion, val_clips, test_clips = fitted
                temperature = voice_fusion.temperature
                streams = {**(streams or {}), "voice_stream": stream.to_dict(),
                           "voice_fusion": voice_fusion.to_dict()}  # fmt: skip
                log.info("voice fusion on validation (%s): %s", voice_fusion.method,
                         {k: round(v, 3) for k, v in voice_fusion.weights.items()})  # fmt: skip
        kw = {
            "temperature": temperature,
            "abstain_band": cfg.abstain_band,
            "n_bootstrap": cfg.bootstrap,
            "seed": cfg.seed,
            "video_info": split.info,
        }
        metrics = evaluate(test_clips, **kw)
        if streams is not None or voice_note:
            metrics["streams"] = _stream_metrics(test_clips, streams or {}, voice_note)
        metrics["validation"] = evaluate(val_clips, **{**kw, "n_bootstrap": 0})["overall"]["subject"]
        metrics["split"] = {"test_fold": cfg.fold, "repeat": cfg.repeat, **split.counts}
        metrics["best_epoch"] = progress["best_epoch"]
        log.info(
            "rank %d/%d: test subject AUROC %.6f, temperature %.6f",
            d.rank,
            d.world,
            metrics["overall"]["subject"]["auroc"],
            temperature,
        )
        result = TrainResult(
            out_dir / "model.pt",
            out_dir / "metadata.json",
            out_dir / "metrics.json",
            metrics,
            progress["best_epoch"],
            progress["epoch"],
            progress["stopped_early"],
            temperature,
            progress["history"],
            counts=split.counts,
        )
        if d.is_main:
            run_id = tracker.run_id if tracker is not None and tracker.on else None
            _write_outputs(result, cfg, model, tubes_dir, split, val_clips, test_clips, temperature, run_id,
                           streams, voice)  # fmt: skip
            if tracker is not None:
                tracker.finish(result, model, out_dir)
    except BaseException:
        if tracker is not None:
            tracker.fail()
        raise
    ddp.barrier(d)
    return result


def _voice_table(cfg: TrainConfig, voice_dir: Path | None, tubes_dir: Path, split):
    """The voice stage's table when the recipe has a voice stream (the i3d's), checked against the tubes."""
    if not (cfg.voice_stream.enabled and cfg.model.arch == "i3d"):
        return None
    if voice_dir is None:
        raise UserError(
            "train.voice_stream is enabled but no voice table was given",
            "pass the voice stage's folder (hypomimia train --voice work/voice), or set "
            "train.voice_stream.enabled: false for a visual-only model",
        )
    from hypomimia.voice.table import check_videos, read_voice_table

    table = read_voice_table(Path(voice_dir))
    used = {it.video_id for it in split.train + split.val + split.test}
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes", ["video_id", "sha256"])
    check_videos(table, tubes[tubes["video_id"].isin(used)])
    return table


def _modalities(streams: dict | None) -> list[str]:
    streams = streams or {}
    return [
        "video",
        *(["landmarks"] if "fusion" in streams else []),
        *(["voice"] if "voice_fusion" in streams else []),
    ]


def _write_outputs(
    result, cfg, model, tubes_dir, split, val_clips, test_clips, temperature, run_id, streams, voice
) -> None:
    out_dir = result.model_path.parent
    fps = _tube_fps(split.train[0].tube)
    clip = clip_contract(cfg.model, fps=fps / cfg.stride if fps else None)
    save_model(
        result.model_path,
        model,
        cfg.model,
        clip=clip,
        extra={
            "temperature": temperature,
            "abstain_band": cfg.abstain_band,
            "stride": cfg.stride,
            "tube_fps": fps,
            "eval_clips_per_video": cfg.eval_clips_per_video,
            **(streams or {}),
        },
    )
    meta = build_metadata(
        model_config=cfg.model.model_dump(mode="json"),
        clip=clip,
        labels=LABELS,
        metrics=_headline(result.metrics),
        data={"tubes": tubes_dir.name, **split.counts},
        train_params=cfg.model_dump(mode="json"),
        modalities=_modalities(streams),
    )
    # Lineage: explain and serving find the model's MLflow run from the artifact alone.
    meta["mlflow"] = {"run_id": run_id}
    # The endpoint extracts tubes with exactly these params (FacetubesConfig without workers).
    meta["face_tubes"] = _tube_params_of(tubes_dir)
    meta["lineage"] = training_lineage(cfg, tubes_dir, split)  # data version + every video's sha256
    if streams and "voice_stream" in streams:
        # ... and measures an upload's voice with exactly these (the voice table's params and version).
        meta["voice"] = voice.lineage()
        meta["lineage"]["voice"] = {k: v for k, v in meta["voice"].items() if k != "params"}
    verify_model(model.cpu(), meta)
    write_metadata(result.metadata_path, meta)
    result.metrics_path.write_text(jsonio.dumps(result.metrics))  # standard JSON: null + reason, never NaN
    preds = pd.concat(
        [
            with_probability(val_clips, temperature).assign(split="val"),
            with_probability(test_clips, temperature).assign(split="test"),
        ]
    )
    preds.to_parquet(out_dir / "predictions.parquet", index=False)
    (out_dir / "history.json").write_text(jsonio.dumps(result.history))


def _stream_metrics(test_clips: pd.DataFrame, streams: dict, voice_note: str | None = None) -> dict:
    """Each stream alone on the test fold (subject AUROC), beside the fused model: the ablation for free.

    ``visual`` is the model without the voice; ``voice`` (and ``voiced_subjects``) count only the test
    subjects with voice, the others have no voice margin."""
    from hypomimia.learning.metrics import auroc

    fusion, voice_fusion = streams.get("fusion"), streams.get("voice_fusion")
    video_t = (fusion or {}).get("video_temperature") or (voice_fusion or {}).get("visual_temperature", 1.0)
    columns = [("video", "margin_video", video_t)]
    if fusion:
        columns.append(("landmarks", "margin_landmarks", 1.0))
    if voice_fusion:
        columns += [("visual", "margin_visual", 1.0), ("voice", "margin_voice", 1.0)]
    columns.append(("fused", "margin", 1.0))

    def subject_auroc(clips: pd.DataFrame, col: str, t: float) -> tuple[float, int]:
        clips = clips[clips[col].notna()]
        s = with_probability(clips.assign(margin=clips[col]), t).groupby("subject_id")
        s = s.agg(label=("label", "first"), p=("p", "mean"))
        return auroc(s["label"].to_numpy(), s["p"].to_numpy()), len(s)

    out = {}
    for name, col, t in columns:
        if col in test_clips:
            value, n = subject_auroc(test_clips, col, t)
            out[name] = {"test_subject_auroc": value, "subjects": n}
    if voice_fusion:
        with_voice = test_clips.loc[test_clips["margin_voice"].notna(), "subject_id"].unique()
        voiced = test_clips[test_clips["subject_id"].isin(with_voice)]  # their videos without voice too
        out["voiced_subjects"] = {
            name: subject_auroc(voiced, col, 1.0)[0] for name, col in (("visual", "margin_visual"), ("fused", "margin"))
        } | {"subjects": int(voiced["subject_id"].nunique())}  # fmt: skip
    if fusion:
        out["fusion"] = fusion
    if voice_fusion:
        out["voice_fusion"] = voice_fusion
    if voice_note:
        out["voice"] = {"test_subject_auroc": None, "skipped": voice_note}
    return out


def _tube_params_of(tubes_dir: Path) -> dict | None:
    """The face-tube params the facetubes stage recorded in its report (None for tubes made before it did)."""
    try:
        return json.loads((tubes_dir / "report.json").read_text()).get("params")
    except (OSError, ValueError):
        return None


def _tube_fps(tube: Path) -> float | None:
    try:
        with np.load(tube) as z:
            return float(z["fps"])
    except (OSError, KeyError, ValueError):
        return None


def _headline(metrics: dict) -> dict:
    s = metrics["overall"]["subject"]
    return {
        "test_subject_auroc": s["auroc"],
        "test_subject_auroc_ci95": s["auroc_ci95"],
        "test_subject_balanced_accuracy": s["balanced_accuracy"],
        "temperature": metrics["temperature"],
    }


class _Tracker:
    """The MLflow run of one training (rank 0). Resumed runs continue the same MLflow run."""

    def __init__(self, cfg: TrainConfig, tubes_dir: Path, digest: str, tracking_uri: str | None, run_id):
        self.cfg, self.run_id, self.on = cfg, run_id, tracking_uri != "off"
        if not self.on:
            return
        import mlflow

        self.uri = tracking_uri or mlflow_runs.default_tracking_uri()
        exp = mlflow_runs.setup_experiment(self.uri, cfg.experiment)
        name = None if run_id else run_name("train", cfg, fold=cfg.fold, r=cfg.repeat)
        run = mlflow.start_run(run_id=run_id, experiment_id=None if run_id else exp, log_system_metrics=True, run_name=name)  # fmt: skip
        self.run_id = run.info.run_id
        if run_id is None:  # first start: params, data lineage
            mlflow.set_tags(mlflow_runs.data_version_tags(tubes_dir, digest))
            mlflow.set_tags(mlflow_tags("train", cfg, {"tubes": tubes_dir / "tubes.parquet"}, fold=cfg.fold, repeat=cfg.repeat))  # fmt: skip
            mlflow.log_params(mlflow_runs.flatten(cfg.model_dump(mode="json")))
            table = pd.read_parquet(tubes_dir / "tubes.parquet")
            cols = [
                c for c in ("video_id", "subject_id", "label", "updrs_3_2", "task", "sha256") if c in table
            ]
            table = table[cols]
            # Integer columns as float: MLflow's schema inference warns that ints cannot hold a missing
            # value (updrs_3_2 of a control may be missing); a local folder matches two equivalent
            # dataset-source types, which MLflow also warns about. Neither is news to the user.
            table = table.astype({c: "float64" for c in cols if pd.api.types.is_integer_dtype(table[c])})
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=".*can be interpreted in multiple ways", category=UserWarning
                )
                ds = mlflow.data.from_pandas(
                    table, source=str(tubes_dir.resolve()), name="facetubes", digest=digest, targets="label"
                )
            mlflow.log_input(ds, context="training")

    def epoch(self, row: dict) -> None:
        if self.on:
            import mlflow

            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch" and v == v}, step=row["epoch"])

    def finish(self, result: TrainResult, model: nn.Module, out_dir: Path) -> None:
        if not self.on:
            return
        import mlflow

        mlflow.log_metrics(mlflow_runs.numeric_metrics(result.metrics, "test."))
        mlflow.log_metrics({"best_epoch": result.best_epoch, "temperature": result.temperature})
        for name in ("metrics.json", "metadata.json", "history.json", "model.pt"):
            mlflow.log_artifact(str(out_dir / name))
        if self.cfg.log_model:
            uri, version = mlflow_runs.log_torch_model(
                model.cpu().eval(),
                frames=self.cfg.model.frames,
                size=self.cfg.model.size,
                registered_model=self.cfg.registered_model or None,
            )
            result.model_uri, result.registered_version = uri, version
            if version is not None:  # tags, model card and a `register` audit record on the new version
                on_registered(self.cfg.registered_model, version, self.run_id, self.cfg, out_dir, self.uri)
        result.run_id, result.tracking_uri = self.run_id, self.uri
        mlflow.end_run()

    def fail(self) -> None:
        if self.on:
            import mlflow

            mlflow.end_run(status="KILLED")


# `asdict` is handy for callers that want plain JSON of the result.
__all__ = ["CHECKPOINT", "SimulatedCrash", "TrainResult", "asdict", "load_split", "run"]
