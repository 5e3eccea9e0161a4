"""3D Grad-CAM and Grad-CAM++ on one named layer of a video network.

A map says where in space *and time* the layer's evidence for one class lies. Both methods
weight the layer's activation channels by gradients of the class score; they differ only in
the weights (Selvaraju et al. 2017; Chattopadhay et al. 2018). Maps are upsampled trilinearly
from the layer's (t, h, w) grid to the clip's (T, H, W), so each voxel lines up with a tube pixel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("gradcam", "gradcam++")
_EPS = 1e-7


LAST = "last"
"""Layer name meaning "the model's last spatio-temporal feature map" (resolved by :func:`resolve_layers`)."""


def feature_layer(model: nn.Module, clips: torch.Tensor) -> str:
    """Name of the last module (in execution order) whose output is still a ``N×C×T×H×W`` map with H, W > 1.

    That is the usual Grad-CAM layer: the most semantic one that still has a spatial layout
    (I3D: ``blocks``, the input of global pooling). Found with one probe forward pass on one clip.
    """
    seen: list[str] = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out, name=name: (
                seen.append(name)
                if isinstance(out, torch.Tensor) and out.ndim == 5 and out.shape[3] > 1 and out.shape[4] > 1
                else None
            )
        )
        for name, m in model.named_modules()
        if name  # the model itself is not a layer
    ]
    try:
        with torch.no_grad():
            model.eval()(clips[:1])
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        raise ValueError("the model has no module with a N×C×T×H×W output to explain (is it a 3D network?)")
    return seen[-1]


def resolve_layers(model: nn.Module, layers: list[str] | tuple[str, ...], clips: torch.Tensor) -> list[str]:
    """Layer names with ``last`` replaced by :func:`feature_layer`; unknown names raise KeyError listing options."""
    modules = dict(model.named_modules())
    out = []
    for name in layers or [LAST]:
        name = feature_layer(model, clips) if name == LAST else name
        if name not in modules or not name:
            options = [n for n, m in modules.items() if n and n.count(".") <= 1]
            raise KeyError(f"no layer named {name!r}; top-level layers are: {', '.join(options)}")
        out.append(name)
    return list(dict.fromkeys(out))


@contextmanager
def _capture(layers: dict[str, nn.Module]) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
    # A tensor hook on the layer's output sees exactly the gradient w.r.t. what we store. The
    # activation is cloned because a following in-place op (ReLU(inplace=True)) would change it.
    store: dict[str, dict[str, torch.Tensor]] = {name: {} for name in layers}

    def hook_for(name: str):
        def forward_hook(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            store[name]["activation"] = out.detach().clone()
            if out.requires_grad:
                out.register_hook(lambda g: store[name].__setitem__("gradient", g.detach().clone()))

        return forward_hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in layers.items()]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def class_score(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-clip evidence for the target class.

    Two logits: the margin ``z_target - z_other`` (the log-odds), so evidence both classes share
    cancels out. One logit (PD = 1): the logit or its negative. More classes: the target logit.
    """
    if logits.ndim == 1 or logits.shape[1] == 1:
        z = logits.reshape(-1)
        return torch.where(target == 1, z, -z)
    chosen = logits.gather(1, target.view(-1, 1)).squeeze(1)
    if logits.shape[1] == 2:
        return chosen - logits.gather(1, (1 - target).view(-1, 1)).squeeze(1)
    return chosen


def predicted_class(logits: torch.Tensor) -> torch.Tensor:
    if logits.ndim == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(1)


def _channel_weights(act: torch.Tensor, grad: torch.Tensor, method: str) -> torch.Tensor:
    dims = (2, 3, 4)
    if method == "gradcam":
        return grad.mean(dims)
    if method == "gradcam++":
        # Closed form of alpha for an exponential score (Chattopadhay et al., eq. 19), as in common implementations.
        g2, g3 = grad.pow(2), grad.pow(3)
        denom = 2 * g2 + act.sum(dims, keepdim=True) * g3
        alpha = torch.where(grad != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
        return (alpha * F.relu(grad)).sum(dims)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each clip's map to [0, 1] by its maximum (an all-zero map stays zero)."""
    peak = maps.flatten(1).amax(1).clamp_min(_EPS).view(-1, *([1] * (maps.ndim - 1)))
    return maps / peak


def activation_maps(
    model: nn.Module,
    clips: torch.Tensor,
    layers: list[str] | tuple[str, ...] = (LAST,),
    methods: list[str] | tuple[str, ...] = ("gradcam",),
    target: torch.Tensor | None = None,
) -> tuple[dict[str, dict[str, torch.Tensor]], torch.Tensor]:
    """Maps ``{layer: {method: N×T×H×W in [0, 1]}}`` for clips ``N×C×T×H×W``, and the logits.

    ``target`` holds one class per clip; ``None`` explains the predicted class. One forward and
    one backward pass serve every layer and method. The model is put in eval mode.
    """
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {METHODS}")
    names = resolve_layers(model, layers, clips)
    modules = dict(model.named_modules())
    model.eval()
    clips = (
        clips.detach().clone().requires_grad_(True)
    )  # the graph reaches every layer even if weights are frozen
    with _capture({n: modules[n] for n in names}) as store:
        logits = model(clips)
        target = predicted_class(logits.detach()) if target is None else target.to(logits.device).long()
        torch.autograd.grad(class_score(logits, target).sum(), clips)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name in names:
        if "activation" not in store[name] or "gradient" not in store[name]:
            raise RuntimeError(f"layer {name!r} did not take part in the forward/backward pass")
        act, grad = store[name]["activation"].float(), store[name]["gradient"].float()
        if act.ndim != 5:
            raise ValueError(
                f"layer {name!r} outputs shape {tuple(act.shape)}, not N×C×T×H×W; choose a 3D layer"
            )
        out[name] = {}
        for m in methods:
            w = _channel_weights(act, grad, m)
            cam = F.relu((w[:, :, None, None, None] * act).sum(1, keepdim=True))
            cam = F.interpolate(cam, size=tuple(clips.shape[2:]), mode="trilinear", align_corners=False)
            out[name][m] = normalize_maps(cam[:, 0])
    return out, logits.detach()
