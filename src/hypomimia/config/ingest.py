from pydantic import Field

from hypomimia.config.base import Section


class IngestConfig(Section):
    folds: int = Field(4, ge=2, le=20, description="k of the subject-grouped, label-stratified k-fold")
    repeats: int = Field(1, ge=1, le=50, description="repetitions of the k-fold with different shuffles")
    seed: int = Field(0, ge=0)
    min_frames: int = Field(8, ge=1, description="fewer decodable frames -> quarantined")
    min_duration_s: float = Field(1.0, ge=0.0)
    max_duration_s: float = Field(600.0, gt=0.0)
    max_pixels: int = Field(3840 * 2160, ge=64 * 64, description="larger frames are quarantined (too_large)")
    min_side: int = Field(128, ge=16, description="smaller frame side -> quarantined (too_small)")
    min_decode_ratio: float = Field(0.9, ge=0.0, le=1.0, description="decoded / declared frames")
    workers: int = Field(2, ge=1, le=64)
