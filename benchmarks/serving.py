"""Serving benchmarks (issue 15): /predict latency against the offline path, /predict_tube adaptive
batching against no batching at 8 clients, and an 8-user load test (p50/p95/p99, error rate).

The model has the demo profile's architecture (params.yaml train.model) with untrained weights:
latency depends on the network's shape, not on what it learned. Servers and locust run as their
own processes (`bentoml serve`, `locust --headless`); every server listens on 127.0.0.1 only.

`python -m benchmarks.serving --loadtest [--model DIR] [--out bench/serving]` is `make loadtest`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path.cwd()
KEY = "bench-key"


def demo_profile_model(out: Path) -> Path:
    """A model folder with the demo profile's architecture and face-tube params (untrained weights)."""
    import torch

    from hypomimia.config import load_params
    from hypomimia.faces.tube import tube_params
    from hypomimia.models import LABELS, build_model, clip_contract, save_model
    from hypomimia.models.metadata import build_metadata, write_metadata

    p = load_params("params.yaml" if Path("params.yaml").is_file() else None)
    torch.manual_seed(0)
    model = build_model(p.train.model, init_weights=False).eval()
    clip = clip_contract(p.train.model, fps=p.facetubes.fps / p.train.stride)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"temperature": 1.0, "abstain_band": p.train.abstain_band, "stride": p.train.stride,
             "tube_fps": p.facetubes.fps, "eval_clips_per_video": p.train.eval_clips_per_video}  # fmt: skip
    save_model(out / "model.pt", model, p.train.model, clip=clip, extra=extra)
    metrics = {"test_subject_auroc": None, "test_subject_auroc_ci95": [None, None], "temperature": 1.0}
    meta = build_metadata(model_config=p.train.model.model_dump(mode="json"), clip=clip, labels=LABELS,
                          metrics=metrics, data={"tubes": "benchmark (untrained)"})  # fmt: skip
    meta["face_tubes"] = tube_params(p.facetubes)
    write_metadata(out / "metadata.json", meta)
    (out / "metrics.json").write_text(json.dumps({"note": "untrained benchmark model"}))
    return out


def face_clip(path: Path, seconds: float = 4.0, fps: int = 25, side: int = 320) -> Path:
    """A 4-s clip of the sample face drifting and nodding slightly (no media is committed)."""
    import cv2

    from hypomimia.data.video import write_mp4
    from hypomimia.doctor import sample_face_rgb

    face = sample_face_rgb()
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        scale = 0.9 * side / face.shape[0]
        m = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), 3 * math.sin(t), scale)
        m[:, 2] += [side / 2 + 8 * math.sin(2 * t) - face.shape[1] / 2, side / 2 - face.shape[0] / 2]
        frames.append(cv2.warpAffine(face, m, (side, side), borderValue=(40, 60, 80)))
    return write_mp4(path, frames, fps=fps)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model: Path, work: Path, **env: str):
        import httpx

        self.port, work = _port(), Path(work)
        work.mkdir(parents=True, exist_ok=True)
        full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
                "HYPOMIMIA_API_KEY": KEY, "HYPOMIMIA_SERVE_MODEL": str(model), "BENTOML_HOME": str(work / "bentoml"),
                "HYPOMIMIA_PREDICTION_LOG": str(work / "predictions"), "HYPOMIMIA_SERVE_MAX_CONCURRENCY": "64",
                "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true", **env}  # fmt: skip
        self.log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "serving.service:Gateway", "--host", "127.0.0.1",
             "--port", str(self.port)], cwd=ROOT, env=full, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 180:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {work / 'server.log'}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError("server not ready in 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()


def locust(url: str, endpoint: str, payload: Path, users: int, seconds: int, out: Path) -> dict:
    """Run locust headless in its own process; p50/p95/p99 (ms), req/s, failures, 5xx count."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("locust")
    cmd = [str(exe), "-f", str(ROOT / "serving" / "locustfile.py"), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds}s", "--host", url, "--csv", str(out / "locust"), "--only-summary"]  # fmt: skip
    env = {**os.environ, "HYPOMIMIA_API_KEY": KEY, "LOAD_ENDPOINT": endpoint, "LOAD_FILE": str(payload)}
    subprocess.run(cmd, env=env, check=False, capture_output=True, timeout=seconds + 120)
    stats = pd.read_csv(out / "locust_stats.csv")
    agg = stats[stats["Name"] == "Aggregated"].iloc[0]
    fails = (
        pd.read_csv(out / "locust_failures.csv")
        if (out / "locust_failures.csv").is_file()
        else pd.DataFrame()
    )
    five = (
        int(fails[fails["Error"].astype(str).str.match(r"^5\d\d")]["Occurrences"].sum()) if len(fails) else 0
    )
    n = int(agg["Request Count"])
    return {"endpoint": endpoint, "users": users, "seconds": seconds, "requests": n,
            "failures": int(agg["Failure Count"]), "error_rate": float(agg["Failure Count"]) / max(n, 1),
            "server_errors_5xx": five, "rps": float(agg["Requests/s"]),
            "p50_ms": float(agg["50%"]), "p95_ms": float(agg["95%"]), "p99_ms": float(agg["99%"])}  # fmt: skip


def offline_seconds(model_dir: Path, clip: Path, repeats: int) -> list[float]:
    """decode + tube + forward of the clip in this process (the same library path, no server)."""
    from hypomimia.inference import predictor as pr

    served = pr.load_served_model(model_dir, threads=2)
    pr.predict_video(clip, served)  # warm-up: mediapipe and torch first calls
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pr.predict_video(clip, served)
        out.append(time.perf_counter() - t0)
    return out


def run(out: Path, quick: bool) -> list[dict]:
    from hypomimia.faces.tube import extract_tube, save_tube
    from hypomimia.inference.predictor import load_served_model

    out.mkdir(parents=True, exist_ok=True)
    seconds, repeats = (8, 3) if quick else (30, 10)
    model = demo_profile_model(out / "model")
    clip = face_clip(out / "clip4s.mp4")
    offline = offline_seconds(model, clip, repeats)
    served = load_served_model(model)
    tube = extract_tube(clip, served.face_tubes)
    save_tube(out / "tube.npz", tube, "0" * 64)
    results: dict = {"offline_s": offline}
    server = Server(model, out / "server-batched")
    try:
        results["predict_1user"] = locust(server.url, "predict", clip, 1, seconds, out / "predict-1user")
        results["predict_8users"] = locust(server.url, "predict", clip, 8, seconds, out / "predict-8users")
        results["tube_batched"] = locust(
            server.url, "predict_tube", out / "tube.npz", 8, seconds, out / "tube-batched"
        )
    finally:
        server.stop()
    server = Server(model, out / "server-unbatched", HYPOMIMIA_SERVE_MAX_BATCH_SIZE="1")
    try:
        results["tube_unbatched"] = locust(
            server.url, "predict_tube", out / "tube.npz", 8, seconds, out / "tube-unbatched"
        )
    finally:
        server.stop()
    (out / "serving.json").write_text(json.dumps(results, indent=2))
    off = statistics.median(offline)
    p95 = results["predict_1user"]["p95_ms"] / 1000
    speedup = results["tube_batched"]["rps"] / max(results["tube_unbatched"]["rps"], 1e-9)
    five = sum(r["server_errors_5xx"] for k, r in results.items() if k != "offline_s")
    return [
        {"name": "serving", "metric": "offline decode+tube+forward, 4 s clip (median)", "value": off, "unit": "s"},
        {"name": "serving", "metric": "/predict p95, 1 client", "value": p95, "unit": "s"},
        {"name": "serving", "metric": "/predict p95 / offline", "value": p95 / off, "unit": "x", "note": "target <= 1.5"},
        {"name": "serving", "metric": "/predict 8 users p50/p95/p99", "unit": "ms",
         "value": "/".join(f"{results['predict_8users'][k]:.0f}" for k in ("p50_ms", "p95_ms", "p99_ms"))},
        {"name": "serving", "metric": "/predict_tube batched rps, 8 clients", "value": results["tube_batched"]["rps"], "unit": "req/s"},
        {"name": "serving", "metric": "/predict_tube unbatched rps, 8 clients", "value": results["tube_unbatched"]["rps"], "unit": "req/s"},
        {"name": "serving", "metric": "batched / unbatched throughput", "value": speedup, "unit": "x", "note": "target >= 2"},
        {"name": "serving", "metric": "5xx over all load runs", "value": five, "unit": "", "note": "target 0"},
    ]  # fmt: skip


def loadtest(model: Path | None, out: Path, users: int, seconds: int) -> dict:
    """`make loadtest`: serve ``model`` (default work/train, else a demo-profile model), 8 users on /predict."""
    out.mkdir(parents=True, exist_ok=True)
    if model is None:
        model = (
            Path("work/train")
            if (Path("work/train") / "model.pt").is_file()
            else demo_profile_model(out / "model")
        )
    clip = face_clip(out / "clip4s.mp4")
    server = Server(model, out / "server")
    try:
        result = locust(server.url, "predict", clip, users, seconds, out / "locust")
    finally:
        server.stop()
    (out / "loadtest.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--loadtest", action="store_true", help="only the 8-user /predict load test")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench/serving"))
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    from hypomimia.logs import setup_logging, silence_native_logs

    setup_logging()
    silence_native_logs()
    if a.loadtest:
        print(json.dumps(loadtest(a.model, a.out, a.users, a.seconds), indent=2))
    else:
        print(json.dumps(run(a.out, a.quick), indent=2, default=str))
