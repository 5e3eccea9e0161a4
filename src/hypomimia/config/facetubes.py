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
        3,
        ge=1,
        le=8,
        description="keyframe spacing: FaceMesh on every n-th tube frame, landmarks in between from "
        "between_keyframes (1 = every frame)",
    )
    between_keyframes: Literal["linear", "flow"] = Field(
        "linear",
        description="landmarks between keyframes: linear interpolation of the two keyframes, or "
        "Lucas-Kanade optical flow from the last keyframe (forward-backward checked, FaceMesh where it "
        "fails); measured in docs/benchmarks.md",
    )
    flow_fb_max_px: float = Field(
        0.5,
        gt=0.0,
        le=10.0,
        description="forward-backward flow error (pixels of the flow window, ~tube pixels) above which "
        "a landmark counts as lost; too many lost -> FaceMesh on that frame",
    )
    segments: int = Field(
        1,
        ge=1,
        le=16,
        description="a long video is split into up to this many time segments, tracked independently "
        "(in parallel processes when workers allow); part of the tube's definition, so tubes do not depend "
        "on workers. 1 on 2 cores: one process's decode, track and warp threads already use both, and "
        "each cut costs context and seek pre-roll (docs/benchmarks.md)",
    )
    segment_min_s: float = Field(4.0, gt=0.0, description="no segment shorter than this (seconds of tube)")
    segment_context_s: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        description="each segment starts tracking this long before its first frame, so detection, "
        "landmarks and the smoothed box join seamlessly",
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
    workers: int = Field(
        2,
        ge=1,
        le=64,
        description="processes: this one + (workers - 1) helpers, sharing all videos' time segments "
        "(faces.parallel); not part of the cache key",
    )
