from typing import Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section
from hypomimia.voice.schema import MEASURES

VoiceMeasure = Literal[MEASURES]


class ModelConfig(Section):
    arch: Literal["i3d", "resnet2d50", "r3d18"] = Field(
        "i3d", description="i3d (the model); r3d18 / resnet2d50 (per-frame 2D) are comparison baselines"
    )
    width: float = Field(0.25, gt=0.0, le=2.0, description="channel width multiplier (1.0 = paper I3D)")
    frames: int = Field(14, ge=4, le=64, description="frames per clip")
    size: int = Field(
        112, ge=32, le=320, multiple_of=16, description="clip side in pixels (paper 224, CPU profile 112)"
    )
    stream: Literal["rgb", "rgb+diff"] = Field(
        "rgb",
        description="rgb+diff: the network also sees frame differences (a cheap stand-in for I3D's flow stream)",
    )
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    severity_head: Literal["none", "regression", "ordinal"] = Field(
        "none", description="extra head on the shared trunk predicting MDS-UPDRS 3.2 (0-4)"
    )
    init: str | None = Field(
        None, description="local file of 2D Inception-v1 or 3D I3D weights; never downloaded"
    )


class AugmentConfig(Section):
    """Train-time augmentation. One random transform per clip, applied to every frame alike, so
    facial motion between frames is untouched (no temporal shuffling or per-frame jitter)."""

    crop_scale: tuple[float, float] = Field((0.8, 1.0), description="side of the random crop / tube side")
    flip: bool = Field(True, description="random horizontal flip")
    brightness: float = Field(0.2, ge=0.0, lt=1.0, description="multiply by U(1-b, 1+b)")
    rotation_deg: float = Field(8.0, ge=0.0, le=45.0, description="random in-plane rotation, degrees")

    @model_validator(mode="after")
    def _scale_order(self):
        lo, hi = self.crop_scale
        if not 0.3 <= lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0.3 <= low <= high <= 1.0, got {self.crop_scale}")
        return self


class LandmarkStreamConfig(Section):
    """The I3D recipe's second stream: the tubes' landmark motion, fused late (hypomimia.models.fusion)."""

    enabled: bool = Field(
        False,
        description="fit a logistic regression on the landmark-trajectory features of the training videos and "
        "fuse its margin with the network's (the shipped recipe; docs/training.md). Only the i3d has it",
    )
    fusion_c: float = Field(
        1.0,
        gt=0.0,
        description="inverse L2 strength of the stacking regression that weighs the two standardised streams "
        "on the validation fold's clips (smaller: more cautious weights and probabilities)",
    )
    c: float = Field(1.0, gt=0.0, description="inverse L2 strength of the landmark logistic regression")
    blink_threshold: float = Field(
        0.7, gt=0.0, lt=1.0, description="a blink: eye aspect ratio below this fraction of the tube's median"
    )


class VoiceStreamConfig(Section):
    """The voice as a second modality: Praat measures of the clip's speech, fused late with the face
    (hypomimia.models.fusion.VoiceStream; docs/voice.md, "The voice model")."""

    enabled: bool = Field(
        False,
        description="fit a logistic regression on the voice measures of the training videos that have voice "
        "(train --voice work/voice) and fuse its margin with the visual one on the validation videos that "
        "have voice; videos without voice keep the visual margin. Only the i3d has it",
    )
    measures: list[VoiceMeasure] = Field(
        default_factory=lambda: [m for m in MEASURES if m != "f0_mean_hz"],
        min_length=1,
        description="voice measures the regression reads (voice.parquet columns). f0_mean_hz is left out by "
        "default: it tells sex and age, not disease, so a model reading it would learn the cohort's mix",
    )
    c: float = Field(1.0, gt=0.0, description="inverse L2 strength of the voice logistic regression")
    fusion_c: float = Field(
        0.03,
        gt=0.0,
        description="inverse L2 strength of the stacking regression that weighs the standardised visual and "
        "voice margins on the validation videos that have voice",
    )
    min_subjects: int = Field(
        3,
        ge=1,
        le=1000,
        description="subjects with voice needed per class: fewer in the training split, no voice stream (the "
        "model stays visual; metrics.json says why); fewer in the validation fold, the stacking regression is "
        "not fitted and the two standardised margins get fixed equal weights (metrics.json says which)",
    )

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.measures)) != len(self.measures):
            raise ValueError(f"measures must be distinct, got {self.measures}")
        return self


class TrainConfig(Section):
    model: ModelConfig = ModelConfig()
    landmark_stream: LandmarkStreamConfig = LandmarkStreamConfig()
    voice_stream: VoiceStreamConfig = VoiceStreamConfig()
    augment: AugmentConfig = AugmentConfig()
    stride: int = Field(2, ge=1, le=32, description="temporal stride between sampled frames")
    fold: int = Field(0, ge=0, description="held-out test fold; fold+1 (mod folds) is the validation fold")
    repeat: int = Field(0, ge=0)
    epochs: int = Field(6, ge=1, le=500)
    batch_size: int = Field(8, ge=1, le=512)
    clips_per_video: int = Field(2, ge=1, le=64, description="random clips drawn per video per epoch")
    eval_clips_per_video: int = Field(
        4, ge=1, le=64, description="evenly spaced clips per video at evaluation"
    )
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    warmup_epochs: float = Field(0.5, ge=0.0)
    grad_clip: float = Field(1.0, gt=0.0)
    class_weighting: bool = True
    severity_weight: float = Field(
        0.5, ge=0.0, description="weight of the severity loss (if a severity head)"
    )
    amp: Literal["off", "bf16"] = Field("off", description="bf16 autocast on CPU and CUDA where supported")
    channels_last: bool = True
    compile: bool = False
    select: Literal["best", "last"] = Field(
        "best",
        description="weights the model keeps: the epoch of best validation subject AUROC (with early "
        "stopping), or the last epoch (the cosine schedule's end; no early stopping)",
    )
    patience: int = Field(
        5, ge=1, description="epochs without a better validation subject AUROC before stopping (select: best)"
    )
    seed: int = Field(0, ge=0)
    deterministic: bool = True
    workers: int = Field(1, ge=0, le=32, description="DataLoader worker processes")
    threads: int = Field(2, ge=1, le=256, description="torch intra-op threads on CPU")
    abstain_band: float = Field(0.1, ge=0.0, lt=0.5, description="|p - 0.5| below this -> 'uncertain'")
    bootstrap: int = Field(1000, ge=0, le=100000, description="subject bootstrap resamples for 95% CIs")
    experiment: str = "hypomimia"
    registered_model: str = Field(
        "hypomimia-i3d", description="MLflow registered model name ('' = do not register)"
    )
    log_model: bool = Field(True, description="log the model to MLflow (signature, pip requirements)")

    @model_validator(mode="after")
    def _fold_in_range(self):
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must not exceed epochs ({self.epochs})")
        return self
