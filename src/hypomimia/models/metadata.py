"""``metadata.json`` shipped with every trained model (house style rule 7, MONAI-bundle style).

It says what the model is for, what one input clip is, what comes out, how well it did and on
which data. :func:`verify_model` checks a network against it (a contract test and a serving guard).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypomimia import __version__, jsonio

# Bump METADATA_VERSION with an entry in CHANGELOG whenever the model contract changes.
METADATA_VERSION = "0.2.0"
CHANGELOG = {
    "0.1.0": "first I3D face-tube model: control vs PD, clip-level logits, subject aggregation by mean",
    "0.2.0": "modalities (video, landmarks, voice); a model with the voice carries voice_stream and voice_fusion "
    "in model.pt's extra and the voice params, feature version and table hash in metadata.json (voice)",
}
# What each modality of the answer reads (the model card and GET /model show it).
MODALITIES = {
    "video": "the I3D on the face tube (aligned, cropped face over time): clip-level PD margin",
    "landmarks": "logistic regression on the face tube's landmark-trajectory features (models.fusion.LandmarkStream)",
    "voice": "logistic regression on Praat voice measures of the clip's speech (models.fusion.VoiceStream; "
    "docs/voice.md), fused with the visual margin; a clip without voice is answered from the face alone",
}
INTENDED_USE = (
    "research, not diagnosis: a hypomimia biomarker for studies of facial motion in Parkinson's disease; "
    "not to be used for diagnostic or treatment decisions"
)


def build_metadata(
    *,
    model_config: dict[str, Any],
    clip: dict[str, Any],
    labels: list[str] | tuple[str, ...],
    metrics: dict[str, Any],
    data: dict[str, Any],
    train_params: dict[str, Any] | None = None,
    modalities: list[str] | tuple[str, ...] = ("video",),
) -> dict[str, Any]:
    """``modalities``: what the served answer reads (video; landmarks and voice when the streams are on)."""
    return {
        "name": "hypomimia-i3d"
        if model_config.get("arch") == "i3d"
        else f"hypomimia-{model_config.get('arch')}",
        "version": METADATA_VERSION,
        "changelog": CHANGELOG,
        "package_version": __version__,
        "frameworks": {"python": platform.python_version(), "torch": torch.__version__},
        "task": "binary classification of face tubes (control vs PD) with an optional UPDRS 3.2 severity head",
        "intended_use": INTENDED_USE,
        "network_data_format": {
            "inputs": {"clip": {**clip, "modality": "face tube video (aligned, cropped face over time)"}},
            "outputs": {
                "logits": {"shape": [len(labels)], "labels": list(labels), "activation": "softmax"},
                "embedding": {"description": "pooled descriptor from embed()"},
            },
        },
        "labels": list(labels),
        "modalities": {m: MODALITIES[m] for m in modalities},
        "aggregation": "clip probabilities are averaged per video, then per subject",
        "model": model_config,
        "train_params": train_params or {},
        "metrics": metrics,
        "data_source": data,
        "references": [
            "Carreira & Zisserman, Quo Vadis, Action Recognition? CVPR 2017 (I3D)",
            "Contreras Lopez et al., WSSFN 2025 (I3D facial hypomimia)",
        ],
    }


def write_metadata(path: Path, metadata: dict[str, Any]) -> Path:
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(jsonio.dumps(metadata))
    tmp.replace(path)
    return path


def verify_model(model: nn.Module, metadata: dict[str, Any]) -> None:
    """Feed one zero clip of the declared shape; the output must have one logit per declared label."""
    clip = metadata["network_data_format"]["inputs"]["clip"]
    x = torch.zeros(1, *clip["shape"], dtype=getattr(torch, clip["dtype"]))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was_training)
    want = (1, len(metadata["labels"]))
    if tuple(out.shape) != want:
        raise ValueError(f"model output shape {tuple(out.shape)} does not match metadata {want}")
