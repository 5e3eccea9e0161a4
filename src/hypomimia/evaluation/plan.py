"""What gets trained on which fold: models and temporal settings, each a list of (setting, fold, seed) tasks.

Every setting is evaluated on the same test folds of one fold assignment (ingest's folds.parquet),
so any two settings are paired subject by subject. A setting's runs are keyed by what changes the
result (model, frames, stride): the ablation's "14 frames, fixed stride" point *is* the reference
model, trained once and reported under both names.

Network settings are trained once per ``evaluate.seeds`` (the training seed), on the same folds, so
the report can show how much of a result is the seed's; landmark and voice baselines (scikit-learn,
deterministic) are fitted once. A task is (setting, fold, seed), seed ``None`` for those baselines.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from hypomimia.config.evaluate import EvaluateConfig
from hypomimia.config.train import TrainConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError

NETWORKS = ("i3d", "r3d18", "resnet2d50")


@dataclass(frozen=True)
class Setting:
    name: str  # "i3d", "landmark_static", "i3d/fixed_duration/f8"
    model: str  # network arch or landmark kind
    frames: int | None = None  # networks only
    stride: int | None = None
    design: str | None = None  # ablation settings: fixed_stride | fixed_duration

    @property
    def network(self) -> bool:
        return self.model in NETWORKS

    @property
    def run_key(self) -> str:
        """Folder name of this setting's runs; equal for settings that train the same thing."""
        return f"{self.model}-f{self.frames}-s{self.stride}" if self.network else self.model

    def to_dict(self) -> dict:
        return asdict(self)


def fixed_duration_stride(frames: int, train: TrainConfig) -> int:
    """The stride that makes a ``frames`` clip span what the shipped clip spans (within rounding)."""
    span = (train.model.frames - 1) * train.stride
    return max(1, min(32, round(span / max(1, frames - 1))))


def _comparison_setting(model: str, cfg: EvaluateConfig, train: TrainConfig) -> Setting:
    if model not in NETWORKS:
        return Setting(model, model)
    if model == "resnet2d50" and cfg.frames_2d is not None:
        # Per-frame model: its clip spans the shipped clip's time with fewer frames (order is lost anyway).
        return Setting(model, model, cfg.frames_2d, fixed_duration_stride(cfg.frames_2d, train))
    return Setting(model, model, train.model.frames, train.stride)


def settings(cfg: EvaluateConfig, train: TrainConfig) -> list[Setting]:
    """The model comparison (shipped frames and stride) then the reference network's temporal ablation."""
    out = [_comparison_setting(m, cfg, train) for m in cfg.models]
    if cfg.reference in NETWORKS:
        for design in cfg.ablation.designs:
            for f in cfg.ablation.frames:
                stride = train.stride if design == "fixed_stride" else fixed_duration_stride(f, train)
                out.append(Setting(f"{cfg.reference}/{design}/f{f}", cfg.reference, f, stride, design))
    return out


def train_config(
    setting: Setting, train: TrainConfig, fold: int, epochs: int | None, seed: int | None = None
) -> TrainConfig:
    """The train params of one network task: the shipped ones with the setting, fold, epochs and seed
    (``None`` = train.seed) applied; nothing registered (evaluation runs are measurements, not candidates)."""
    # The frame-difference, landmark and voice streams are part of the I3D recipe; the comparison networks
    # see plain RGB only (evaluate reports the I3D's video stream alone, and without the voice, as well).
    stream = train.model.stream if setting.model == "i3d" else "rgb"
    landmark_stream = train.landmark_stream.model_copy(
        update={"enabled": setting.model == "i3d" and train.landmark_stream.enabled}
    )
    voice_stream = train.voice_stream.model_copy(
        update={"enabled": setting.model == "i3d" and train.voice_stream.enabled}
    )
    model = train.model.model_copy(update={"arch": setting.model, "frames": setting.frames, "stream": stream})
    update = {
        "model": model,
        "stride": setting.stride,
        "fold": fold,
        "seed": train.seed if seed is None else seed,
        "registered_model": "",
        "log_model": False,
        "landmark_stream": landmark_stream.model_dump(),
        "voice_stream": voice_stream.model_dump(),
    }
    if epochs is not None:
        update["epochs"] = epochs
        update["warmup_epochs"] = min(train.warmup_epochs, epochs)
    return TrainConfig.model_validate(
        {
            **train.model_dump(),
            **{k: v for k, v in update.items() if k != "model"},
            "model": model.model_dump(),
        }
    )


def load_folds(ingest_dir: Path, repeat: int) -> pd.DataFrame:
    """video_id, subject_id, label, fold of one repeat of ingest's folds."""
    folds = read_stage_table(Path(ingest_dir), "folds.parquet", "ingest")
    folds = folds[folds["repeat"] == repeat]
    if folds.empty:
        raise UserError(f"folds.parquet has no repeat {repeat}", "set train.repeat to one ingest made")
    return folds.assign(subject_id=folds["subject_id"].astype(str))


def test_folds(cfg: EvaluateConfig, folds: pd.DataFrame) -> list[int]:
    n = int(folds["fold"].max()) + 1
    wanted = cfg.folds or list(range(n))
    bad = [k for k in wanted if not 0 <= k < n]
    if bad:
        raise UserError(
            f"evaluate.folds {bad} do not exist (ingest made folds 0..{n - 1})", "pick existing folds"
        )
    return sorted(set(wanted))


def folds_digest(folds: pd.DataFrame) -> str:
    """sha256 (16 hex) of the sorted (subject, fold) pairs: equal digests = the same fold assignment."""
    pairs = sorted({(str(s), int(f)) for s, f in zip(folds["subject_id"], folds["fold"], strict=True)})
    return hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    setting: Setting
    fold: int
    seed: int | None = None  # the network's train.seed; None for a (deterministic) landmark baseline

    @property
    def folder(self) -> str:
        if self.seed is None:
            return f"{self.setting.run_key}/fold{self.fold}"
        return f"{self.setting.run_key}/seed{self.seed}/fold{self.fold}"


def seeds_of(setting: Setting, cfg: EvaluateConfig) -> list[int | None]:
    """The training seeds a setting is run with: every evaluate.seeds for the reference recipe,
    evaluate.baseline_seeds (default: the same) for the other networks, one fit for a landmark baseline."""
    if not setting.network:
        return [None]
    if setting.name == cfg.reference or cfg.baseline_seeds is None:
        return list(cfg.seeds)
    return list(cfg.baseline_seeds)


def tasks(cfg: EvaluateConfig, train: TrainConfig, folds: list[int]) -> list[Task]:
    """One task per distinct (run key, fold, seed), in a stable order (seed-major within a setting)."""
    seen, out = set(), []
    for s in settings(cfg, train):
        for seed in seeds_of(s, cfg):
            for k in folds:
                if (s.run_key, k, seed) not in seen:
                    seen.add((s.run_key, k, seed))
                    out.append(Task(s, k, seed))
    return out
