"""Models: I3D (default) and the comparison baselines, plus the ``model.pt`` format.

Public API (used by training, explanations and serving):

* :func:`build_model` -- a fresh network from a :class:`~hypomimia.config.train.ModelConfig`.
* :func:`save_model` / :func:`load_model` -- ``model.pt`` = state dict + model config + labels +
  clip contract, so a checkpoint rebuilds itself without params.yaml.
* every model has ``forward(x) -> logits``, ``embed(x) -> (B, embed_dim)``, ``features(x)`` (last
  feature map, for Grad-CAM), ``forward_all(x) -> {logits, severity?, embedding}``, ``embed_dim``.

Input layout everywhere: ``(batch, 3, time, height, width)``, RGB float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypomimia.config.train import ModelConfig
from hypomimia.models.i3d import I3D, i3d, inflate_2d_state_dict, load_init_weights

__all__ = [
    "FORMAT",
    "LABELS",
    "I3D",
    "LoadedModel",
    "build_model",
    "clip_contract",
    "i3d",
    "inflate_2d_state_dict",
    "load_init_weights",
    "load_model",
    "save_model",
]

FORMAT = "hypomimia-model/1"
LABELS = ("control", "pd")  # class index -> label; index 1 is the positive class


def build_model(cfg: ModelConfig, *, init_weights: bool = True) -> nn.Module:
    """The network ``cfg`` describes. ``cfg.init`` (a local file) is loaded when ``init_weights``."""
    common = {"num_classes": len(LABELS), "dropout": cfg.dropout, "severity_head": cfg.severity_head}
    if cfg.arch == "i3d":
        model = I3D(width=cfg.width, stream=cfg.stream, **common)
    elif cfg.stream != "rgb":
        from hypomimia.errors import UserError

        raise UserError(f"train.model.stream {cfg.stream} is only built for arch i3d", "set stream: rgb")
    elif cfg.arch == "r3d18":
        from hypomimia.models.baselines import R3D18

        model = R3D18(**common)
    elif cfg.arch == "resnet2d50":
        from hypomimia.models.baselines import FrameResNet50

        model = FrameResNet50(**common)
    else:  # pragma: no cover - pydantic already restricts arch
        raise ValueError(cfg.arch)
    if init_weights and cfg.init:
        if cfg.arch != "i3d":
            from hypomimia.errors import UserError

            raise UserError(
                f"train.model.init is only supported for arch i3d, not {cfg.arch}", "set init: null"
            )
        load_init_weights(model, cfg.init)
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """Each conv weight in the channels-last layout of its rank (5-D: NDHWC, 4-D: NHWC), in place.

    ``Module.to(memory_format=torch.channels_last_3d)`` refuses any 4-D weight, i.e. the per-frame
    2D ResNet-50; this converts the 3D and the 2D networks alike (and a mixed one)."""
    layouts = {4: torch.channels_last, 5: torch.channels_last_3d}
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() in layouts:
                p.data = p.data.contiguous(memory_format=layouts[p.dim()])
    return model


def clip_contract(cfg: ModelConfig, fps: float | None = None) -> dict[str, Any]:
    """What one model input is: shape (C, T, H, W), dtype, value range, layout."""
    return {
        "layout": "B,C,T,H,W",
        "shape": [3, cfg.frames, cfg.size, cfg.size],
        "channels": "RGB",
        "dtype": "float32",
        "range": [0.0, 1.0],
        "fps": fps,
    }


@dataclass
class LoadedModel:
    model: nn.Module
    config: ModelConfig
    labels: tuple[str, ...]
    clip: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def save_model(
    path: Path, model: nn.Module, cfg: ModelConfig, *, clip: dict | None = None, extra=None
) -> Path:
    """Write ``model.pt`` atomically (plain tensors + JSON-able dicts; loads with weights_only=True)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DDP wrapper
    payload = {
        "format": FORMAT,
        "model_config": cfg.model_dump(mode="json"),
        "labels": list(LABELS),
        "clip": clip or clip_contract(cfg),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model from ``model.pt`` (eval mode). Raises UserError on a file that is not one."""
    from hypomimia.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path.name}", "train a model first: hypomimia train")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise UserError(f"{path.name} is not a readable model file ({type(e).__name__})", "retrain") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path.name} is not a {FORMAT} file", "pass the model.pt written by hypomimia train")
    cfg = ModelConfig.model_validate({**payload["model_config"], "init": None})
    model = build_model(cfg, init_weights=False)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return LoadedModel(model, cfg, tuple(payload["labels"]), payload["clip"], payload.get("extra", {}))
