"""Action units (FACS) as displacement fields on MediaPipe's 468 mesh landmarks.

Every field is defined in a face-aligned frame: origin between the eyes, ``u`` along the eye line
(outwards is ``sign(u)``), ``v`` towards the chin, both in inter-ocular distances (IOD), so one
definition fits every identity. At intensity 1 an AU moves landmarks by a typical posed-expression
amount (e.g. AU12 pulls each mouth corner about 0.09 IOD outwards and 0.06 IOD up). A frame's
landmarks are the neutral ones plus the intensity-weighted sum of the fields: intensities are the
ground truth that the phantom's read-back tests recover from the rendered video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hypomimia.faces.landmarks import FACE_OVAL, LEFT_BROW, LEFT_CHEEK, RIGHT_BROW, RIGHT_CHEEK

N_MESH = 468  # the iris points (468-477) are not warp controls: they sit inside the eye opening

AUS = ("au1_2", "au4", "au6", "au12", "au18", "au20", "au25", "au26", "au45")
"""Brow raise, brow lower, cheek raise, lip-corner pull (smile), pucker, lip stretch, lips part,
jaw drop, eyelid closure (blink)."""

# Eye contours (upper lid, lower lid), corners excluded; subject's own right/left as in MediaPipe.
EYE_CONTOURS = (
    ((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155), (33, 133)),
    ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382), (263, 362)),
)
_UPPER_LIP = (0, 37, 39, 40, 185, 267, 269, 270, 409, 13, 82, 81, 80, 191, 312, 311, 310, 415)
_LOWER_LIP = (17, 84, 181, 91, 146, 314, 405, 321, 375, 14, 87, 178, 88, 95, 317, 402, 318, 324)
_MOUTH_CORNERS = (61, 78, 291, 308)
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
"""Inner lip contour in drawing order: the mouth opening."""


@dataclass(frozen=True)
class FaceFrame:
    """Face-aligned coordinates of one neutral face."""

    origin: np.ndarray  # midpoint of the eye centres, pixels
    ex: np.ndarray  # unit vector along the eye line (image left -> right)
    ey: np.ndarray  # unit vector towards the chin
    iod: float  # pixels

    @classmethod
    def of(cls, lm: np.ndarray) -> FaceFrame:
        right = (lm[33, :2] + lm[133, :2]) / 2
        left = (lm[263, :2] + lm[362, :2]) / 2
        a, b = (right, left) if right[0] < left[0] else (left, right)
        ex = (b - a) / np.linalg.norm(b - a)
        ey = np.array([-ex[1], ex[0]])
        origin = (a + b) / 2
        if np.dot(lm[152, :2] - origin, ey) < 0:
            ey = -ey
        return cls(origin, ex, ey, float(np.linalg.norm(b - a)))

    def local(self, pts: np.ndarray) -> np.ndarray:
        d = pts[..., :2] - self.origin
        return np.stack([d @ self.ex, d @ self.ey], -1) / self.iod

    def to_pixels(self, duv: np.ndarray) -> np.ndarray:
        """Displacements (u, v) in IOD -> (x, y) in pixels."""
        return (duv[..., :1] * self.ex + duv[..., 1:2] * self.ey) * self.iod


def _gauss(uv: np.ndarray, centre: np.ndarray, su: float, sv: float | None = None) -> np.ndarray:
    sv = su if sv is None else sv
    d = (uv - centre) / np.array([su, sv])
    return np.exp(-0.5 * (d**2).sum(-1))


def _blink(uv: np.ndarray) -> np.ndarray:
    """Upper lids come down to meet the lower lids (which rise a little); the lid skin above follows."""
    out = np.zeros_like(uv)
    for upper, lower, corners in EYE_CONTOURS:
        up, lo = uv[list(upper)], uv[list(lower)]
        ou, ol = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
        cu = uv[list(corners)]
        xs_u = np.concatenate([cu[:, 0], up[ou, 0]])
        ys_u = np.concatenate([cu[:, 1], up[ou, 1]])
        xs_l = np.concatenate([cu[:, 0], lo[ol, 0]])
        ys_l = np.concatenate([cu[:, 1], lo[ol, 1]])
        su, sl = np.argsort(xs_u), np.argsort(xs_l)

        def upper_v(u, xs=xs_u[su], ys=ys_u[su]):
            return np.interp(u, xs, ys)

        def lower_v(u, xs=xs_l[sl], ys=ys_l[sl]):
            return np.interp(u, xs, ys)

        u_min, u_max = cu[:, 0].min(), cu[:, 0].max()
        width = u_max - u_min
        gap = np.clip(lower_v(uv[:, 0]) - upper_v(uv[:, 0]), 0, None)
        meet = 0.8  # the lids meet 80% of the way down
        # Lateral weight: 1 over the eye, fading past the corners.
        past = np.clip(np.maximum(u_min - uv[:, 0], uv[:, 0] - u_max) / (0.35 * width), 0, None)
        lateral = np.exp(-(past**2) * 2.5)
        above = upper_v(uv[:, 0]) - uv[:, 1]  # >0 above the upper lid
        below = uv[:, 1] - lower_v(uv[:, 0])  # >0 below the lower lid
        lid_skin = np.where(above >= -1e-6, np.exp(-np.clip(above, 0, None) / 0.045), 0.0)
        cheek = np.where(below >= -1e-6, np.exp(-np.clip(below, 0, None) / 0.03), 0.0)
        dv = gap * (meet * lid_skin - (1 - meet) * 0.97 * cheek) * lateral
        idx_u = list(upper)
        dv[idx_u] = 0.97 * meet * gap[idx_u]  # the lid margin itself
        idx_l = list(lower)
        dv[idx_l] = -(1 - meet) * 0.97 * gap[idx_l]
        out[:, 1] += dv
    return out


def au_fields(lm: np.ndarray) -> tuple[FaceFrame, dict[str, np.ndarray]]:
    """Displacement of the 468 mesh landmarks at intensity 1, per AU, in pixels (468 x 2)."""
    frame = FaceFrame.of(lm)
    uv = frame.local(lm[:N_MESH])
    side = np.sign(uv[:, 0])
    fields: dict[str, np.ndarray] = {}

    corners = [uv[i] for i in (61, 291)]
    mouth_v = (corners[0][1] + corners[1][1]) / 2
    near_corner = sum(_gauss(uv, c, 0.17) for c in corners)
    cheek_zone = sum(_gauss(uv, c + np.array([np.sign(c[0]) * 0.05, -0.18]), 0.28) for c in corners)

    d = np.zeros_like(uv)  # AU12: corners out and up, cheek skin lifted with them
    d[:, 0] = side * (0.09 * near_corner + 0.02 * cheek_zone)
    d[:, 1] = -(0.06 * near_corner + 0.035 * cheek_zone)
    fields["au12"] = d

    d = np.zeros_like(uv)  # AU6: cheeks up, lower lids pushed up a little
    for cheek in (RIGHT_CHEEK, LEFT_CHEEK):
        d[:, 1] -= 0.05 * _gauss(uv, uv[list(cheek)].mean(0), 0.2, 0.16)
    fields["au6"] = d

    d = np.zeros_like(uv)  # AU1+2: brows and forehead up
    for brow in (RIGHT_BROW, LEFT_BROW):
        c = uv[list(brow)].mean(0)
        w = _gauss(uv, c, 0.32, 0.22) * (uv[:, 1] < c[1] + 0.08)
        w += 0.6 * _gauss(uv, c + np.array([0, -0.3]), 0.4, 0.3)
        d[:, 1] -= 0.1 * np.clip(w, 0, 1)
    fields["au1_2"] = d

    d = np.zeros_like(uv)  # AU4: brows down and together, inner ends most
    for brow in (RIGHT_BROW, LEFT_BROW):
        pts = uv[list(brow)]
        inner = pts[np.argmin(np.abs(pts[:, 0]))]
        w = _gauss(uv, inner, 0.28, 0.16) * (uv[:, 1] < inner[1] + 0.12)
        d[:, 0] -= np.sign(inner[0]) * 0.045 * w
        d[:, 1] += 0.055 * w
    fields["au4"] = d

    lower = np.zeros(len(uv))
    lower[list(_LOWER_LIP)] = 1.0
    upper = np.zeros(len(uv))
    upper[list(_UPPER_LIP)] = 1.0
    below_mouth = np.clip((uv[:, 1] - mouth_v - 0.02) / 0.12, 0, 1) * (1 - upper)
    jaw = np.maximum(lower, below_mouth) * np.exp(-((uv[:, 0] / 0.95) ** 2))
    jaw[list(_MOUTH_CORNERS)] = 0.35

    d = np.zeros_like(uv)  # AU25: lips part (lower lip down more than upper lip up)
    d[:, 1] = 0.05 * np.maximum(lower, 0.5 * below_mouth * _gauss(uv, np.array([0, mouth_v + 0.1]), 0.35))
    d[:, 1] -= 0.02 * upper * (np.abs(uv[:, 0]) < 0.35)
    fields["au25"] = d

    d = np.zeros_like(uv)  # AU26: the jaw drops, taking the lower lip and chin
    d[:, 1] = 0.2 * jaw
    d[:, 0] = -0.02 * side * jaw * (np.abs(uv[:, 0]) > 0.4)  # cheeks narrow slightly
    fields["au26"] = d

    d = np.zeros_like(uv)  # AU20: lips stretched sideways (speech)
    d[:, 0] = side * 0.07 * near_corner
    d[:, 1] = 0.01 * near_corner
    fields["au20"] = d

    d = np.zeros_like(uv)  # AU18: lips pushed together and forward (pucker, speech)
    d[:, 0] = -side * 0.08 * near_corner
    fields["au18"] = d

    fields["au45"] = _blink(uv)
    return frame, {k: frame.to_pixels(v) for k, v in fields.items()}


def morph_field(lm: np.ndarray, morph: dict[str, float]) -> np.ndarray:
    """Identity's face-shape change of the 468 mesh landmarks, in pixels (468 x 2)."""
    frame = FaceFrame.of(lm)
    uv = frame.local(lm[:N_MESH])
    side = np.sign(uv[:, 0])
    d = np.zeros_like(uv)
    d[:, 0] += uv[:, 0] * morph.get("face_width", 0.0)
    d[:, 1] += np.clip(uv[:, 1], 0, None) * morph.get("face_length", 0.0)
    d[:, 0] += uv[:, 0] * morph.get("jaw_width", 0.0) * np.clip(uv[:, 1] / 1.2, 0, 1)
    for c in (np.array([-0.5, 0.0]), np.array([0.5, 0.0])):
        d[:, 0] += side * morph.get("eye_spacing", 0.0) * _gauss(uv, c, 0.3, 0.35)
    d[:, 1] += morph.get("nose_length", 0.0) * np.clip(uv[:, 1] / 0.75, 0, 1)
    mouth = uv[[61, 291]].mean(0)
    d[:, 0] += (uv[:, 0] - mouth[0]) * morph.get("mouth_width", 0.0) * _gauss(uv, mouth, 0.45, 0.15)
    for brow in (RIGHT_BROW, LEFT_BROW):
        d[:, 1] -= morph.get("brow_height", 0.0) * _gauss(uv, uv[list(brow)].mean(0), 0.35, 0.15)
    return frame.to_pixels(d)


def head_pose(points: np.ndarray, centre: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotate 3-D points (N x 3, pixels) about ``centre`` (degrees); orthographic projection to (x, y)."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ((points - centre) @ (rz @ rx @ ry).T + centre)[:, :2]


def oval_rings(lm: np.ndarray, factors: tuple[float, ...]) -> np.ndarray:
    """Rings of points around the face oval (hair, neck, background), scaled from its centre."""
    oval = lm[list(FACE_OVAL), :2]
    c = oval.mean(0)
    return np.concatenate([c + (oval - c) * f for f in factors])
