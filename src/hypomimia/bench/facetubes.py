"""Face-tube extraction speed against its limit (pure decode) and against what a user writes by hand.

Two inputs, in one run: a small phantom study (generated with the demo's phantom params, fewer
subjects) and one longer 720p clip (a realfaces talking head letterboxed to 1280x720 and played
forward/backward to ~20 s; a moving sample photo where realfaces is absent). Per input:

(a) ``decode``: PyAV decode of every frame to RGB (the limit: the stage must decode too),
(b) ``naive``: per-frame FaceMesh in static-image mode on the full frame + eye-aligned crop,
(c) ``stage_w1`` / ``stage_w2``: :func:`hypomimia.stages.facetubes.run` with 1 and 2 workers, empty cache,
then with 2 workers and FaceMesh on every frame (``mesh_every: 1``, what landmark interpolation
saves), then a re-run with unchanged params (all cache hits).

frames/s counts decoded source frames. Targets (issue 5): stage wall <= 1.3x decode, >= 3x faster than naive.
"""

from __future__ import annotations

import functools
import hashlib
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.bench import row as bench_row
from hypomimia.config import load_params
from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.config.ingest import IngestConfig
from hypomimia.data.video import iter_frames, write_mp4

REALFACES = Path(__file__).resolve().parents[3].parent / "shared" / "realfaces"


def run(out: Path, quick: bool) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    params = _params()
    cfg = params.facetubes.model_copy(update={"max_seconds": 60.0})  # the whole long clip, like decode
    rows: list[dict] = []
    for name, ingest_dir in (("phantom", _phantom_set(out, quick)), ("720p", _long_clip_set(out, quick))):
        rows += _bench_set(name, ingest_dir, out / name, cfg)
    return rows


def _params():
    path = Path("params.yaml")
    return load_params(path if path.is_file() else None)


# -- inputs -----------------------------------------------------------------------------------------
def _phantom_set(out: Path, quick: bool) -> Path:
    """A phantom study rendered with the demo's phantom params (fewer subjects), then ingested."""
    from hypomimia.stages import ingest, phantom

    size = (
        {"subjects": 2, "videos_per_subject": 1, "duration_s": 3.0}
        if quick
        else {"subjects": 8, "videos_per_subject": 2}
    )
    pcfg = _params().phantom.model_copy(update=size)
    folder = out / f"phantom_{pcfg.subjects}x{pcfg.videos_per_subject}_{pcfg.duration_s:g}s"
    if not (folder / "manifest.csv").is_file():  # same config + seed -> same videos: render once
        phantom.run(pcfg, folder, progress=False)
    if quick:  # two subjects cannot be split into folds: skip ingest's fold check, list the videos directly
        manifest = pd.read_csv(folder / "manifest.csv")
        return _ingest_table(folder, [(r.video_id, folder / r.path) for r in manifest.itertuples()])
    ingest.run(IngestConfig(folds=2), folder / "manifest.csv", folder / "ingest")
    return folder / "ingest"


def _long_clip_set(out: Path, quick: bool) -> Path:
    seconds = 3.0 if quick else 20.0
    folder = out / ("long720_quick" if quick else "long720")
    clip = folder / "long720.mp4"
    if not clip.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_mp4(clip, _long_frames(seconds), fps=25, crf=20)
    return _ingest_table(folder, [("long720", clip)])


def _ingest_table(folder: Path, videos: list[tuple[str, Path]]) -> Path:
    """A minimal ingested.parquet (the columns facetubes reads) for inputs that ingest cannot fold."""
    rows = [
        {
            "video_id": vid, "subject_id": vid, "label": "unknown", "updrs_3_2": None, "hoehn_yahr": None,
            "task": "speech", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "status": "accepted",
            "abs_path": str(path.resolve()),
        }
        for vid, path in videos
    ]  # fmt: skip
    (folder / "ingest").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "ingest" / "ingested.parquet", index=False)
    return folder / "ingest"


def _long_frames(seconds: float):
    """1280x720 frames: a realfaces talking head (ping-pong looped) or the moving sample photo."""
    import cv2

    n = int(seconds * 25)
    source = REALFACES / "lp_d20.mp4"
    if source.is_file():
        clip = [f.rgb for f in iter_frames(source)]
        order = clip + clip[::-1]
        for i in range(n):
            face = cv2.resize(order[i % len(order)], (720, 720), interpolation=cv2.INTER_CUBIC)
            canvas = np.full((720, 1280, 3), 30, np.uint8)
            canvas[:, 280:1000] = face
            yield canvas
        return
    from hypomimia.doctor import sample_face_rgb

    face = sample_face_rgb()
    for i in range(n):
        t = i / 25
        m = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), 8 * math.sin(t), 1.0)
        m[:, 2] += [640 - face.shape[1] / 2 + 60 * math.sin(t / 2), 360 - face.shape[0] / 2]
        yield cv2.warpAffine(face, m, (1280, 720), borderValue=(40, 60, 80))


# -- measurements -----------------------------------------------------------------------------------
def _bench_set(name: str, ingest_dir: Path, work: Path, cfg: FacetubesConfig) -> list[dict]:
    from hypomimia.stages import facetubes

    ingested = pd.read_parquet(ingest_dir / "ingested.parquet")
    paths = ingested.loc[ingested["status"] == "accepted", "abs_path"].tolist()
    listed, n_ok = len(ingested), len(paths)

    t_decode, frames = _timed(lambda: sum(1 for p in paths for _ in iter_frames(p)))
    t_naive, _ = _timed(lambda: _naive(paths, cfg))
    walls, results = {}, {}
    for w in (1, 2):
        shutil.rmtree(work / f"w{w}", ignore_errors=True)
        walls[w], results[w] = _timed(
            lambda w=w: facetubes.run(cfg.model_copy(update={"workers": w}), ingest_dir, work / f"w{w}")
        )
    # the same stage meshing every frame: what interpolating landmarks between meshed frames saves
    shutil.rmtree(work / "mesh1", ignore_errors=True)
    t_mesh1, _ = _timed(
        lambda: facetubes.run(
            cfg.model_copy(update={"workers": 2, "mesh_every": 1}), ingest_dir, work / "mesh1"
        )
    )
    t_rerun, rerun = _timed(
        lambda: facetubes.run(cfg.model_copy(update={"workers": 2}), ingest_dir, work / "w2")
    )
    best = min(walls.values())
    r = results[2].report
    note = f"{listed} listed, {n_ok} ingested, {r['accepted']} tubes, {r['quarantined']} quarantined"
    row = functools.partial(bench_row, f"facetubes/{name}")
    return [
        row("frames", frames, "frames", note),
        row("decode_fps", frames / t_decode, "frames/s", "(a) PyAV decode to RGB, the limit"),
        row("naive_fps", frames / t_naive, "frames/s", "(b) static-image FaceMesh per frame"),
        row("stage_w1_fps", frames / walls[1], "frames/s", f"(c) facetubes.run, 1 worker, mesh_every {cfg.mesh_every}"),
        row("stage_w2_fps", frames / walls[2], "frames/s", "(c) facetubes.run, 2 workers"),
        row("stage_w2_mesh1_fps", frames / t_mesh1, "frames/s", "(c) 2 workers, FaceMesh on every frame"),
        row("stage_vs_decode", best / t_decode, "x wall", "target <= 1.3 (best stage wall / decode wall)"),
        row("naive_vs_stage", t_naive / best, "x faster", "target >= 3"),
        row("w2_vs_w1", walls[1] / walls[2], "x faster", "process pool across videos"),
        row("rerun_s", t_rerun, "s", f"unchanged params: {rerun.report['cache_hits']} cache hits, "
            f"{rerun.report['processed']} processed"),
    ]  # fmt: skip


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _naive(paths: list[str], cfg: FacetubesConfig) -> int:
    """What a user writes by hand: static-image FaceMesh on every full frame, then an eye-aligned crop."""
    import cv2
    import mediapipe as mp

    from hypomimia.faces.landmarks import eye_centres

    n = 0
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as fm:
        for p in paths:
            for f in iter_frames(p):
                res = fm.process(f.rgb)
                n += 1
                if not res.multi_face_landmarks:
                    continue
                h, w = f.rgb.shape[:2]
                lm = np.array([(q.x * w, q.y * h) for q in res.multi_face_landmarks[0].landmark])
                right, left = eye_centres(lm)
                angle = math.degrees(math.atan2(*(left - right)[::-1]))
                scale = cfg.inter_ocular * cfg.size / max(np.linalg.norm(left - right), 1e-3)
                m = cv2.getRotationMatrix2D(tuple((right + left) / 2), angle, scale)
                m[:, 2] += [cfg.size / 2, cfg.size / 2] - (right + left) / 2
                cv2.warpAffine(f.rgb, m, (cfg.size, cfg.size))
    return n
