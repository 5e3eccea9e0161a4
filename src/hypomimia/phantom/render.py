"""Render phantom frames: a landmark-driven piecewise-affine warp of one still photo.

Control points are the 468 mesh landmarks, three rings around the face oval (hair, neck,
background follow the head with decreasing weight) and fixed anchors on the frame border. The
triangulation is computed once per video on the neutral layout; each frame rasterises the
triangles' index map at the moved positions and maps every output pixel back into the source
photo with its triangle's affine transform (one ``cv2.remap``). Parting lips reveal a dark mouth
with a hint of upper teeth, since the still photo has none to stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from hypomimia.phantom.action_units import (
    EYE_CONTOURS,
    INNER_LIPS,
    N_MESH,
    au_fields,
    head_pose,
    morph_field,
    oval_rings,
)
from hypomimia.phantom.identities import Identity, Scene

_RING_FACTORS = (1.3, 1.75, 2.4)
_RING_WEIGHTS = (0.75, 0.4, 0.12)  # how much of the face oval's motion each ring follows
_SUBPIXEL = 4  # cv2 drawing shift: 1/16 pixel precision
_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
# Every control point is snapped to a 1/256-pixel grid before it is rasterised or mapped. The float
# math upstream (trig of the head pose, the identity's morph, BLAS) may differ in the last place
# between CPUs, and the warp turns such a difference into other pixels whenever a value sits on a
# rounding boundary of the triangle raster or the remap's fixed point: a one-ULP nudge of the
# targets changed 40 of the 192 shipped videos, and an Intel Xeon rendered 3 of them differently
# from two AMD EPYCs. On the grid, a last-place difference moves a point only where it lies within
# ~1e-13 px of a grid midpoint (odds ~1e-11 a value), and everything downstream of the grid is exact.
_GRID = 256.0
_AU_GRID = 65536.0  # action-unit intensities and pose angles: 1/65536 of a unit


def snap(x, grid: float = _GRID):
    """``x`` rounded to multiples of 1/grid: exactly representable, so later float math is CPU-independent."""
    return np.round(np.asarray(x, np.float64) * grid) / grid


@dataclass(frozen=True)
class Pose:
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    dx: float = 0.0  # translation in inter-ocular distances
    dy: float = 0.0


class VideoRenderer:
    """Renders the frames of one video: one identity in one scene at ``size`` x ``size`` pixels."""

    def __init__(self, src_rgb: np.ndarray, lm: np.ndarray, identity: Identity, scene: Scene, size: int):
        self.src = src_rgb
        self.size = size
        self.face, self.fields = au_fields(lm)
        self._au_names = tuple(self.fields)
        self._au_stack = np.stack([self.fields[k] for k in self._au_names])  # A x 468 x 2
        self.neutral = lm[:N_MESH].copy()
        self.neutral[:, :2] += morph_field(lm, identity.morph)
        self.centre3 = self.neutral.mean(0)
        self.base_pose = scene.pose
        self.scale = scene.iod_fraction * size / self.face.iod
        face_centre = (lm[:N_MESH, :2].min(0) + lm[:N_MESH, :2].max(0)) / 2
        self.shift = np.array(scene.centre) * size - self.scale * face_centre
        self.iod_out = float(snap(self.face.iod * self.scale))

        from hypomimia.faces.landmarks import FACE_OVAL

        self._oval_mesh = np.array(FACE_OVAL)
        ring_src = oval_rings(lm, _RING_FACTORS)
        n_oval = len(FACE_OVAL)
        ring_w = np.repeat(np.array(_RING_WEIGHTS), n_oval)
        ring_oval = np.tile(np.arange(n_oval), len(_RING_FACTORS))
        inside = self._inside(self._camera(ring_src), margin=4.0)
        self.ring_src, self.ring_w, self.ring_oval = ring_src[inside], ring_w[inside], ring_oval[inside]

        border = np.linspace(-1.0, size + 1.0, 9)
        lo, hi = np.full(9, -1.0), np.full(9, size + 1.0)
        anchors = np.unique(
            np.concatenate([np.c_[border, lo], np.c_[border, hi], np.c_[lo, border], np.c_[hi, border]]),
            axis=0,
        )
        self.anchor_out = anchors
        self.source = snap(np.concatenate([lm[:N_MESH, :2], self.ring_src, self._camera_inv(anchors)]))
        neutral_targets = self.targets({}, Pose())
        # Parting lips reveal a painted mouth only beyond the photo's own opening (some photos smile).
        self._neutral_opening = self._opening(neutral_targets[:N_MESH])
        self.triangles = Delaunay(neutral_targets).simplices.astype(np.int32)
        self._yy, self._xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self._lid_colours = [self._skin_below(lm, lower) for _, lower, _ in EYE_CONTOURS]

    def _camera(self, pts: np.ndarray) -> np.ndarray:
        return pts * self.scale + self.shift

    def _camera_inv(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.shift) / self.scale

    def _inside(self, pts: np.ndarray, margin: float) -> np.ndarray:
        return np.all((pts > margin) & (pts < self.size - margin), axis=1)

    def mesh_targets(self, au: dict[str, float], pose: Pose) -> np.ndarray:
        """Moved mesh landmarks in source-photo pixels (468 x 2), before the camera transform."""
        mesh = self.neutral.copy()
        if au:
            w = np.array([au.get(k, 0.0) for k in self._au_names])
            mesh[:, :2] += np.tensordot(w, self._au_stack, axes=1)
        yaw, pitch, roll = (
            b + p for b, p in zip(self.base_pose, (pose.yaw, pose.pitch, pose.roll), strict=True)
        )
        moved = head_pose(mesh, self.centre3, yaw, pitch, roll)
        return moved + np.array([pose.dx, pose.dy]) * self.face.iod

    def targets(self, au: dict[str, float], pose: Pose) -> np.ndarray:
        """Every control point's position in the output frame (mesh, rings, anchors)."""
        mesh = self.mesh_targets(au, pose)
        oval_motion = mesh[self._oval_mesh] - self.source[self._oval_mesh]
        rings = self.ring_src + oval_motion[self.ring_oval] * self.ring_w[:, None]
        return snap(np.concatenate([self._camera(mesh), self._camera(rings), self.anchor_out]))

    def _maps(self, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tri = tgt[self.triangles]  # M x 3 x 2
        coef, ok = _affine_coefficients(tri, self.source[self.triangles])
        index = np.zeros((self.size, self.size), np.int32)  # 0 = no triangle (never happens inside anchors)
        pts = np.round(tri * (1 << _SUBPIXEL)).astype(np.int32)
        for m in np.flatnonzero(ok):
            cv2.fillConvexPoly(index, pts[m], int(m) + 1, lineType=cv2.LINE_8, shift=_SUBPIXEL)
        table = np.concatenate([np.zeros((1, 6), np.float32), coef])
        a = table[index]  # H x W x 6: source x = a0*x + a1*y + a2, source y = a3*x + a4*y + a5
        x, y = self._xx, self._yy
        map_x = a[..., 0] * x + a[..., 1] * y + a[..., 2]
        map_y = a[..., 3] * x + a[..., 4] * y + a[..., 5]
        return map_x, map_y

    def render(self, au: dict[str, float], pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """One frame (H x W x 3 uint8) and the rendered mesh landmarks in frame pixels (468 x 2)."""
        au = {k: float(snap(v, _AU_GRID)) for k, v in au.items()}
        pose = Pose(*(float(snap(v, _AU_GRID)) for v in (pose.yaw, pose.pitch, pose.roll, pose.dx, pose.dy)))
        tgt = self.targets(au, pose)
        mx, my = self._maps(tgt)
        img = cv2.remap(self.src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mesh = tgt[:N_MESH]
        self._paint_mouth(img, mesh)
        closure = au.get("au45", 0.0)
        if closure > 0.05:
            open_mesh = snap(self._camera(self.mesh_targets({**au, "au45": 0.0}, pose)))
            self._paint_lids(img, mesh, open_mesh, closure)
        return img, mesh

    def _paint_lids(self, img: np.ndarray, mesh: np.ndarray, open_mesh: np.ndarray, closure: float) -> None:
        """Cover what the lowered lid hides with lid-coloured skin and draw the lash line.

        The warp alone stretches whatever the photo shows above the eye (lashes, shadow, glasses
        frames) over it; real lids are skin, and FaceMesh needs to see them as such.
        """
        alpha = float(np.clip((closure - 0.05) / 0.6, 0, 1))
        for (upper, lower, corners), skin in zip(EYE_CONTOURS, self._lid_colours, strict=True):
            ring = np.concatenate([open_mesh[[corners[0]]], open_mesh[list(upper)], open_mesh[[corners[1]]],
                                   mesh[list(lower)][::-1]])  # fmt: skip
            order = np.argsort(np.arctan2(*(ring - ring.mean(0)).T[::-1]))
            x0, y0 = np.maximum(np.floor(ring.min(0)).astype(int) - 3, 0)
            x1, y1 = np.minimum(np.ceil(ring.max(0)).astype(int) + 4, self.size)
            if x1 <= x0 or y1 <= y0:
                continue
            off = np.array([x0, y0])
            mask = np.zeros((y1 - y0, x1 - x0), np.float32)
            cv2.fillPoly(
                mask, [np.round((ring[order] - off) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4
            )
            mask = cv2.GaussianBlur(mask, (0, 0), 0.7)
            lash = np.zeros_like(mask)
            lid = np.concatenate([mesh[[corners[0]]], mesh[list(upper)], mesh[[corners[1]]]])
            lid = lid[np.argsort(lid[:, 0])] - off
            thick = max(1, int(round(0.025 * self.iod_out)))
            cv2.polylines(
                lash, [np.round(lid * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=4
            )
            roi = img[y0:y1, x0:x1].astype(np.float32)
            a = (mask * alpha)[..., None]
            roi = roi * (1 - a) + skin * a
            b = (lash * alpha * 0.8)[..., None]
            roi = roi * (1 - b) + np.array([40, 28, 26], np.float32) * b
            img[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)

    def _skin_below(self, lm: np.ndarray, lower: tuple[int, ...]) -> np.ndarray:
        """Lid colour: the skin just under the eye in the source photo, a little darker."""
        below = lm[list(lower), :2].mean(0) + self.face.ey * 0.16 * self.face.iod
        r = max(2, int(0.05 * self.face.iod))
        x, y = np.round(below).astype(int)
        patch = self.src[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1].reshape(-1, 3)
        return np.median(patch, axis=0).astype(np.float32) * 0.9

    @staticmethod
    def _opening(mesh: np.ndarray) -> float:
        dx, dy = mesh[13] - mesh[14]
        return float(np.sqrt(dx * dx + dy * dy))  # not linalg.norm: BLAS may fuse the multiply-add

    def _paint_mouth(self, img: np.ndarray, mesh: np.ndarray) -> None:
        inner = mesh[list(INNER_LIPS)]
        x0, y0 = np.floor(inner.min(0)).astype(int) - 3
        x1, y1 = np.ceil(inner.max(0)).astype(int) + 4
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.size), min(y1, self.size)
        if x1 <= x0 or y1 <= y0:
            return
        roi = img[y0:y1, x0:x1].astype(np.float32)
        off = np.array([x0, y0])
        mouth = np.zeros(roi.shape[:2], np.float32)
        cv2.fillPoly(mouth, [np.round((inner - off) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        if mouth.sum() < 1.0:
            return
        extra = self._opening(mesh) - self._neutral_opening
        strength = float(np.clip(extra / (0.025 * self.iod_out), 0, 1))
        if strength <= 0:
            return
        upper = mesh[list(_UPPER_INNER)] - off
        teeth_h = min(0.07 * self.iod_out, 0.45 * extra)
        teeth = np.zeros_like(mouth)
        poly = np.concatenate([upper, upper[::-1] + [0, teeth_h]])
        cv2.fillPoly(teeth, [np.round(poly * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        mouth = cv2.GaussianBlur(mouth, (0, 0), 0.6)[..., None] * (0.92 * strength)
        teeth = (teeth * mouth[..., 0])[..., None]
        dark = np.array([52, 22, 26], np.float32)
        tooth = np.array([206, 196, 182], np.float32) * (0.55 + 0.45 * roi.mean() / 255.0)
        roi = roi * (1 - mouth) + dark * mouth
        roi = roi * (1 - teeth) + tooth * teeth
        img[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)


def _affine_coefficients(dst: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the affine map dst -> src as 6 coefficients (M x 6, float32), and which are non-degenerate.

    Closed form (Cramer's rule) for M triangles at once: much faster than a batched linear solve.
    """
    p0, p1, p2 = dst[:, 0], dst[:, 1], dst[:, 2]
    e1, e2 = p1 - p0, p2 - p0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-6
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s0, s1, s2 = src[:, 0], src[:, 1], src[:, 2]
    f1, f2 = s1 - s0, s2 - s0
    # Barycentric (b1, b2) of a point q: b1 = (e2.y*dx - e2.x*dy)/det, b2 = (-e1.y*dx + e1.x*dy)/det.
    coef = np.empty((len(dst), 6))
    for k in range(2):  # source x, then source y
        ax = (f1[:, k] * e2[:, 1] - f2[:, k] * e1[:, 1]) * inv
        ay = (-f1[:, k] * e2[:, 0] + f2[:, k] * e1[:, 0]) * inv
        coef[:, 3 * k] = ax
        coef[:, 3 * k + 1] = ay
        coef[:, 3 * k + 2] = s0[:, k] - ax * p0[:, 0] - ay * p0[:, 1]
    return coef.astype(np.float32), ok
