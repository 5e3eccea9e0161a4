"""`hypomimia doctor`: is this machine able to run the pipeline? One row per check."""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

KEY_PACKAGES = (
    "torch", "torchvision", "mediapipe", "opencv-contrib-python", "av", "kfp", "mlflow", "dvc",
    "great-expectations", "evidently", "bentoml", "numpy", "pandas", "pydantic",
)  # fmt: skip
MEDIAPIPE_MODELS = (
    "modules/face_detection/face_detection_short_range.tflite",
    "modules/face_detection/face_detection_full_range_sparse.tflite",
    "modules/face_landmark/face_landmark.tflite",
    "modules/face_landmark/face_landmark_with_attention.tflite",
)
MIN_FREE_GB = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _python() -> Check:
    v = sys.version_info
    return Check("python", v[:2] == (3, 11), f"{v.major}.{v.minor}.{v.micro} (needs 3.11)")


def _packages() -> list[Check]:
    out = []
    for name in KEY_PACKAGES:
        try:
            out.append(Check(f"package {name}", True, md.version(name)))
        except md.PackageNotFoundError:
            out.append(Check(f"package {name}", False, "not installed: run 'make setup'"))
    return out


def sample_face_rgb():
    """A real face photo that matplotlib ships (no download)."""
    import matplotlib.cbook as cbook
    import numpy as np
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.ascontiguousarray(Image.open(f).convert("RGB"))


def _mediapipe_models() -> Check:
    try:
        from hypomimia.logs import import_mediapipe

        mp = import_mediapipe()
    except Exception as e:  # import errors of a native wheel come in many types
        return Check("mediapipe face models", False, f"mediapipe does not import: {e}")
    root = Path(mp.__file__).parent
    missing = [m for m in MEDIAPIPE_MODELS if not (root / m).is_file()]
    if missing:
        return Check(
            "mediapipe face models", False, f"missing {missing}: install mediapipe==0.10.21 (bundles them)"
        )
    img = sample_face_rgb()
    with mp.solutions.face_detection.FaceDetection(model_selection=0) as fd:
        n_det = len(fd.process(img).detections or [])
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as fm:
        faces = fm.process(img).multi_face_landmarks or []
    n_lm = len(faces[0].landmark) if faces else 0
    ok = n_det == 1 and n_lm == 478
    return Check(
        "mediapipe face models",
        ok,
        f"loadable: detection found {n_det} face, mesh {n_lm} landmarks on a test photo",
    )


def _torch() -> list[Check]:
    import torch

    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else "no GPU (CPU profile; fine for the demo)"
    return [
        Check("torch threads", True, f"{torch.get_num_threads()} intra-op, {os.cpu_count()} cores"),
        Check("CUDA available", True, f"{cuda}: {gpu}", required=False),
    ]


def _disk(workdir: Path) -> Check:
    free = shutil.disk_usage(workdir if workdir.exists() else Path.cwd()).free / 1e9
    return Check("free disk", free >= MIN_FREE_GB, f"{free:.1f} GB free (needs >= {MIN_FREE_GB:.0f} GB)")


def _writable(dirs: list[Path]) -> list[Check]:
    out = []
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d):
                pass
            out.append(Check(f"writable {d}", True, "ok"))
        except OSError as e:
            out.append(
                Check(f"writable {d}", False, f"{e.strerror}: choose another --workdir or fix permissions")
            )
    return out


def run_checks(workdir: Path = Path("work")) -> list[Check]:
    checks = [_python(), *_packages(), _mediapipe_models(), *_torch(), _disk(workdir)]
    checks += _writable([workdir, Path(tempfile.gettempdir())])
    return checks
