from pydantic import Field

from hypomimia.config.base import Section


class ValidateConfig(Section):
    """Gate thresholds. Expectations at severity ``error`` stop the pipeline; ``warning`` only reports."""

    fps_range: tuple[float, float] = (10.0, 61.0)
    min_side: int = Field(128, ge=16)
    duration_range_s: tuple[float, float] = (1.0, 600.0)
    min_decode_ratio: float = Field(0.9, ge=0.0, le=1.0)
    min_face_found_ratio: float = Field(0.8, ge=0.0, le=1.0)
    min_face_size: float = Field(0.05, ge=0.0, le=1.0, description="face box side / frame side")
    min_blur: float = Field(10.0, ge=0.0, description="variance of the Laplacian")
    brightness_range: tuple[float, float] = (30.0, 230.0)
    max_pose_range_deg: float = Field(60.0, gt=0.0)
    min_tube_frames: int = Field(16, ge=1)
    max_fold_class_imbalance: float = Field(
        0.25, ge=0.0, le=1.0, description="|PD share in fold - PD share overall| allowed"
    )
    near_duplicate_hamming: int = Field(
        4, ge=0, le=64, description="max pHash distance to call two tubes near-duplicates"
    )
    warning_only: list[str] = Field(
        default_factory=list, description="expectation names demoted from error to warning"
    )
