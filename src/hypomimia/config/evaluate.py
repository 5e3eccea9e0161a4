from typing import Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section

ModelName = Literal[
    "i3d", "r3d18", "resnet2d50", "landmark_static", "landmark_dynamic", "landmark_trajectory", "voice"
]
Design = Literal["fixed_stride", "fixed_duration"]


class AblationConfig(Section):
    """Temporal resolution: the reference network trained at several frame counts per clip."""

    frames: list[int] = Field(
        default_factory=lambda: [4, 8, 14, 16, 32],
        description="frames per clip to compare (empty = no ablation)",
    )
    designs: list[Design] = Field(
        default_factory=lambda: ["fixed_stride", "fixed_duration"],
        description="fixed_stride: train.stride for every count (longer clips see more time); "
        "fixed_duration: the stride is set so every clip spans train.model.frames x train.stride frames",
    )

    @model_validator(mode="after")
    def _frames_in_range(self):
        bad = [f for f in self.frames if not 4 <= f <= 64]
        if bad:
            raise ValueError(f"frames must be in 4..64 (train.model.frames), got {bad}")
        return self


class LandmarkConfig(Section):
    """The landmark baselines: features from the tubes' landmarks, one scikit-learn classifier."""

    classifier: Literal["logistic", "svm"] = Field(
        "logistic", description="L2 logistic regression or RBF SVM"
    )
    c: float = Field(1.0, gt=0.0, description="inverse regularisation strength (C)")
    blink_threshold: float = Field(
        0.7, gt=0.0, lt=1.0, description="a blink: eye aspect ratio below this fraction of the tube's median"
    )


class BlessingConfig(Section):
    """The gate between a trained challenger and the endpoint (docs/evaluation.md)."""

    min_auroc_lower_ci: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="the challenger's pooled subject AUROC 95% CI lower bound must reach this",
    )
    max_drop_vs_champion: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="blessed only if champion AUROC - challenger AUROC <= this, same folds",
    )
    min_seed_agreement: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="fraction of evaluate.seeds whose own pooled AUROC CI lower bound must pass "
        "min_auroc_lower_ci (0 = reported, not required; the gate decides on the seed ensemble)",
    )


class EvaluateConfig(Section):
    """`hypomimia evaluate`: models and temporal settings on the same subject-grouped folds."""

    models: list[ModelName] = Field(
        default_factory=lambda: ["i3d", "r3d18", "resnet2d50", "landmark_static", "landmark_dynamic"],
        min_length=1,
        description="models compared; networks take every train.* param except the overrides named here; "
        "voice: the recipe's voice stream alone (train.voice_stream's measures and c; needs the voice table)",
    )
    reference: ModelName = Field(
        "i3d", description="the challenger's recipe: compared against every other model"
    )
    folds: list[int] = Field(default_factory=list, description="test folds to evaluate (empty = every fold)")
    seeds: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="train.seed of every network setting: each (setting, fold, seed) is trained once; the "
        "report pools each seed, and the seed ensemble (mean probability per subject) is what is compared "
        "and gated. Landmark baselines are deterministic and fit once. Include train.seed so the trained "
        "challenger is reused as its own run",
    )
    baseline_seeds: list[int] | None = Field(
        None,
        description="train.seed of the comparison networks (r3d18, resnet2d50) and ablation settings, when "
        "they cannot afford every evaluate.seeds (null = evaluate.seeds). The reference recipe always runs "
        "every evaluate.seeds; a baseline with fewer seeds is compared as its own seed ensemble",
    )
    epochs: int | None = Field(
        None, ge=1, le=500, description="epochs of every network trained here (null = train.epochs)"
    )
    frames_2d: int | None = Field(
        4,
        ge=4,
        le=64,
        description="frames per clip of the per-frame 2D model (resnet2d50), spread over the shipped clip's "
        "span: it cannot use their order, so fewer frames only average fewer views of the face, at a "
        "fraction of the cost (null = train.model.frames)",
    )
    ablation: AblationConfig = AblationConfig()
    landmarks: LandmarkConfig = LandmarkConfig()
    bootstrap: int = Field(
        1000, ge=0, le=100000, description="subject bootstrap resamples (CIs, paired test)"
    )
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="significance level after the correction")
    correction: Literal["holm", "bonferroni", "none"] = Field(
        "holm", description="multiple-comparison correction"
    )
    calibration_bins: int = Field(
        5, ge=2, le=50, description="bins of the reliability curves (subject level)"
    )
    calibration: Literal["temperature", "platt", "none"] = Field(
        "temperature",
        description="recalibration of the pooled subject probabilities, cross-fitted over the folds (fold k's "
        "subjects mapped by a fit on the other folds' held-out subjects): temperature (1 parameter) or "
        "platt (slope + intercept); reported as subject ECE before and after",
    )
    age_bands: list[int] = Field(
        default_factory=lambda: [50, 60, 70], description="age band edges for the slices (manifest `age`)"
    )
    blessing: BlessingConfig = BlessingConfig()
    reuse_trained: bool = Field(
        True,
        description="reuse the train stage's model as the reference's run of its fold when the params match",
    )
    experiment: str = Field("hypomimia-evaluate", description="MLflow experiment of the evaluation runs")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _seeds_unique(self):
        for name, seeds in (("seeds", self.seeds), ("baseline_seeds", self.baseline_seeds)):
            if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
                raise ValueError(f"{name} must be distinct non-negative integers, got {seeds}")
        return self

    @model_validator(mode="after")
    def _reference_is_compared(self):
        if self.reference not in self.models:
            raise ValueError(f"reference {self.reference!r} must be one of models {self.models}")
        return self
