"""From drift tests to an outcome: ``ok | warn | retrain`` and the columns that drove it.

* ``retrain``: the model's own view moved (its probabilities, its label shares or its embedding
  drifted), the population moved (the model-free hypomimia index drifted), or at least
  ``monitor.retrain_columns`` quality signals drifted. Lost videos are quality signals:
  ``ingest_quarantined`` / ``face_lost`` (more lost than the reference, Fisher exact) and
  ``lost_videos`` (more than ``monitor.max_lost_share`` of the submitted videos lost);
* audio facts (loudness, SNR, bandwidth, clipping, sample rate, share of clips with audio;
  :mod:`hypomimia.monitoring.audio`) are quality signals too: one -> warn, a new microphone that
  moves two -> retrain; the voice model's outputs (``p_pd_voice``) are model-side: one retrains;
* ``warn``: fewer quality features drifted and the model's outputs held steady (e.g. one camera
  setting changed: look at it, retraining is not yet called for);
* ``ok``: nothing drifted at the window's per-test level;
* ``too_small``: fewer than ``monitor.min_window`` videos were submitted in the window (lost
  ones count: a window whose videos lose their faces is flagged, not too small), so no test is run.

Pure function of the drift summary: unit-tested on small synthetic frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hypomimia.config.monitor import MonitorConfig

Outcome = Literal["ok", "warn", "retrain", "too_small"]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    drivers: list[str] = field(default_factory=list)  # e.g. ["blur_mean", "embedding", "p_pd"]
    reasons: list[str] = field(default_factory=list)  # one readable line per driver

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def too_small(n: int, cfg: MonitorConfig) -> Decision:
    return Decision(
        "too_small", [], [f"{n} video(s) submitted in the window, monitor.min_window is {cfg.min_window}"]
    )


def decide(summary: dict[str, Any], cfg: MonitorConfig) -> Decision:
    drivers, reasons = [], []
    quality = [c for c, v in summary.get("quality", {}).items() if v.get("drifted")]
    for col in quality:
        v = summary["quality"][col]
        reasons.append(
            f"{col}: median {v['reference_median']:.4g} -> {v['current_median']:.4g} (K-S p={_p(v['p_value'])})"
        )
    for kind, v in ((summary.get("lost") or {}).get("tests") or {}).items():
        if v.get("drifted"):
            quality.append(kind)
            reasons.append(
                f"{kind}: {v['current']} of {summary['lost']['submitted']} videos ({v['current_share']:.0%}) vs "
                f"{v['reference_share']:.0%} of the reference (Fisher p={_p(v['p_value'])})"
            )
    lost = summary.get("lost") or {}
    if lost.get("over_limit"):
        quality.append("lost_videos")
        reasons.append(
            f"lost_videos: {lost['lost']} of {lost['submitted']} submitted videos were quarantined or lost their "
            f"face ({lost['share']:.0%} > monitor.max_lost_share {lost['max_lost_share']:.0%})"
        )
    model_side = []
    for col, v in ((summary.get("audio") or {}).get("columns") or {}).items():
        if v.get("drifted"):  # the recording chain is quality; the voice model's outputs are model-side
            (model_side if v["kind"] == "voice_model" else quality).append(col)
            reasons.append(_audio_reason(col, v))
    for col, v in (summary.get("population") or {}).items():
        if v.get("drifted"):
            model_side.append(col)
            reasons.append(
                f"{col}: median {v['reference_median']:.4g} -> {v['current_median']:.4g} "
                f"(K-S p={_p(v['p_value'])}): the patients differ from the training cohort"
            )
    pred = summary.get("prediction") or {}
    if pred.get("p_pd", {}).get("drifted"):
        v = pred["p_pd"]
        model_side.append("p_pd")
        reasons.append(
            f"p_pd: mean {v['reference_mean']:.3f} -> {v['current_mean']:.3f} (K-S p={_p(v['p_value'])})"
        )
    if pred.get("label", {}).get("drifted"):
        v = pred["label"]
        model_side.append("label")
        ref, cur = v["reference_shares"], v["current_shares"]
        reasons.append(
            "label shares (pd/control/uncertain): "
            f"{ref['pd']:.2f}/{ref['control']:.2f}/{ref['uncertain']:.2f} -> "
            f"{cur['pd']:.2f}/{cur['control']:.2f}/{cur['uncertain']:.2f} (p={_p(v['p_value'])})"
        )
    emb = summary.get("embedding")
    if emb and emb.get("drifted"):
        model_side.append("embedding")
        reasons.append(f"embedding: {emb['method']} score {emb['score']:.4g} above its bootstrap null")
    drivers = quality + model_side
    if model_side or len(quality) >= cfg.retrain_columns:
        return Decision("retrain", drivers, reasons)
    if quality:
        return Decision("warn", drivers, reasons)
    return Decision("ok", [], [])


def _audio_reason(col: str, v: dict[str, Any]) -> str:
    p = _p(v["p_value"])
    if v["kind"] == "categorical":
        return (
            f"{col}: shares {v['reference_shares']} -> {v['current_shares']} of the clips with audio (p={p})"
        )
    if v["kind"] == "share":
        return (
            f"{col}: {_pct(v['reference_share'])} -> {_pct(v['current_share'])} of the clips have audio "
            f"(K-S p={p}): uploads lost or gained their sound track"
        )
    why = (
        "the voice model's outputs moved"
        if v["kind"] == "voice_model"
        else "microphone, room or gain changed"
    )
    return f"{col}: median {v['reference_median']:.4g} -> {v['current_median']:.4g} (K-S p={p}): {why}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.2g}"
