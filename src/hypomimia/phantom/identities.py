"""Subjects' faces and per-video scenes, derived from real photos that installed packages ship.

Two real portraits are available offline: Grace Hopper (matplotlib sample data) and Eileen Collins
(``skimage.data.astronaut``). Each is cropped to a canonical square around the face, optionally
mirrored; its 478 FaceMesh landmarks and a person mask were detected once and ship with the
package (``resources/phantom_bases.npz``), so renders never depend on run-time inference. An
*identity* then changes face shape (landmark morph), skin tone and hair colour; a *scene* changes
what a camera would: background, lighting, colour temperature, framing, head pose, noise.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from hypomimia.errors import UserError
from hypomimia.faces.landmarks import FACE_OVAL, inter_ocular

CANON = 512  # side of the canonical source square, in pixels
# Canonical crop side in inter-ocular distances: wide enough that no framing samples outside it
# (IOD >= 16% of the frame, off-centre). Where it reaches past the photo, the background shows;
# border pixels were once mirrored there and put a second face in view.
CROP_IODS = 7.0
BASES = ("grace_hopper", "astronaut")
_BASE_META = {"grace_hopper": {"sex": "F", "age": 72}, "astronaut": {"sex": "F", "age": 42}}
# Landmarks, person masks and crops of the base photos, detected once by detect_base_data().
BASE_DATA = Path(__file__).resolve().parents[1] / "resources" / "phantom_bases.npz"


@dataclass(frozen=True)
class BasePhoto:
    name: str
    mirror: bool
    rgb: np.ndarray  # CANON x CANON x 3 uint8
    landmarks: np.ndarray  # 478 x 3 float64, pixels (x, y) and relative depth z in pixel units
    person: np.ndarray  # CANON x CANON float32 in [0, 1], 1 on the person (selfie segmentation)


@dataclass(frozen=True)
class Identity:
    """What makes one phantom person look like themselves, in every video."""

    base: str
    mirror: bool
    morph: dict[str, float]  # face-shape changes, fractions of the inter-ocular distance
    skin: tuple[float, float, float]  # Lab shift of the face (L, a, b)
    hair: tuple[float, float, float]  # RGB gain of hair and clothes
    age: int
    sex: str


@dataclass(frozen=True)
class Scene:
    """What the camera and room add to one video."""

    background: str  # "gradient" or the name of a blurred skimage texture
    bg_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    light_angle: float  # direction of the lighting gradient, radians
    light_strength: float  # +- relative brightness change across the face
    white_balance: tuple[float, float, float]
    iod_fraction: float  # inter-ocular distance as a fraction of the frame side
    centre: tuple[float, float]  # face centre as fractions of the frame side
    pose: tuple[float, float, float]  # resting yaw, pitch, roll in degrees
    noise_sigma: float  # camera noise, grey levels
    crf_offset: int  # compression varies between cameras


def _load_rgb(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import matplotlib.cbook as cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            buf = np.frombuffer(f.read(), np.uint8)
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if name == "astronaut":
        import skimage.data

        return np.ascontiguousarray(skimage.data.astronaut())
    raise ValueError(f"unknown base photo {name!r}; known: {', '.join(BASES)}")


def _face_mesh(rgb: np.ndarray) -> np.ndarray:
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as fm:
        faces = fm.process(rgb).multi_face_landmarks or []
    if len(faces) != 1:
        raise RuntimeError(f"FaceMesh found {len(faces)} faces in a base photo (expected 1)")
    h, w = rgb.shape[:2]
    # z is relative depth on the same scale as x (MediaPipe's convention).
    return np.array([[p.x * w, p.y * h, p.z * w] for p in faces[0].landmark], np.float64)


def _person_mask(rgb: np.ndarray) -> np.ndarray:
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(rgb).segmentation_mask
    return cv2.GaussianBlur(np.clip(mask, 0, 1).astype(np.float32), (0, 0), 2.0)


def _crop_matrix(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The affine map from the photo to its canonical square (2 x 3), from the photo's own landmarks."""
    centre = (lm[:, :2].min(0) + lm[:, :2].max(0)) / 2
    side = CROP_IODS * float(inter_ocular(lm[None, :, :2])[0])
    x0, y0 = centre[0] - side / 2, centre[1] - side / 2 + 0.08 * side  # a little more chin than hair
    scale = CANON / side
    return np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])


def _canonical(rgb: np.ndarray, m: np.ndarray, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """The canonical crop and where it lies inside the photo (1) or past its edge (0)."""
    canon = cv2.warpAffine(rgb, m, (CANON, CANON), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(rgb.shape[:2], np.float32), m, (CANON, CANON), flags=cv2.INTER_AREA)
    if mirror:
        canon, inside = np.ascontiguousarray(canon[:, ::-1]), np.ascontiguousarray(inside[:, ::-1])
    return canon, inside


def detect_base_data() -> dict[str, np.ndarray]:
    """Run MediaPipe on the base photos: crop matrices, landmarks and person masks, as shipped in
    ``BASE_DATA`` (regenerate with ``python -m hypomimia.phantom.identities``).

    Not called when rendering: FaceMesh and selfie segmentation (TFLite/XNNPACK) pick CPU kernels
    at run time, so their floats can differ between machines, and every pixel of every video
    follows from them. The phantom renders from the stored arrays instead.
    """
    out: dict[str, np.ndarray] = {}
    for name in BASES:
        rgb = _load_rgb(name)
        m = _crop_matrix(rgb, _face_mesh(rgb))
        out[f"{name}.photo_sha256"] = np.array(hashlib.sha256(rgb.tobytes()).hexdigest())
        out[f"{name}.crop"] = m
        for mirror in (False, True):
            canon, inside = _canonical(rgb, m, mirror)
            key = f"{name}.{int(mirror)}"
            # Detect again on the final canonical image, so a mirrored face gets MediaPipe's own left/right.
            out[f"{key}.landmarks"] = _face_mesh(canon)
            # Stored as 8 bits: the mask is a soft matte, 1/255 steps are below anything a frame shows.
            out[f"{key}.person"] = np.round(_person_mask(canon) * 255).astype(np.uint8)
    return out


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, np.ndarray]:
    with np.load(BASE_DATA) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=8)
def base_photo(name: str, mirror: bool = False) -> BasePhoto:
    """Canonical crop of a base photo with its landmarks and person mask (cached per process).

    Landmarks and masks come from ``BASE_DATA`` (detected once, shipped with the package), so the
    same params render the same bytes on any machine.
    """
    rgb = _load_rgb(name)
    data = _shipped()
    if f"{name}.crop" not in data:
        raise ValueError(f"unknown base photo {name!r}; known: {', '.join(BASES)}")
    digest = hashlib.sha256(rgb.tobytes()).hexdigest()
    if digest != str(data[f"{name}.photo_sha256"]):
        raise UserError(
            f"base photo {name!r} is not the image the phantom's landmarks were detected on "
            f"(sha256 {digest[:12]}, expected {str(data[f'{name}.photo_sha256'])[:12]}): an installed "
            "package (matplotlib or scikit-image) differs from the lock",
            "install the pinned lock (make setup), or regenerate the shipped data with "
            "`python -m hypomimia.phantom.identities` (this changes every phantom video: re-add data.dvc)",
        )
    key = f"{name}.{int(mirror)}"
    canon, inside = _canonical(rgb, data[f"{name}.crop"], mirror)
    person = (data[f"{key}.person"].astype(np.float32) / 255.0) * cv2.GaussianBlur(inside, (0, 0), 4.0)
    return BasePhoto(name, mirror, canon, data[f"{key}.landmarks"].astype(np.float64), person)


def draw_identity(rng: np.random.Generator, index: int) -> Identity:
    """Identity ``index``: base photo and mirroring cycle (so they balance), the rest is drawn."""
    base = BASES[index % len(BASES)]
    mirror = bool((index // len(BASES)) % 2)
    morph = {
        "face_width": rng.uniform(-0.10, 0.10),
        "face_length": rng.uniform(-0.08, 0.08),
        "jaw_width": rng.uniform(-0.10, 0.10),
        "eye_spacing": rng.uniform(-0.05, 0.05),
        "nose_length": rng.uniform(-0.06, 0.06),
        "mouth_width": rng.uniform(-0.10, 0.08),
        "brow_height": rng.uniform(-0.05, 0.05),
    }
    skin = (rng.uniform(-16, 6), rng.uniform(-3, 4), rng.uniform(-4, 7))
    # Natural hair colours: darker/lighter with a little warmth or coolness, never a hue of its own.
    hair = tuple(
        float(g) for g in rng.uniform(0.45, 1.2) * (1 + np.array([1, 0, -1]) * rng.uniform(-0.12, 0.12))
    )
    meta = _BASE_META[base]
    age = int(np.clip(meta["age"] + rng.normal(15 if meta["age"] < 60 else -5, 6), 40, 85))
    return Identity(base, mirror, {k: round(float(v), 4) for k, v in morph.items()},
                    tuple(round(float(v), 3) for v in skin), hair, age, meta["sex"])  # fmt: skip


_TEXTURES = ("brick", "grass", "gravel", "coffee", "rocket")


def draw_scene(rng: np.random.Generator) -> Scene:
    background = str(rng.choice(("gradient",) + _TEXTURES))
    colours = tuple(tuple(int(c) for c in rng.integers(40, 230, 3)) for _ in range(2))
    return Scene(
        background=background,
        bg_colours=colours,  # type: ignore[arg-type]
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.0, 0.28)),
        white_balance=tuple(float(g) for g in rng.uniform(0.88, 1.12, 3)),  # type: ignore[arg-type]
        iod_fraction=float(rng.uniform(0.16, 0.22)),
        centre=(float(rng.uniform(0.45, 0.55)), float(rng.uniform(0.44, 0.52))),
        pose=(float(rng.uniform(-8, 8)), float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6))),
        noise_sigma=float(rng.uniform(1.0, 3.5)),
        crf_offset=int(rng.integers(-2, 5)),
    )


def face_mask(lm: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    cv2.fillPoly(m, [np.round(lm[list(FACE_OVAL), :2]).astype(np.int32)], 1.0)
    return cv2.GaussianBlur(m, (0, 0), feather)


@functools.lru_cache(maxsize=8)
def _texture(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = cv2.resize(np.ascontiguousarray(img[..., :3]), (CANON, CANON), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(img, (0, 0), 6.0).astype(np.float32)  # out of focus, like a room behind a sitter


def _background(scene: Scene) -> np.ndarray:
    a, b = (np.array(c, np.float32) for c in scene.bg_colours)
    t = np.linspace(0, 1, CANON, dtype=np.float32)[:, None, None]
    grad = np.broadcast_to(a * (1 - t) + b * t, (CANON, CANON, 3))
    if scene.background == "gradient":
        return np.ascontiguousarray(grad)
    tex = _texture(scene.background)
    return 0.55 * tex + 0.45 * grad


def source_image(identity: Identity, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The still photo this video animates: (RGB uint8 CANON², landmarks 478x3 of the base photo)."""
    base = base_photo(identity.base, identity.mirror)
    img = base.rgb.astype(np.float32)
    face = face_mask(base.landmarks, img.shape[:2], feather=CANON / 80)[..., None]
    person = base.person[..., None]
    hair = _hair_mask(base)[..., None] * np.clip(person - face * 1.5, 0, 1)
    lab = cv2.cvtColor(img / 255.0, cv2.COLOR_RGB2LAB)
    lab += np.clip(face * 1.2, 0, 1) * np.array(identity.skin, np.float32)
    img = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0, 1) * 255.0
    img = img * (1 - hair) + img * np.array(identity.hair, np.float32) * hair
    # Clothes out of focus: the astronaut's helmet ring otherwise passes for a second face.
    torso = _torso_mask(base)[..., None] * person
    img = img * (1 - torso) + cv2.GaussianBlur(img, (0, 0), CANON / 60) * torso
    img = img * person + _background(scene) * (1 - person)
    yy, xx = np.mgrid[0:CANON, 0:CANON].astype(np.float32) / CANON - 0.5
    ramp = xx * np.cos(scene.light_angle) + yy * np.sin(scene.light_angle)
    img = img * (1 + 2 * scene.light_strength * ramp)[..., None] * np.array(scene.white_balance, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), base.landmarks


def _hair_mask(base: BasePhoto) -> np.ndarray:
    """Soft mask of the head's upper half (above the eyes), where the person mask is hair, not clothes."""
    eyes_y = base.landmarks[[33, 263], 1].mean()
    iod = float(inter_ocular(base.landmarks[None, :, :2])[0])
    rows = np.arange(CANON, dtype=np.float32)
    fade = np.clip((eyes_y + 0.6 * iod - rows) / (0.5 * iod), 0, 1)
    return np.broadcast_to(fade[:, None], (CANON, CANON)).astype(np.float32)


def _torso_mask(base: BasePhoto) -> np.ndarray:
    """Soft mask of everything below the chin."""
    chin_y = base.landmarks[152, 1]
    iod = float(inter_ocular(base.landmarks[None, :, :2])[0])
    rows = np.arange(CANON, dtype=np.float32)
    fade = np.clip((rows - chin_y - 0.3 * iod) / (0.3 * iod), 0, 1)
    return np.broadcast_to(fade[:, None], (CANON, CANON)).astype(np.float32)


def describe(identity: Identity) -> dict:
    return asdict(identity)


def _write_base_data(path: Path = BASE_DATA) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **detect_base_data())
    print(f"wrote {path}")


if __name__ == "__main__":
    _write_base_data()
