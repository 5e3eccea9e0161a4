"""The pieces of the training loop: the fold split, loaders, LR schedule, losses, one epoch,
prediction, checkpoints. ``stages/train.py`` orchestrates them; evaluation reuses the same pieces.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from hypomimia.config.train import TrainConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.learning import ddp
from hypomimia.learning.clips import LABEL_INDEX, ClipDataset, EpochSampler, TubeItem, worker_init
from hypomimia.learning.metrics import auroc, with_probability

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"


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
    folds = read_stage_table(ingest_dir, "folds.parquet", "ingest")
    if folds.empty:  # ingest takes any batch; only a training cohort gets folds (report.json says why not)
        note = _folds_note(ingest_dir)
        raise UserError(
            f"ingest made no folds, so there is nothing to train on{': ' + note if note else ''}",
            "ingest a training cohort: both labels, at least ingest.folds subjects of each",
        )
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes")
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


def _folds_note(ingest_dir: Path) -> str:
    import json

    try:
        return json.loads((Path(ingest_dir) / "report.json").read_text(encoding="utf-8")).get(
            "folds_note", ""
        )
    except (OSError, ValueError):
        return ""


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


class IndexedClips(ClipDataset):
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


def config_fingerprint(cfg: TrainConfig) -> dict:
    # Workers/threads change speed, not results; everything else must match to resume. A disabled
    # landmark or voice stream changes nothing either, so runs from before it existed keep their fingerprint.
    skip = {"workers", "threads", "experiment", "registered_model", "log_model"}
    if not cfg.landmark_stream.enabled:
        skip.add("landmark_stream")
    if not cfg.voice_stream.enabled:
        skip.add("voice_stream")
    return cfg.model_dump(mode="json", exclude=skip)


def data_fingerprint(split: Split, tubes_digest: str) -> str:
    """What a checkpoint was trained on: the tubes' content digest and which videos are in which split
    (folds and labels), so that a resume never continues a model on other data."""
    h = hashlib.sha256(tubes_digest.encode())
    for name, items in (("train", split.train), ("val", split.val), ("test", split.test)):
        for it in sorted(items, key=lambda i: i.video_id):
            h.update(f"{name}\t{it.video_id}\t{it.subject_id}\t{it.label}\n".encode())
    return h.hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill while saving leaves the previous checkpoint intact


def load_checkpoint(path: Path, cfg: TrainConfig, data: str) -> dict | None:
    """The checkpoint to resume from, if any; refused when written with other params or other data
    (``data``: :func:`data_fingerprint` of this run)."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config") != config_fingerprint(cfg):
        raise UserError(
            "the checkpoint in the output folder was written with different train params",
            "use --no-resume to start over, or a new --out folder",
        )
    if state.get("data") != data:
        raise UserError(
            "the checkpoint in the output folder was trained on other data (the face tubes, the folds or "
            "the labels changed since): resuming would continue a model on data it did not start with",
            "use --no-resume to start over, or a new --out folder",
        )
    return state


def train_epoch(
    net: nn.Module,
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler,
    weights: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    on_step=None,
) -> tuple[list[float], int]:
    """One pass over ``loader``: (per-step losses, clips seen). ``on_step()`` runs after each optimizer step."""
    losses, n_clips = [], 0
    for batch in loader:
        x = batch["clip"].to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        y = batch["label"].to(device)
        with autocast(cfg, device):
            out = net(x)
            loss = F.cross_entropy(out["logits"].float(), y, weight=weights)
            if "severity" in out:
                sev = batch["severity"].to(device, dtype=torch.float32)
                loss = loss + cfg.severity_weight * severity_loss(
                    out["severity"], sev, cfg.model.severity_head
                )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        n_clips += len(y)
        if on_step is not None:
            on_step()
    return losses, n_clips


class AllHeads(nn.Module):
    """``forward`` = the model's ``forward_all`` (logits + severity), for DDP and torch.compile."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_all(x)
