from typing import Literal

from pydantic import Field

from hypomimia.config.base import Section


class FacetubesConfig(Section):
    """Face-tube extraction (`hypomimia facetubes`). Every field but ``workers`` is part of the tube cache key."""

    size: Literal[112, 160, 224] = Field(112, description="tube side in pixels")
    fps: float = Field(25.0, gt=0.0, le=60.0, description="tubes are resampled to this frame rate")
    max_seconds: float = Field(10.0, gt=0.0, description="longer videos are cut (Tmax = fps * max_seconds)")
    inter_ocular: float = Field(0.32, gt=0.1, lt=0.6, description="eye distance as a fraction of tube side")
    smooth_seconds: float = Field(
        0.12, ge=0.0, le=2.0, description="sigma of the centred Gaussian that smooths the crop box (0 = off)"
    )
    mesh_every: int = Field(
        2,
        ge=1,
        le=4,
        description="run FaceMesh on every n-th tube frame, interpolate landmarks in between (1 = every frame)",
    )
    mesh_max_side: int = Field(256, ge=128, le=1024, description="face window side fed to FaceMesh (pixels)")
    detect_max_side: int = Field(
        640, ge=128, le=4096, description="frames are downscaled to this for detection"
    )
    detect_every_s: float = Field(
        1.0, gt=0.0, le=60.0, description="re-run face detection this often (multi-face check, target choice)"
    )
    min_detection_confidence: float = Field(0.5, gt=0.0, lt=1.0)
    min_tracking_confidence: float = Field(0.5, gt=0.0, lt=1.0)
    min_face_ratio: float = Field(0.8, ge=0.0, le=1.0, description="fewer frames with a face -> quarantined")
    min_frames: int = Field(16, ge=1, description="fewer frames with a face -> quarantined")
    target_face: Literal["largest", "central"] = Field(
        "largest", description="which face to follow when several are present"
    )
    workers: int = Field(2, ge=1, le=64, description="processes (one video each); not part of the cache key")
