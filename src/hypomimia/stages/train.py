"""Stage `train`: face tubes + folds -> a trained I3D, its metrics, and an MLflow run.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from hypomimia import ddp
from hypomimia.artifacts import read_stage_table
from hypomimia.clips import LABEL_INDEX, ClipDataset, EpochSampler, TubeItem, prepare_frame_cache, worker_init
from hypomimia.config.train import TrainConfig
from hypomimia.errors import UserError
from hypomimia.metrics import auroc, evaluate, fit_temperature, with_probability
from hypomimia.models import LABELS, build_model, clip_contract, save_model
from hypomimia.models.metadata import build_metadata, verify_model, write_metadata

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"


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


# --- data ------------------------------------------------------------------------------------


@dataclass
class Split:
    train: list[TubeItem]
    val: list[TubeItem]
    test: list[TubeItem]
    info: pd.DataFrame  # video_id + metadata columns (task) for slices
    counts: dict


def load_split(cfg: TrainConfig, tubes_dir: Path, ingest_dir: Path) -> Split:
    """Join tubes with folds; every tube is counted as used or skipped with a reason."""
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes")
    folds = read_stage_table(ingest_dir, "folds.parquet", "ingest")
    folds = folds[folds["repeat"] == cfg.repeat]
    if folds.empty:
        raise UserError(f"folds.parquet has no repeat {cfg.repeat}", "set train.repeat to one ingest made")
    n_folds = int(folds["fold"].max()) + 1
    if n_folds < 3:
        raise UserError(
            f"{n_folds} folds: training needs a test, a validation and a train fold", "set ingest.folds >= 3"
        )
    if cfg.fold >= n_folds:
        raise UserError(
            f"train.fold={cfg.fold} but ingest made folds 0..{n_folds - 1}", "pick an existing fold"
        )
    if "status" in tubes:
        tubes = tubes[tubes["status"].fillna("accepted") == "accepted"]
    df = tubes.drop(columns=["label", "subject_id"], errors="ignore").merge(
        folds[["video_id", "subject_id", "label", "fold"]], on="video_id", how="inner"
    )
    counts = {"tubes": len(tubes), "used": len(df), "skipped_no_fold": len(tubes) - len(df)}
    val_fold = (cfg.fold + 1) % n_folds

    def items(part: pd.DataFrame) -> list[TubeItem]:
        return [
            TubeItem(
                r.video_id,
                str(r.subject_id),
                LABEL_INDEX[r.label],
                float(r.updrs_3_2) if "updrs_3_2" in part and pd.notna(r.updrs_3_2) else float("nan"),
                tubes_dir / r.tube,
                int(getattr(r, "n_frames", 0) or 0),
            )
            for r in part.sort_values("video_id").itertuples()
        ]

    split = Split(
        items(df[(df.fold != cfg.fold) & (df.fold != val_fold)]),
        items(df[df.fold == val_fold]),
        items(df[df.fold == cfg.fold]),
        df[["video_id", *[c for c in ("task",) if c in df]]],
        counts,
    )
    for name in ("train", "val", "test"):
        part = getattr(split, name)
        if len({it.label for it in part}) < 2:
            raise UserError(f"the {name} split has only one class", "check ingest's label-stratified folds")
        counts[f"{name}_videos"] = len(part)
        counts[f"{name}_subjects"] = len({it.subject_id for it in part})
    return split


def make_loader(ds: ClipDataset, sampler: EpochSampler, cfg: TrainConfig, device: torch.device) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        worker_init_fn=worker_init,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.workers > 0,
        prefetch_factor=4 if cfg.workers > 0 else None,
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched
    )


# --- training pieces -------------------------------------------------------------------------


def set_determinism(cfg: TrainConfig) -> None:
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    """Linear warm-up then cosine decay to 0, per optimizer step."""
    warm, total = cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return f


def class_weights(items: list[TubeItem], on: bool) -> torch.Tensor:
    counts = np.bincount([it.label for it in items], minlength=2).astype(float)
    if not on:
        return torch.ones(2)
    return torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)


def severity_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """MSE (regression) or cumulative BCE (ordinal, P(score > k)) on clips with a known score."""
    known = ~torch.isnan(target)
    if not known.any():
        return pred.sum() * 0.0
    pred, target = pred[known].float(), target[known].float()
    if kind == "regression":
        return F.mse_loss(pred[:, 0], target)
    levels = torch.arange(pred.shape[1], device=pred.device, dtype=torch.float32)
    return F.binary_cross_entropy_with_logits(pred, (target[:, None] > levels).float())


def autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")


@torch.no_grad()
def predict_clips(
    model: nn.Module, loader: DataLoader, ds: ClipDataset, cfg, device, d: ddp.Dist
) -> pd.DataFrame:
    """One row per clip: video_id, subject_id, label, margin (PD logit - control logit)."""
    model.eval()
    rows = []
    for batch in loader:
        x = batch["clip"].to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with autocast(cfg, device):
            logits = model(x).float()
        margin = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        rows += list(zip(batch["index"].tolist(), margin.tolist(), strict=True))
    rows = [r for part in ddp.all_gather_objects(d, rows) for r in part]
    idx, margin = np.unique(np.array([r[0] for r in rows])), dict(rows)  # DDP pads shards: drop repeats
    owners = [ds.items[ds.clip_owner(i)] for i in idx]
    return pd.DataFrame(
        {
            "clip": idx,
            "video_id": [it.video_id for it in owners],
            "subject_id": [it.subject_id for it in owners],
            "label": [it.label for it in owners],
            "margin": [margin[i] for i in idx],
        }
    )


class _Indexed(ClipDataset):
    """Eval items also carry their clip index (to put DDP shards back together)."""

    def __getitem__(self, key):
        out = super().__getitem__(key)
        out["index"] = key[1] if isinstance(key, tuple) else key
        return out


def subject_auroc_and_nll(clips: pd.DataFrame) -> tuple[float, float]:
    clips = with_probability(clips)
    subj = clips.groupby("subject_id").agg(label=("label", "first"), p=("p", "mean"))
    p = np.clip(clips["p"].to_numpy(), 1e-6, 1 - 1e-6)
    y = clips["label"].to_numpy()
    return auroc(subj["label"].to_numpy(), subj["p"].to_numpy()), float(
        -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    )


# --- checkpoints -----------------------------------------------------------------------------


def _config_fingerprint(cfg: TrainConfig) -> dict:
    # Workers/threads change speed, not results; everything else must match to resume.
    return cfg.model_dump(
        mode="json", exclude={"workers", "threads", "experiment", "registered_model", "log_model"}
    )


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill while saving leaves the previous checkpoint intact


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config") != _config_fingerprint(cfg):
        raise UserError(
            "the checkpoint in the output folder was written with different train params",
            "use --no-resume to start over, or a new --out folder",
        )
    return state


# --- the stage -------------------------------------------------------------------------------


def run(
    cfg: TrainConfig,
    tubes_dir: Path,
    ingest_dir: Path,
    out_dir: Path,
    tracking_uri: str | None = None,
    resume: bool = True,
    *,
    crash_after_steps: int | None = None,
) -> TrainResult:
    """Train on the split ``cfg.fold`` defines; write model.pt, metadata.json, metrics.json.

    ``tracking_uri``: MLflow store (None: ``MLFLOW_TRACKING_URI`` or ``work/mlflow``; ``"off"``: no
    MLflow). ``crash_after_steps``: test hook raising :class:`SimulatedCrash` after that many
    optimizer steps of this call.
    """
    tubes_dir, ingest_dir, out_dir = Path(tubes_dir), Path(ingest_dir), Path(out_dir)
    d = ddp.init_distributed()
    torch.set_num_threads(cfg.threads)
    set_determinism(cfg)
    split = load_split(cfg, tubes_dir, ingest_dir)
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
    val_ds = _Indexed(split.val, train=False, clips_per_video=cfg.eval_clips_per_video, **common)
    test_ds = _Indexed(split.test, train=False, clips_per_video=cfg.eval_clips_per_video, **common)
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
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, len(train_dl)))
    weights = class_weights(split.train, cfg.class_weighting).to(d.device)

    state = None
    if resume:
        state = load_checkpoint(out_dir / CHECKPOINT, cfg)
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

    net: nn.Module = _AllHeads(model)  # DDP syncs gradients only through the wrapped module's forward
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)

    tracker = _Tracker(cfg, tubes_dir, split, tracking_uri, progress.get("run_id")) if d.is_main else None
    if tracker is not None:
        progress["run_id"] = tracker.run_id
    steps_done = 0
    # Test hook for a real kill (tests/model/test_train_resume_sigkill.py): SIGKILL after that many steps.
    kill_at = int(os.environ["HYPOMIMIA_KILL_AT_STEP"]) if os.environ.get("HYPOMIMIA_KILL_AT_STEP") else None
    try:
        while progress["epoch"] < cfg.epochs and not progress["stopped_early"]:
            epoch = progress["epoch"]
            train_sampler.set_epoch(epoch)
            net.train()
            t0, losses, n_clips = time.perf_counter(), [], 0
            for batch in train_dl:
                x = batch["clip"].to(d.device, non_blocking=True)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last_3d)
                y = batch["label"].to(d.device)
                with autocast(cfg, d.device):
                    out = net(x)
                    loss = F.cross_entropy(out["logits"].float(), y, weight=weights)
                    if "severity" in out:
                        sev = batch["severity"].to(d.device, dtype=torch.float32)
                        loss = loss + cfg.severity_weight * severity_loss(
                            out["severity"], sev, mc.severity_head
                        )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                n_clips += len(y)
                steps_done += 1
                if crash_after_steps is not None and steps_done >= crash_after_steps:
                    raise SimulatedCrash(f"simulated crash after {steps_done} steps")
                if kill_at is not None and steps_done >= kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all, as when a node dies
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
            if better:
                progress.update(best_auc=val_auc, best_nll=val_nll, best_epoch=epoch + 1, bad_epochs=0)
            else:
                progress["bad_epochs"] += 1
                progress["stopped_early"] = progress["bad_epochs"] >= cfg.patience
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
                if better:
                    save_checkpoint(out_dir / BEST, {"model": model.state_dict(), "epoch": epoch + 1})
                save_checkpoint(
                    out_dir / CHECKPOINT,
                    {
                        "config": _config_fingerprint(cfg),
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

        # Final: best weights, temperature on validation, metrics on the held-out test fold.
        best = torch.load(out_dir / BEST, map_location="cpu", weights_only=True)
        model.load_state_dict(best["model"])
        val_clips = predict_clips(model, val_dl, val_ds, cfg, d.device, d)
        test_clips = predict_clips(model, test_dl, test_ds, cfg, d.device, d)
        temperature = fit_temperature(val_clips["margin"].to_numpy(), val_clips["label"].to_numpy())
        kw = {
            "temperature": temperature,
            "abstain_band": cfg.abstain_band,
            "n_bootstrap": cfg.bootstrap,
            "seed": cfg.seed,
            "video_info": split.info,
        }
        metrics = evaluate(test_clips, **kw)
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
            _write_outputs(result, cfg, model, tubes_dir, split, val_clips, test_clips, temperature, run_id)
            if tracker is not None:
                tracker.finish(result, model, out_dir)
    except BaseException:
        if tracker is not None:
            tracker.fail()
        raise
    ddp.barrier(d)
    return result


class _AllHeads(nn.Module):
    """``forward`` = the model's ``forward_all`` (logits + severity), for DDP and torch.compile."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_all(x)


def _write_outputs(result, cfg, model, tubes_dir, split, val_clips, test_clips, temperature, run_id) -> None:
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
        },
    )
    meta = build_metadata(
        model_config=cfg.model.model_dump(mode="json"),
        clip=clip,
        labels=LABELS,
        metrics=_headline(result.metrics),
        data={"tubes": tubes_dir.name, **split.counts},
        train_params=cfg.model_dump(mode="json"),
    )
    # Lineage: explain and serving find the model's MLflow run from the artifact alone.
    meta["mlflow"] = {"run_id": run_id}
    verify_model(model.cpu(), meta)
    write_metadata(result.metadata_path, meta)
    result.metrics_path.write_text(json.dumps(result.metrics, indent=2, default=float))
    preds = pd.concat(
        [
            with_probability(val_clips, temperature).assign(split="val"),
            with_probability(test_clips, temperature).assign(split="test"),
        ]
    )
    preds.to_parquet(out_dir / "predictions.parquet", index=False)
    (out_dir / "history.json").write_text(json.dumps(result.history, indent=2))


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

    def __init__(self, cfg: TrainConfig, tubes_dir: Path, split: Split, tracking_uri: str | None, run_id):
        self.cfg, self.run_id, self.on = cfg, run_id, tracking_uri != "off"
        if not self.on:
            return
        import mlflow

        from hypomimia import tracking

        self.uri = tracking_uri or tracking.default_tracking_uri()
        exp = tracking.setup_experiment(self.uri, cfg.experiment)
        run = mlflow.start_run(run_id=run_id, experiment_id=None if run_id else exp, log_system_metrics=True)
        self.run_id = run.info.run_id
        if run_id is None:  # first start: params, data lineage
            files = [it.tube for it in split.train + split.val + split.test]
            digest = tracking.tubes_digest(tubes_dir, files)
            mlflow.set_tags(tracking.data_version_tags(tubes_dir, digest))
            mlflow.log_params(tracking.flatten(cfg.model_dump(mode="json")))
            table = pd.read_parquet(tubes_dir / "tubes.parquet")
            cols = [
                c for c in ("video_id", "subject_id", "label", "updrs_3_2", "task", "sha256") if c in table
            ]
            ds = mlflow.data.from_pandas(
                table[cols], source=str(tubes_dir.resolve()), name="facetubes", digest=digest, targets="label"
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

        from hypomimia import tracking

        mlflow.log_metrics(tracking.numeric_metrics(result.metrics, "test."))
        mlflow.log_metrics({"best_epoch": result.best_epoch, "temperature": result.temperature})
        for name in ("metrics.json", "metadata.json", "history.json", "model.pt"):
            mlflow.log_artifact(str(out_dir / name))
        if self.cfg.log_model:
            uri, version = tracking.log_torch_model(
                model.cpu().eval(),
                frames=self.cfg.model.frames,
                size=self.cfg.model.size,
                registered_model=self.cfg.registered_model or None,
            )
            result.model_uri, result.registered_version = uri, version
        result.run_id, result.tracking_uri = self.run_id, self.uri
        mlflow.end_run()

    def fail(self) -> None:
        if self.on:
            import mlflow

            mlflow.end_run(status="KILLED")


# `asdict` is handy for callers that want plain JSON of the result.
__all__ = ["CHECKPOINT", "SimulatedCrash", "TrainResult", "asdict", "load_split", "run"]
