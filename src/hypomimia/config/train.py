from typing import Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section


class ModelConfig(Section):
    arch: Literal["i3d", "resnet2d50", "r3d18"] = "i3d"
    width: float = Field(0.25, gt=0.0, le=2.0, description="channel width multiplier (1.0 = paper I3D)")
    frames: int = Field(14, ge=4, le=64, description="frames per clip")
    size: Literal[112, 224] = 112
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    severity_head: Literal["none", "regression", "ordinal"] = "none"
    init: str | None = Field(
        None, description="local file of 2D Inception-v1 or 3D I3D weights; never downloaded"
    )


class TrainConfig(Section):
    model: ModelConfig = ModelConfig()
    stride: int = Field(2, ge=1, le=8, description="temporal stride between sampled frames")
    fold: int = Field(0, ge=0, description="held-out fold")
    repeat: int = Field(0, ge=0)
    epochs: int = Field(6, ge=1, le=500)
    batch_size: int = Field(8, ge=1, le=512)
    clips_per_video: int = Field(2, ge=1, le=64, description="random clips drawn per video per epoch")
    eval_clips_per_video: int = Field(4, ge=1, le=64)
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    warmup_epochs: float = Field(0.5, ge=0.0)
    grad_clip: float = Field(1.0, gt=0.0)
    class_weighting: bool = True
    amp: Literal["off", "bf16"] = "off"
    channels_last: bool = True
    compile: bool = False
    patience: int = Field(5, ge=1)
    seed: int = Field(0, ge=0)
    deterministic: bool = True
    workers: int = Field(1, ge=0, le=32, description="DataLoader worker processes")
    threads: int = Field(2, ge=1, le=256, description="torch intra-op threads on CPU")
    abstain_band: float = Field(0.1, ge=0.0, lt=0.5, description="|p - 0.5| below this -> 'uncertain'")
    experiment: str = "hypomimia"
    registered_model: str = "hypomimia-i3d"

    @model_validator(mode="after")
    def _fold_in_range(self):
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must not exceed epochs ({self.epochs})")
        return self
