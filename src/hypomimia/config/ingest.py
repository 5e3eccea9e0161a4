from pydantic import Field, model_validator

from hypomimia.config.base import Section


class IngestConfig(Section):
    folds: int = Field(4, ge=2, le=20, description="k of the subject-grouped, label-stratified k-fold")
    repeats: int = Field(1, ge=1, le=50, description="repetitions of the k-fold with different shuffles")
    seed: int = Field(0, ge=0, description="seed of the fold shuffles")
    min_frames: int = Field(8, ge=1, description="fewer decodable frames -> quarantined (too_few_frames)")
    min_duration_s: float = Field(1.0, ge=0.0, description="shorter -> quarantined (too_short)")
    max_duration_s: float = Field(600.0, gt=0.0, description="longer -> quarantined (too_long)")
    max_pixels: int = Field(
        4096 * 2160,
        ge=64 * 64,
        description="frames with more pixels are quarantined (too_large); the default accepts 4K (UHD and DCI)",
    )
    min_side: int = Field(128, ge=16, description="shorter frame side -> quarantined (too_small)")
    min_decode_ratio: float = Field(
        0.9, ge=0.0, le=1.0, description="decoded / declared frames below this -> quarantined (truncated)"
    )
    control_max_updrs: int = Field(
        1,
        ge=0,
        le=4,
        description="a control with a higher MDS-UPDRS 3.2 -> quarantined (label_score_inconsistent)",
    )
    require_audio: bool = Field(
        False,
        description="a batch for voice analysis: a video without usable audio is quarantined (no_audio, "
        "audio_unreadable, audio_too_short, audio_silent, audio_clipped); false: the audio facts are only recorded",
    )
    min_audio_ratio: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="with require_audio: audio duration / video duration below this -> quarantined (audio_too_short)",
    )
    min_loudness_lufs: float = Field(
        -60.0,
        ge=-70.0,
        le=0.0,
        description="with require_audio: integrated loudness (BS.1770) below this -> quarantined (audio_silent); "
        "-70 is the standard's absolute gate, below which nothing counts",
    )
    max_clipped_share: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="with require_audio: share of samples at full scale above this -> quarantined (audio_clipped)",
    )
    workers: int = Field(2, ge=1, le=64, description="probe processes")

    @model_validator(mode="after")
    def _durations_ordered(self) -> "IngestConfig":
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError("min_duration_s must be below max_duration_s")
        return self
