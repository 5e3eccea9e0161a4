"""Training benchmarks.

* ``loader_ratio``: training step time with clips from face tubes through the DataLoader vs. the
  same model on synthetic tensors already in memory (target <= 1.1: the model is the bottleneck).
* ``cpu``: I3D training clips/s on CPU at 14x112² (width 1.0 = paper size, and the demo width).
* ``gpu`` (only where ``torch.cuda.is_available()``): width 1.0, bf16 autocast, torch.compile,
  clips/s and MFU (model FLOPs from ``torch.utils.flop_counter`` / the card's peak bf16 FLOP/s).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import row
from hypomimia.config.train import ModelConfig, TrainConfig
from hypomimia.learning.clips import ClipDataset, EpochSampler, prepare_frame_cache
from hypomimia.learning.training import load_split, make_loader
from hypomimia.models import build_model, to_channels_last

# Dense bf16 peak FLOP/s by device name fragment (vendor data sheets, SXM parts).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def _row(metric: str, value, unit: str, note: str = "") -> dict:
    return row("train", metric, value, unit, note)


def _train_step(model, opt, x, y, amp: bool, device_type: str) -> None:
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _time_steps(batches, model, opt, amp=False, device_type="cpu", sync=lambda: None) -> float:
    """Median seconds per training step over the given batches (first one is warm-up)."""
    times = []
    it = iter(batches)
    t0 = time.perf_counter()
    for x, y in it:
        _train_step(model, opt, x, y, amp, device_type)
        sync()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        t0 = t1
    return float(np.median(times[1:]))


def train_flops(model, x) -> int:
    """FLOPs of one forward + backward pass (2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def write_fake_tubes(root: Path, videos: int, frames: int, size: int) -> tuple[Path, Path]:
    """Random-pixel tubes + folds (content is irrelevant for timing)."""
    rng = np.random.default_rng(0)
    (root / "tubes").mkdir(parents=True, exist_ok=True)
    rows = []
    for v in range(videos):
        vid = f"V{v:03d}"
        np.savez(
            root / "tubes" / f"{vid}.npz",
            frames=rng.integers(0, 255, (frames, size, size, 3), np.uint8),
            fps=np.float32(25.0),
        )
        rows.append(
            {
                "video_id": vid,
                "subject_id": f"S{v:03d}",
                "label": ["control", "pd"][v % 2],
                "tube": f"tubes/{vid}.npz",
                "status": "accepted",
                "repeat": 0,
                "fold": (v // 2) % 3,
            }
        )
    df = pd.DataFrame(rows)
    df.drop(columns=["repeat", "fold"]).to_parquet(root / "tubes.parquet")
    df[["video_id", "subject_id", "label", "repeat", "fold"]].to_parquet(root / "folds.parquet")
    return root, root


def loader_ratio(quick: bool) -> list[dict]:
    cfg = TrainConfig(
        model=ModelConfig(width=0.25, frames=14, size=112),
        batch_size=8,
        clips_per_video=8,
        workers=1,
        threads=2,
    )
    torch.set_num_threads(cfg.threads)
    steps = 3 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        # a third of the videos are in the train split; 8 clips each = one batch per train video
        tubes, ingest = write_fake_tubes(Path(tmp), videos=3 * (steps + 2), frames=60, size=112)
        split = load_split(cfg, tubes, ingest)
        files = prepare_frame_cache(split.train, Path(tmp) / "cache")
        ds = ClipDataset(
            split.train,
            files,
            frames=14,
            stride=2,
            size=112,
            train=True,
            clips_per_video=cfg.clips_per_video,
            augment=cfg.augment,
            seed=0,
        )
        loader = make_loader(ds, EpochSampler(len(ds), shuffle=True), cfg, torch.device("cpu"))
        model = to_channels_last(build_model(cfg.model))
        opt = torch.optim.AdamW(model.parameters())

        def real():
            for i, b in enumerate(loader):
                if i > steps:
                    return
                yield b["clip"].contiguous(memory_format=torch.channels_last_3d), b["label"]

        x = torch.rand(cfg.batch_size, 3, 14, 112, 112).contiguous(memory_format=torch.channels_last_3d)
        y = torch.randint(0, 2, (cfg.batch_size,))
        t_mem = _time_steps([(x, y)] * (steps + 1), model, opt)
        t_real = _time_steps(real(), model, opt)
        t_mem2 = _time_steps([(x, y)] * (steps + 1), model, opt)  # again: the machine is shared and noisy
    t_mem = min(t_mem, t_mem2)
    return [
        _row("step_s_tubes_dataloader", t_real, "s", "width 0.25, 14x112², batch 8, 1 worker"),
        _row("step_s_in_memory", t_mem, "s", "same model, synthetic tensors"),
        _row("loader_over_memory_ratio", t_real / t_mem, "x", "target <= 1.1"),
    ]


def cpu_throughput(quick: bool) -> list[dict]:
    rows = []
    torch.set_num_threads(2)
    for width, batch in ((1.0, 2 if quick else 4), (0.25, 8)):
        model = build_model(ModelConfig(width=width, frames=14, size=112)).to(
            memory_format=torch.channels_last_3d
        )
        opt = torch.optim.AdamW(model.parameters())
        x = torch.rand(batch, 3, 14, 112, 112).contiguous(memory_format=torch.channels_last_3d)
        y = torch.randint(0, 2, (batch,))
        step = _time_steps([(x, y)] * (2 if quick else 6), model, opt)
        flops = train_flops(model, x[:1])
        rows.append(
            _row(
                f"cpu_train_clips_per_s_w{width}",
                batch / step,
                "clips/s",
                f"14x112², batch {batch}, 2 threads",
            )
        )
        rows.append(_row(f"train_gflop_per_clip_w{width}", flops / 1e9, "GFLOP", "fwd+bwd, 14x112²"))
    return rows


def gpu_throughput(quick: bool) -> list[dict]:
    if not torch.cuda.is_available():
        return [_row("gpu", "skipped", "", "no CUDA device")]
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    torch.backends.cudnn.benchmark = True
    rows = []
    for frames, size, batch in ((14, 224, 32), (64, 224, 8)):
        model = build_model(ModelConfig(width=1.0, frames=frames, size=size)).to(dev)
        model = model.to(memory_format=torch.channels_last_3d)
        x = torch.rand(batch, 3, frames, size, size, device=dev).contiguous(
            memory_format=torch.channels_last_3d
        )
        y = torch.randint(0, 2, (batch,), device=dev)
        flops = train_flops(model, x)
        for compiled in (False, True):
            net = torch.compile(model) if compiled else model
            opt = torch.optim.AdamW(model.parameters(), fused=True)
            for _ in range(3):  # warm-up, compilation
                _train_step(net, opt, x, y, True, "cuda")
            torch.cuda.synchronize()
            n = 5 if quick else 20
            t0 = time.perf_counter()
            for _ in range(n):
                _train_step(net, opt, x, y, True, "cuda")
            torch.cuda.synchronize()
            step = (time.perf_counter() - t0) / n
            tag = f"{frames}x{size}² bf16{' compile' if compiled else ''}"
            rows.append(
                _row(
                    f"gpu_clips_per_s_{frames}x{size}{'_compiled' if compiled else ''}",
                    batch / step,
                    "clips/s",
                    f"{name}, width 1.0, batch {batch}, {tag}",
                )
            )
            if peak:
                rows.append(
                    _row(
                        f"gpu_mfu_{frames}x{size}{'_compiled' if compiled else ''}",
                        flops / step / peak,
                        "fraction",
                        f"peak bf16 {peak / 1e12:.0f} TFLOP/s",
                    )
                )
    return rows


def run(out: Path, quick: bool) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    return [*cpu_throughput(quick), *loader_ratio(quick), *gpu_throughput(quick)]
