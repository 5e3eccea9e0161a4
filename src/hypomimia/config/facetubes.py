from typing import Literal

from pydantic import Field

from hypomimia.config.base import Section


class FacetubesConfig(Section):
    size: Literal[112, 160, 224] = Field(112, description="tube side in pixels")
    fps: float = Field(25.0, gt=0.0, le=60.0, description="tubes are resampled to this frame rate")
    max_seconds: float = Field(10.0, gt=0.0, description="longer videos are cut (Tmax = fps * max_seconds)")
    inter_ocular: float = Field(0.32, gt=0.1, lt=0.6, description="eye distance as a fraction of tube side")
    smoothing: float = Field(0.8, ge=0.0, lt=1.0, description="EMA factor of the crop box over time")
    mesh_max_side: int = Field(320, ge=128, description="frames are downscaled to this side before FaceMesh")
    min_detection_confidence: float = Field(0.5, gt=0.0, lt=1.0)
    min_tracking_confidence: float = Field(0.5, gt=0.0, lt=1.0)
    min_face_ratio: float = Field(0.8, ge=0.0, le=1.0, description="fewer frames with a face -> quarantined")
    min_frames: int = Field(16, ge=1, description="fewer good frames -> quarantined")
    target_face: Literal["largest", "central"] = "largest"
    workers: int = Field(2, ge=1, le=64)
