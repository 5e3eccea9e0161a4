"""Ingest speed: probe throughput against its limit (a bare PyAV decode of the same files).

Inputs, in one run: a folder of phone-like clips (320x320, 25 fps, 4 s, H.264; generated) and,
where present, the real clips of ``../shared/realfaces``. Per input:

(a) ``decode``: bare PyAV demux + decode of every frame, no conversion, one process (the limit:
    the probe must decode every frame to count them honestly),
(b) ``ingest_w1`` / ``ingest_w2``: :func:`hypomimia.stages.ingest.run` with 1 and 2 probe workers
    (manifest check, sha256, probe, decisions, folds, writing outputs).

Audio (issue 25): the synthetic clips again, remuxed with an AAC voice-like track (mono 16 kHz as the
phantom writes, mono 48 kHz, and stereo 44.1 kHz as phones record), probed in one process: ``probe_ms`` per 4 s clip with and without
audio, and what the audio adds against a bare decode of the audio alone. Target: the audio facts
(decode, loudness meter, peak, clipping) cost at most 3x that bare decode.

Each timing is the best of 2 runs (shared machine). Target: ``ingest_w1`` within 1.5x of ``decode`` (hashing and bookkeeping stay cheap).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import av
import numpy as np

from benchmarks import row
from hypomimia.config.ingest import IngestConfig
from hypomimia.data.probe import probe
from hypomimia.data.video import write_mp4
from hypomimia.stages import ingest

REALFACES = Path(__file__).resolve().parents[1].parent / "shared" / "realfaces"


def run(out: Path, quick: bool) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    sets = [("synthetic", _synthetic_set(out / "synthetic", 6 if quick else 24))]
    if (REALFACES / "README.md").is_file():
        sets.append(("realfaces", _manifest(out / "realfaces", sorted(REALFACES.glob("*.mp4")))))
    rows: list[dict] = []
    for name, manifest in sets:
        rows += _bench_set(name, manifest, out / name)
    rows += _bench_audio(out / "synthetic", out / "audio", 6 if quick else 24)
    return rows


def _bench_audio(videos: Path, folder: Path, n: int) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    silent = [videos / f"clip{i:03d}.mp4" for i in range(n)]
    base = _probe_ms(silent)
    rows = [_row("audio", "video only", "probe_ms", base, "ms/clip", "4 s, 320x320, 25 fps, H.264")]
    for rate, channels in ((16000, 1), (48000, 1), (44100, 2)):
        voiced = [_with_audio(v, folder / f"{v.stem}_{rate}_{channels}.mp4", rate, channels) for v in silent]
        what = f"+ AAC {rate} Hz x{channels}"
        with_audio = _probe_ms(voiced)
        floor, _ = _best_of(3, lambda voiced=voiced: [_decode_audio(p) for p in voiced])
        floor_ms = 1000 * floor / len(voiced)
        rows += [
            _row("audio", what, "probe_ms", with_audio, "ms/clip", f"video only {base:.1f} ms"),
            _row(
                "audio", what, "added_ms", with_audio - base, "ms/clip", "decode + loudness, peak, clipping"
            ),
            _row("audio", what, "bare_decode_ms", floor_ms, "ms/clip", "PyAV decode of the audio alone"),
            _row("audio", what, "added/bare_decode", (with_audio - base) / floor_ms, "x", "target <= 3"),
        ]
    return rows


def _probe_ms(paths: list[Path]) -> float:
    wall, _ = _best_of(3, lambda: [probe(p) for p in paths])
    return 1000 * wall / len(paths)


def _decode_audio(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(container.streams.audio[0]))


def _with_audio(video: Path, out_path: Path, rate: int, channels: int) -> Path:
    """``video`` remuxed (packets copied) with a 4 s AAC track: syllable-like bursts of a buzzy tone."""
    if out_path.is_file():
        return out_path
    t = np.arange(4 * rate) / rate
    voice = 0.1 * np.sign(np.sin(2 * np.pi * 140 * t)) * np.sin(2 * np.pi * 800 * t)
    voice *= np.clip(np.sin(2 * np.pi * 4 * t), 0, None)  # four syllables a second
    signal = np.repeat(voice[None], channels, 0).astype(np.float32)
    layout = {1: "mono", 2: "stereo"}[channels]
    with av.open(str(video)) as src, av.open(str(out_path), "w", format="mp4") as out:
        v_in = src.streams.video[0]
        v_out = out.add_stream_from_template(v_in)
        a_out = out.add_stream("aac", rate=rate)
        a_out.layout = layout
        for packet in src.demux(v_in):
            if packet.dts is not None:
                packet.stream = v_out
                out.mux(packet)
        for start in range(0, signal.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(signal[:, start : start + 1024]), "fltp", layout
            )
            frame.sample_rate, frame.pts = rate, start
            out.mux(a_out.encode(frame))
        out.mux(a_out.encode())
    return out_path


def _synthetic_set(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:320, 0:320]
    paths = []
    for i in range(n):
        path = folder / f"clip{i:03d}.mp4"
        if not path.is_file():  # a moving gradient: compresses like real footage, unlike noise
            frames = (
                np.stack([(xx + 3 * t + 7 * i) % 256, (yy + t) % 256, (xx + yy) // 3 % 256], -1)
                for t in range(100)
            )
            write_mp4(path, (f.astype(np.uint8) for f in frames), fps=25, crf=23)
        paths.append(path)
    return _manifest(folder, paths)


def _manifest(folder: Path, videos: list[Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["video_id", "path", "subject_id", "session", "task", "label"])
        for i, path in enumerate(videos):
            writer.writerow(
                [f"v{i:03d}", str(path.resolve()), f"S{i:03d}", "s1", "rest", ("pd", "control")[i % 2]]
            )
    return manifest


def _decode_all(paths: list[str]) -> int:
    frames = 0
    for path in paths:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames += sum(1 for _ in container.decode(stream))
    return frames


def _bench_set(name: str, manifest: Path, out: Path) -> list[dict]:
    with open(manifest, encoding="utf-8") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    decode_s, frames = _best_of(2, lambda: _decode_all(paths))
    rows = [_row(name, "decode", "files_per_s", len(paths) / decode_s, "files/s", f"{frames} frames")]
    rows.append(_row(name, "decode", "frames_per_s", frames / decode_s, "frames/s", "bare PyAV, 1 process"))
    walls = {}
    for workers in (1, 2):
        cfg = IngestConfig(folds=2, workers=workers)
        walls[workers], result = _best_of(
            2,
            lambda cfg=cfg: ingest.run(
                cfg, manifest, out / f"out_w{cfg.workers}", video_root=manifest.parent
            ),
        )
        note = f"{result.accepted}/{result.listed} accepted"
        rows.append(
            _row(name, f"ingest_w{workers}", "files_per_s", len(paths) / walls[workers], "files/s", note)
        )
        rows.append(_row(name, f"ingest_w{workers}", "seconds", walls[workers], "s", f"{len(paths)} files"))
    rows.append(_row(name, "ingest_w1/decode", "ratio", walls[1] / decode_s, "x", "target <= 1.5"))
    rows.append(_row(name, "ingest_w1/ingest_w2", "ratio", walls[1] / walls[2], "x", "speed-up of 2 workers"))
    return rows


def _best_of(n: int, fn):
    """(fastest wall time, last result) of ``n`` runs: the machine is shared, the minimum is the signal."""
    best, result = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _row(dataset: str, what: str, metric: str, value: float, unit: str, note: str) -> dict:
    return row(f"ingest/{dataset}/{what}", metric, float(value), unit, note)
