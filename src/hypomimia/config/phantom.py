from typing import Literal

from pydantic import Field

from hypomimia.config.base import Section

Task = Literal["rest", "smile", "speech", "mimic"]


class CueConfig(Section):
    """Which cues differ between PD and controls (see docs/phantom.md)."""

    amplitude: bool = True  # expression amplitude scaled down with UPDRS 3.2
    speed: bool = True  # onset/offset slowed down with UPDRS 3.2
    blink: bool = True  # spontaneous blink rate lowered
    micro: bool = True  # continuous micro-movements damped
    static: bool = False  # still-frame cue: lips parted at rest (UPDRS 3-4)


class PhantomConfig(Section):
    subjects: int = Field(32, ge=2, le=2000, description="number of subjects, half PD half control")
    videos_per_subject: int = Field(6, ge=1, le=100)
    seed: int = Field(0, ge=0)
    fps: Literal[25, 30] = 25
    size: int = Field(320, ge=256, le=480, description="square frame side in pixels")
    duration_s: float = Field(4.0, ge=3.0, le=10.0)
    tasks: list[Task] = Field(default_factory=lambda: ["rest", "smile", "speech", "mimic"], min_length=1)
    cues: CueConfig = CueConfig()
    dynamic_only: bool = Field(
        False, description="match per-frame facial configurations between classes; only timing differs"
    )
    pd_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    crf: int = Field(20, ge=0, le=51, description="x264 constant rate factor of the written mp4")
    workers: int = Field(2, ge=1, le=64)
