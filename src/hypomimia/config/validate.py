from pydantic import Field, model_validator

from hypomimia.config.base import Section


class ValidateConfig(Section):
    """Gate thresholds. Expectations at severity ``error`` stop the pipeline; ``warning`` only reports.

    The checked-in suites under ``gx/expectations/`` are generated from these values
    (``hypomimia validate --write-suites``); a test keeps them in step with params.yaml.
    """

    allowed_codecs: list[str] = Field(
        default_factory=lambda: ["h264", "hevc", "mpeg4", "vp9", "av1"],
        description="video codecs (PyAV codec names) training may read",
    )
    fps_range: tuple[float, float] = Field((10.0, 61.0), description="nominal frames per second [min, max]")
    min_side: int = Field(128, ge=16, description="shorter displayed frame side, pixels")
    duration_range_s: tuple[float, float] = Field(
        (1.0, 600.0), description="video duration [min, max], seconds"
    )
    min_decode_ratio: float = Field(0.9, ge=0.0, le=1.0, description="decoded / declared frames")
    min_face_found_ratio: float = Field(
        0.8, ge=0.0, le=1.0, description="frames with a tracked face / frames"
    )
    min_face_size: float = Field(0.05, ge=0.0, le=1.0, description="face box side / frame side")
    min_blur: float = Field(10.0, ge=0.0, description="variance of the Laplacian (higher = sharper)")
    brightness_range: tuple[float, float] = Field((30.0, 230.0), description="mean grey level [min, max]")
    max_pose_range_deg: float = Field(60.0, gt=0.0, description="max head yaw/pitch/roll excursion per tube")
    min_tube_frames: int = Field(16, ge=1, description="frames per face tube")
    max_fold_class_imbalance: float = Field(
        0.25, ge=0.0, le=1.0, description="|PD share in fold - PD share overall| allowed"
    )
    near_duplicate_hamming: int = Field(
        4,
        ge=0,
        le=64,
        description="mean-frame pHash distance up to which two tubes are near-duplicate candidates",
    )
    near_duplicate_min_pixel_diff: float = Field(
        4.0,
        ge=0.0,
        le=255.0,
        description="candidates whose first-second mean frames differ by less (mean |grey diff|) are near-duplicates",
    )
    voice_f0_range_hz: tuple[float, float] = Field(
        (50.0, 500.0), description="voice table (with --voice): mean F0 of a measured clip [min, max], Hz"
    )
    voice_f0_sd_range_st: tuple[float, float] = Field(
        (0.0, 24.0), description="voice table: F0 SD [min, max], semitones (two octaves is no voice)"
    )
    voice_hnr_range_db: tuple[float, float] = Field(
        (-10.0, 40.0), description="voice table: mean harmonics-to-noise ratio [min, max], dB"
    )
    voice_intensity_range_db: tuple[float, float] = Field(
        (20.0, 100.0), description="voice table: mean intensity of voiced speech [min, max], dB"
    )
    warning_only: list[str] = Field(
        default_factory=lambda: ["folds.every_video_has_tube"],
        description="expectation names demoted from error to warning (see docs/validation.md)",
    )

    @model_validator(mode="after")
    def _ranges_ordered(self) -> "ValidateConfig":
        for key in (
            "fps_range",
            "duration_range_s",
            "brightness_range",
            "voice_f0_range_hz",
            "voice_f0_sd_range_st",
            "voice_hnr_range_db",
            "voice_intensity_range_db",
        ):
            low, high = getattr(self, key)
            if low > high:
                raise ValueError(f"{key}: minimum {low} is above maximum {high}")
        return self
