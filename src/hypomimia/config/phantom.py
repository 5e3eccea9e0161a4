from typing import Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section

Task = Literal["rest", "smile", "speech", "mimic"]
CueRegion = Literal["face", "eyes", "mouth"]


class CueConfig(Section):
    """Which cues differ between PD and controls (see docs/phantom.md). Off = PD gets the control value."""

    amplitude: bool = Field(True, description="expression amplitude scaled down with UPDRS 3.2")
    speed: bool = Field(True, description="onset/offset and all movement slowed down with UPDRS 3.2")
    blink: bool = Field(True, description="spontaneous blink rate lowered with UPDRS 3.2")
    micro: bool = Field(True, description="continuous micro-movements damped with UPDRS 3.2")
    static: bool = Field(False, description="still-frame cue: lips parted at rest at UPDRS 3-4")


class PhantomConfig(Section):
    subjects: int = Field(32, ge=2, le=2000, description="number of subjects, matched PD/control pairs")
    videos_per_subject: int = Field(6, ge=1, le=100, description="clips per subject, cycling through tasks")
    seed: int = Field(0, ge=0, description="same seed and config -> byte-identical files")
    fps: Literal[25, 30] = 25
    size: int = Field(320, ge=256, le=480, description="square frame side in pixels")
    duration_s: float = Field(4.0, ge=3.0, le=10.0, description="clip length in seconds")
    tasks: list[Task] = Field(default_factory=lambda: ["rest", "smile", "speech", "mimic"], min_length=1)
    cues: CueConfig = CueConfig()
    dynamic_only: bool = Field(
        False,
        description="match per-frame facial configurations between classes; only timing (speed) differs",
    )
    cue_region: CueRegion = Field(
        "face",
        description="where the disease shows: face = every cue as configured; eyes = only blinks differ "
        "(rate and duration); mouth = only the lower face differs (expression amplitude, lips parted at "
        "rest). The region known answer of explain (docs/explain.md)",
    )
    pd_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share of PD subjects")
    crf: int = Field(20, ge=0, le=45, description="x264 constant rate factor (each camera adds -2..+4)")
    workers: int = Field(2, ge=1, le=64, description="processes; does not change the output")

    @model_validator(mode="after")
    def _one_kind_of_known_answer(self):
        if self.dynamic_only and self.cue_region != "face":
            raise ValueError("dynamic_only and cue_region are separate known answers: set cue_region: face")
        return self
