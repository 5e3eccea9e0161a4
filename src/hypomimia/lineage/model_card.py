"""The model card, generated from a model's artifacts, never written by hand.

:func:`build_model_card` reads what training, evaluation and explanation wrote into a model folder
(``metadata.json`` and ``metrics.json`` always; ``evaluation.json`` and ``explain.json`` when those
stages ran, from the folder or given paths) and returns one JSON-ready dict; :func:`render_markdown`
turns it into the Markdown an auditor reads. The endpoint's ``GET /model`` serves the same dict.
Every number in the card is copied from an artifact; every sentence that is not is a fixed statement
of scope (the model is not a medical device).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypomimia.errors import UserError

CARD_VERSION = "1"
OUT_OF_SCOPE = (
    "diagnosis, screening or treatment decisions: this is a research biomarker, not a medical device",
    "people, cameras or recording conditions unlike the training data (see training data below)",
    "any use on video without consent for this purpose",
)
_SUBJECT_KEYS = ("auroc", "auroc_ci95", "balanced_accuracy", "balanced_accuracy_ci95", "sensitivity",
                 "specificity", "brier", "ece", "n")  # fmt: skip


def _read(path: Path | None) -> dict[str, Any] | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text())
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e})", "re-run the stage that wrote it") from None


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    return v


def _training_data(meta: dict[str, Any]) -> dict[str, Any]:
    lineage = meta.get("lineage") or {}
    videos = lineage.get("videos") or []
    synthetic = bool(videos) and all(str(v.get("video_id", "")).startswith("ph_") for v in videos)
    by_split: dict[str, dict[str, int]] = {}
    for split in ("train", "val", "test"):
        part = [v for v in videos if v.get("split") == split]
        by_split[split] = {"videos": len(part), "subjects": len({v.get("subject_id") for v in part})}
    return {
        "source": "phantom: synthetic face videos rendered by hypomimia (no real people)"
        if synthetic
        else "manifest-described video study (see the lineage for the exact files)",
        "synthetic": synthetic,
        "data_version": lineage.get("data_version"),
        "tubes_sha256": lineage.get("tubes_sha256"),
        "splits": by_split if videos else meta.get("data", {}),
        "face_tubes": meta.get("face_tubes"),
    }


def _modalities(meta: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """What the answer reads, with each modality's features and their versions, and each one's test AUROC."""
    named = meta.get("modalities") or {"video": "the I3D on the face tube"}
    train = meta.get("train_params") or {}
    streams = metrics.get("streams") or {}
    features: dict[str, dict[str, Any]] = {
        "video": {"input": "face tube", "tube_code_version": (meta.get("face_tubes") or {}).get("tube_code_version")},
        "landmarks": {"features": "landmark-trajectory features of the face tube's FaceMesh landmarks",
                      "params": train.get("landmark_stream")},
        "voice": {"features": (train.get("voice_stream") or {}).get("measures"),
                  "feature_version": (meta.get("voice") or {}).get("feature_version"),
                  "voice_params": (meta.get("voice") or {}).get("params"),
                  "voice_table_sha256": (meta.get("voice") or {}).get("table_sha256"),
                  "fusion": (streams.get("voice_fusion") or {}).get("method")},
    }  # fmt: skip
    out = {name: {"description": what, **features.get(name, {})} for name, what in named.items()}
    for name, key in (("video", "video"), ("landmarks", "landmarks"), ("voice", "voice")):
        if name in out and key in streams:
            out[name]["test_subject_auroc"] = streams[key].get("test_subject_auroc")
    if (streams.get("voice") or {}).get("skipped"):
        out["voice_not_used"] = streams["voice"]["skipped"]
    return {"used": list(named), **out}


def _metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    overall = metrics.get("overall", {})
    out: dict[str, Any] = {
        level: {k: overall[level][k] for k in _SUBJECT_KEYS if k in overall.get(level, {})}
        for level in ("subject", "video", "clip")
        if level in overall
    }
    slices = metrics.get("slices") or {}
    return {
        "test_fold": (metrics.get("split") or {}).get("test_fold"),
        "overall": out,
        "slices": {name: {k: v for k, v in m.items() if k in _SUBJECT_KEYS} for name, m in slices.items()},
        "per_class": metrics.get("per_class", {}),
        "calibration": {
            "temperature": metrics.get("temperature"),
            **{
                k: overall.get("subject", {}).get(k)
                for k in ("brier", "ece")
                if k in overall.get("subject", {})
            },
        },
        "abstention": overall.get("subject", {}).get("abstain"),
        "validation_subject": metrics.get("validation"),
    }


def _evaluation(ev: dict[str, Any] | None) -> dict[str, Any] | None:
    """Ablation and baseline summary: each model's subject AUROC and CI, as evaluate wrote them."""
    if ev is None:
        return None
    rows = []
    models = ev.get("models") or ev.get("per_model") or {}
    items = models.items() if isinstance(models, dict) else ((m.get("name"), m) for m in models)
    for name, m in items:
        s = m.get("subject", m) if isinstance(m, dict) else {}
        rows.append(
            {"model": name, "auroc": s.get("auroc"), "auroc_ci95": s.get("auroc_ci95"), "n": s.get("n")}
        )
    keep = {k: ev[k] for k in ("decision", "blessed", "blessing", "reason", "champion", "created") if k in ev}
    return {"models": rows, **keep}


def _explanations(ex: dict[str, Any] | None) -> dict[str, Any] | None:
    if ex is None:
        return None
    headline = ex.get("headline_map")
    attention = (ex.get("attention") or {}).get(headline) or {}
    return {
        "map": headline,
        "attention": attention,
        "concentration_check": ex.get("concentration_check"),
        "embeddings": ex.get("embeddings"),
    }


def _limitations(card: dict[str, Any]) -> list[str]:
    out = []
    data = card["training_data"]
    if data["synthetic"]:
        out.append(
            "trained and tested on synthetic phantom video only: performance on real patients is unknown"
        )
    subj = card["metrics"]["overall"].get("subject", {})
    n, ci = subj.get("n"), subj.get("auroc_ci95")
    if n is not None:
        out.append(f"the test fold holds {n} subjects: estimates are uncertain")
    if (
        isinstance(ci, list | tuple)
        and len(ci) == 2
        and all(isinstance(x, float) and math.isfinite(x) for x in ci)
    ):
        out.append(f"subject AUROC 95% CI spans {ci[0]:.2f}-{ci[1]:.2f}")
    ab = card["metrics"].get("abstention") or {}
    if ab.get("coverage") is not None:
        out.append(
            f"abstains (answers 'uncertain') when |p - 0.5| < {ab.get('band')}: covered {ab['coverage']:.0%} "
            "of test subjects"
        )
    if card["evaluation"] is None:
        out.append("no ablation/baseline evaluation (evaluation.json) was found for this model")
    if card["explanations"] is None:
        out.append("no explanation run (explain.json) was found for this model")
    return out


def build_model_card(
    model_dir: Path,
    *,
    evaluation: Path | None = None,
    explain: Path | None = None,
    registry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card of the model in ``model_dir`` (``metadata.json`` and ``metrics.json`` required).

    ``evaluation``/``explain``: paths to evaluation.json/explain.json (default: in ``model_dir``).
    ``registry``: name, version, aliases of the registered version, when known.
    """
    model_dir = Path(model_dir)
    meta = _read(model_dir / "metadata.json")
    metrics = _read(model_dir / "metrics.json")
    if meta is None or metrics is None:
        raise UserError(
            f"{model_dir} has no metadata.json/metrics.json: not a trained model folder",
            "pass the output folder of 'hypomimia train' (e.g. work/train)",
        )
    ev = _read(evaluation or model_dir / "evaluation.json")
    ex = _read(explain or model_dir / "explain.json")
    card: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "model": {
            "name": meta.get("name"),
            "metadata_version": meta.get("version"),
            "package_version": meta.get("package_version"),
            "architecture": (meta.get("model") or {}).get("arch"),
            "task": meta.get("task"),
            "labels": meta.get("labels"),
            "mlflow_run_id": (meta.get("mlflow") or {}).get("run_id"),
            "registry": registry,
            "code": ((meta.get("lineage") or {}).get("provenance") or {}).get("code"),
            "streams": _streams(metrics),
        },
        "intended_use": meta.get("intended_use"),
        "out_of_scope": list(OUT_OF_SCOPE),
        "modalities": _modalities(meta, metrics),
        "training_data": _training_data(meta),
        "metrics": _metrics(metrics),
        "evaluation": _evaluation(ev),
        "explanations": _explanations(ex),
        "sources": {
            name: str(p)
            for name, p in {
                "metadata": model_dir / "metadata.json",
                "metrics": model_dir / "metrics.json",
                "evaluation": evaluation or model_dir / "evaluation.json",
                "explain": explain or model_dir / "explain.json",
            }.items()
            if Path(p).is_file()
        },
    }
    card["limitations"] = _limitations(card)
    return _finite(card)


def _streams(metrics: dict[str, Any]) -> dict[str, Any]:
    """Which streams the model fuses, each one's held-out AUROC and the landmark fusion's weights
    (docs/training.md); the voice's own section is ``modalities``."""
    streams = metrics.get("streams")
    if not streams:
        return {"inputs": ["video"], "fusion": None}
    from hypomimia.models.fusion import LateFusion

    fusion = streams.get("fusion")
    return {
        "inputs": ["video", *(["landmarks"] if fusion else [])],
        "fusion": "late: non-negative stacking on the validation fold (models/fusion.py)",
        "weights": LateFusion.from_dict(fusion).weights if fusion else None,
        "test_subject_auroc": {
            k: v["test_subject_auroc"]
            for k, v in streams.items()
            if isinstance(v, dict) and "test_subject_auroc" in v
        },
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, float | None) for x in v):
        return f"[{_fmt(v[0])}, {_fmt(v[1])}]"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return "n/a" if v is None else str(v)


def render_markdown(card: dict[str, Any]) -> str:
    m, data, met = card["model"], card["training_data"], card["metrics"]
    lines = [
        f"# Model card: {m['name']}" + (f" v{m['registry']['version']}" if m.get("registry") else ""),
        "",
        "_Generated from the model's artifacts by `hypomimia`; do not edit by hand._",
        "",
        "## Intended use",
        "",
        str(card["intended_use"]),
        "",
        "**Out of scope:**",
        "",
        *[f"- {s}" for s in card["out_of_scope"]],
        "",
        "## Model",
        "",
        f"- architecture: {_fmt(m['architecture'])}; labels: {_fmt(m['labels'])}",
        f"- streams: {', '.join(m['streams']['inputs'])}"
        + (
            f" (fusion weights {_fmt(m['streams']['weights'])}; test subject AUROC {_fmt(m['streams']['test_subject_auroc'])})"
            if m["streams"].get("weights")
            else ""
        ),  # fmt: skip
        f"- package {_fmt(m['package_version'])}, MLflow run {_fmt(m['mlflow_run_id'])}",
        f"- code: {_fmt(m.get('code'))}",
    ]
    if m.get("registry"):
        lines.append(f"- registry: {_fmt(m['registry'])}")
    mods = card.get("modalities") or {}
    lines += ["", "## Modalities", "", f"The answer reads: {', '.join(mods.get('used', []))}.", ""]
    for name in mods.get("used", []):
        info = {k: v for k, v in mods[name].items()  # every param is in the JSON card; here the versions
                if k not in ("description", "params", "voice_params") and v is not None}  # fmt: skip
        lines.append(f"- **{name}**: {mods[name]['description']}" + (f" ({_fmt(info)})" if info else ""))
    if mods.get("voice_not_used"):
        lines.append(f"- voice not used: {mods['voice_not_used']}")
    lines += [
        "",
        "## Training data",
        "",
        f"- {data['source']}",
        f"- DVC data version: {_fmt(data['data_version'])}",
    ]
    for split, c in (data.get("splits") or {}).items():
        lines.append(f"- {split}: {_fmt(c)}")
    lines += ["", "## Metrics (held-out test fold)", "", "| level | " + " | ".join(_SUBJECT_KEYS) + " |",
              "|---|" + "---|" * len(_SUBJECT_KEYS)]  # fmt: skip
    for level, vals in met["overall"].items():
        lines.append(f"| {level} | " + " | ".join(_fmt(vals.get(k)) for k in _SUBJECT_KEYS) + " |")
    if met["slices"]:
        lines += ["", "Per slice (subject level):", ""]
        lines += [
            f"- {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in s.items())
            for name, s in met["slices"].items()
        ]
    lines += ["", "## Calibration and abstention", "", f"- calibration: {_fmt(met['calibration'])}",
              f"- abstention: {_fmt(met['abstention'])}"]  # fmt: skip
    lines += ["", "## Ablation and baselines", ""]
    if card["evaluation"]:
        lines += ["| model | subject AUROC | 95% CI | n |", "|---|---|---|---|"]
        lines += [f"| {r['model']} | {_fmt(r['auroc'])} | {_fmt(r['auroc_ci95'])} | {_fmt(r['n'])} |"
                  for r in card["evaluation"]["models"]]  # fmt: skip
    else:
        lines.append("not evaluated yet (run `hypomimia evaluate`)")
    lines += ["", "## Explanation findings", ""]
    if card["explanations"]:
        ex = card["explanations"]
        lines += [
            f"- map: {ex['map']}",
            f"- attention: {ex['attention']}",
            f"- check: {ex['concentration_check']}",
        ]
    else:
        lines.append("not explained yet (run `hypomimia explain`)")
    lines += ["", "## Known limitations", "", *[f"- {s}" for s in card["limitations"]], ""]
    return "\n".join(lines)


def write_model_card(card: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    j, md = out_dir / "model_card.json", out_dir / "model_card.md"
    j.write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    md.write_text(render_markdown(card), encoding="utf-8")
    return j, md
