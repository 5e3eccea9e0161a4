"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman, CVPR 2017).

Three layers, as in torchvision's ``models/video/resnet.py``:

* blocks: :class:`Unit3D` (conv + BN + ReLU) and :class:`InceptionBlock3D` (four branches:
  1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 | 3x3x3 max-pool -> 1x1x1, concatenated);
* one generic network, :class:`I3D`, whose layer table is :data:`INCEPTION_V1`;
* thin builders (:func:`i3d`) that only pick arguments.

Input layout: ``(batch, 3, time, height, width)``, RGB float in [0, 1]; the network normalises
with ImageNet mean/std itself, so every caller (training, serving, explanations) feeds the same
thing. Pooling at the end is adaptive, so any clip length >= 1 and any size >= 32 works
(the paper's fixed 2x7x7 pool only fits 224² input).

Temporal padding repeats the edge frames instead of adding zeros. Why: then a video of
identical frames is, to every layer, exactly the 2D image it was inflated from (the paper's
"boring video" fixed point), which is what :func:`inflate_2d_state_dict` relies on and what the
inflation test checks. Spatial padding is zeros, as in the 2D network.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hypomimia.models.heads import IMAGENET_MEAN, IMAGENET_STD, HeadedVideoNet

__all__ = [
    "INCEPTION_V1",
    "I3D",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InceptionBlock3D",
    "InceptionSpec",
    "Unit3D",
    "i3d",
    "inflate_2d_state_dict",
    "frame_differences",
    "load_init_weights",
]


@dataclass(frozen=True)
class InceptionSpec:
    """Output channels of the four branches of one inception block (paper widths, width 1.0)."""

    b0: int  # 1x1
    b1_reduce: int  # 1x1 before the 3x3
    b1: int  # 3x3
    b2_reduce: int
    b2: int  # second 3x3 (Inception-v1 with BN uses 3x3 where GoogLeNet had 5x5)
    pool_proj: int  # 1x1 after the 3x3 max-pool

    def scaled(self, width: float) -> InceptionSpec:
        return InceptionSpec(*(_scaled(c, width) for c in vars(self).values()))

    @property
    def out_channels(self) -> int:
        return self.b0 + self.b1 + self.b2 + self.pool_proj


# The I3D layer table: ("pool", kernel, stride) or (name, InceptionSpec). Kernels/strides are
# (time, height, width); the 2D network reads only the last two.
INCEPTION_V1: tuple[tuple, ...] = (
    ("pool", (1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a
    ("mixed_3b", InceptionSpec(64, 96, 128, 16, 32, 32)),
    ("mixed_3c", InceptionSpec(128, 128, 192, 32, 96, 64)),
    ("pool", (3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a
    ("mixed_4b", InceptionSpec(192, 96, 208, 16, 48, 64)),
    ("mixed_4c", InceptionSpec(160, 112, 224, 24, 64, 64)),
    ("mixed_4d", InceptionSpec(128, 128, 256, 24, 64, 64)),
    ("mixed_4e", InceptionSpec(112, 144, 288, 32, 64, 64)),
    ("mixed_4f", InceptionSpec(256, 160, 320, 32, 128, 128)),
    ("pool", (2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a
    ("mixed_5b", InceptionSpec(256, 160, 320, 32, 128, 128)),
    ("mixed_5c", InceptionSpec(384, 192, 384, 48, 128, 128)),
)
STEM_CHANNELS = (64, 64, 192)  # Conv3d_1a_7x7, Conv3d_2b_1x1, Conv3d_2c_3x3


def _scaled(channels: int, width: float) -> int:
    return max(2, int(round(channels * width)))


class Unit3D(nn.Module):
    """Conv3d + BatchNorm + ReLU, 'same' padding (edge frames repeated in time, zeros in space)."""

    def __init__(self, in_ch: int, out_ch: int, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        kt, kh, kw = kernel
        self.time_pad = (kt - 1) // 2, kt // 2
        self.conv = nn.Conv3d(in_ch, out_ch, kernel, stride, padding=(0, kh // 2, kw // 2), bias=False)
        self.bn = nn.BatchNorm3d(out_ch, eps=1e-3, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.time_pad):
            x = F.pad(x, (0, 0, 0, 0, *self.time_pad), mode="replicate")
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _max_pool(kernel, stride) -> nn.MaxPool3d:
    # ceil_mode keeps one output for inputs shorter than the kernel (a 4-frame clip at MaxPool3d_5a).
    return nn.MaxPool3d(
        kernel, stride, padding=tuple(k // 2 if k == 3 else 0 for k in kernel), ceil_mode=True
    )


class InceptionBlock3D(nn.Module):
    """Four parallel branches concatenated on channels."""

    def __init__(self, in_ch: int, spec: InceptionSpec):
        super().__init__()
        self.branch0 = Unit3D(in_ch, spec.b0)
        self.branch1 = nn.Sequential(
            Unit3D(in_ch, spec.b1_reduce), Unit3D(spec.b1_reduce, spec.b1, (3, 3, 3))
        )
        self.branch2 = nn.Sequential(
            Unit3D(in_ch, spec.b2_reduce), Unit3D(spec.b2_reduce, spec.b2, (3, 3, 3))
        )
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, padding=1), Unit3D(in_ch, spec.pool_proj))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class I3D(HeadedVideoNet):
    """Generic I3D trunk + heads. Variants are arguments (width, classes, severity head), not subclasses.

    Args:
        width: channel multiplier (1.0 = the paper's Inception-v1 widths).
        num_classes: classifier outputs (2 = control / PD).
        dropout: before the classifier, as in the paper.
        severity_head: "none", "regression" (one output: UPDRS 3.2 score) or "ordinal" (4 cumulative
            logits, P(score > k) for k = 0..3), sharing the trunk with the classifier.
        layers: the layer table (default :data:`INCEPTION_V1`).
    """

    def __init__(
        self,
        *,
        width: float = 1.0,
        num_classes: int = 2,
        dropout: float = 0.5,
        severity_head: str = "none",
        stream: str = "rgb",
        layers: Sequence[tuple] = INCEPTION_V1,
    ):
        super().__init__()
        if stream not in ("rgb", "rgb+diff"):
            raise ValueError(f"stream must be rgb or rgb+diff, got {stream!r}")
        self.width, self.stream = width, stream
        c1, c2, c3 = (_scaled(c, width) for c in STEM_CHANNELS)
        self.stem = nn.Sequential(
            Unit3D(3 if stream == "rgb" else 6, c1, (7, 7, 7), (2, 2, 2)),  # Conv3d_1a_7x7
            _max_pool((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3
            Unit3D(c1, c2),  # Conv3d_2b_1x1
            Unit3D(c2, c3, (3, 3, 3)),  # Conv3d_2c_3x3
        )
        blocks: dict[str, nn.Module] = {}
        channels, n_pool = c3, 0
        for name, *args in layers:
            if name == "pool":
                blocks[f"pool_{n_pool}"] = _max_pool(*args)
                n_pool += 1
            else:
                spec = args[0].scaled(width)
                blocks[name] = InceptionBlock3D(channels, spec)
                channels = spec.out_channels
        self.blocks = nn.Sequential(OrderedDict(blocks))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self._init_heads(channels, num_classes, dropout, severity_head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(B, C, T', H', W')`` (for Grad-CAM style explanations)."""
        x = self.normalise(x)
        if self.stream == "rgb+diff":
            x = torch.cat([x, frame_differences(x)], dim=1)
        return self.blocks(self.stem(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip descriptor ``(B, embed_dim)``: the face-tube embedding."""
        return self.pool(self.features(x)).flatten(1)


def i3d(
    *,
    width: float = 1.0,
    num_classes: int = 2,
    severity_head: str = "none",
    weights: str | Path | None = None,
    **kwargs,
) -> I3D:
    """I3D (Inception-v1 inflated). ``weights``: optional local file (2D Inception-v1 or 3D I3D), never
    downloaded; see :func:`load_init_weights`."""
    model = I3D(width=width, num_classes=num_classes, severity_head=severity_head, **kwargs)
    if weights is not None:
        load_init_weights(model, weights)
    return model


def frame_differences(x: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Frame-to-frame change ``x[t] - x[t-1]`` (zero for the first frame), in units of the clip's range of motion.

    I3D's best results came from a second stream on optical flow; differences of consecutive frames
    carry the same motion cue (Wang et al., TSN 2016) at no extra cost and, unlike RGB, none of the
    static face or scene, which a small data set otherwise invites a network to memorise.

    Each clip's differences are divided by its mean absolute deviation from its own temporal mean
    (one scalar per clip, ``eps`` guarding still clips). Why: how *fast* a face moves, relative to how
    *far*, is a ratio of two energies that a conv net with average pooling represents poorly; after
    this scaling it is the plain mean of the stream. On the dynamic-only phantom that ratio alone
    separates PD from control clips with AUROC 0.82 (stride 4) where raw difference energy gives 0.64
    (docs/training.md). The RGB stream still carries the absolute amplitude.
    A still video has zero differences, so the inflation fixed point holds for ``rgb+diff`` too.
    """
    diff = F.pad(x[:, :, 1:] - x[:, :, :-1], (0, 0, 0, 0, 1, 0))
    spread = (x - x.mean(dim=2, keepdim=True)).abs().mean(dim=(1, 2, 3, 4), keepdim=True)
    return diff / (spread + eps)


# --- weight inflation and loading -------------------------------------------------------------


def inflate_2d_state_dict(
    state_2d: dict[str, torch.Tensor], model: I3D, *, strict_shapes: bool = True
) -> dict[str, torch.Tensor]:
    """Map a 2D Inception-v1 state dict (same key names) onto ``model``'s 3D shapes.

    A 2D conv kernel ``(O, I, kh, kw)`` becomes ``(O, I, kt, kh, kw)``: repeated kt times over time
    and divided by kt, so a still video gives the 2D activations. BN and linear tensors are copied.
    Keys whose names do not exist in the 3D model (e.g. a 1000-class ImageNet classifier whose
    shape differs) are dropped; a shape mismatch of a trunk tensor raises ValueError.
    """
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state_2d.items():
        if key not in target:
            continue
        want = target[key].shape
        if value.ndim == 4 and len(want) == 5:
            kt = want[2]
            value = value.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        if key == "stem.0.conv.weight" and value.ndim == 5 and want[1] == 2 * value.shape[1]:
            # rgb+diff stem from RGB weights: the difference channels start at zero (RGB behaviour)
            value = torch.cat([value, torch.zeros_like(value)], dim=1)
        if value.shape != want:
            if key.startswith(("fc.", "severity.")):
                continue  # a classifier for other classes: keep the fresh head
            if strict_shapes:
                raise ValueError(f"{key}: file has shape {tuple(value.shape)}, model needs {tuple(want)}")
            continue
        out[key] = value
    return out


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path.name}: not a state dict (a mapping of tensor names to tensors)")
    return obj


def load_init_weights(model: I3D, path: str | Path) -> dict[str, list[str]]:
    """Initialise ``model`` from a local file of 2D Inception-v1 or 3D I3D weights. Never downloads.

    The file is a ``torch.save``'d state dict (or ``{"state_dict": ...}``) with this package's key
    names. 4-D conv kernels are inflated; 5-D ones must match. Raises
    :class:`hypomimia.errors.UserError` naming the first mismatching tensor and the fix.
    Returns ``{"loaded": [...], "missing": [...]}`` key lists.
    """
    from hypomimia.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"init weights file not found: {path}", "set train.model.init to a local .pt file, or null"
        )
    try:
        state = _read_state_dict(path)
        state = inflate_2d_state_dict(state, model)
    except (ValueError, RuntimeError, EOFError) as e:
        raise UserError(
            f"init weights do not fit the model: {e}",
            "use weights made for this architecture and train.model.width (or set train.model.init: null)",
        ) from None
    trunk = [k for k in model.state_dict() if not k.startswith(("fc.", "severity."))]
    missing = [k for k in trunk if k not in state]
    if len(missing) == len(trunk):
        raise UserError(
            f"init weights share no tensor names with the I3D model ({path.name})",
            "convert the file to this package's key names (see hypomimia.models.inception2d)",
        )
    model.load_state_dict(state, strict=False)
    return {"loaded": sorted(state), "missing": missing}
