"""What training leaves for auditors: the model's training-data lineage, and the registered version's
tags, model card and audit record.

:func:`training_lineage` goes into ``metadata.json`` (``lineage``): the DVC data version, the tube
table's hash, and every video the model saw with its sha256 and split, so the reverse query (which
models used this video?) needs only the registry. :func:`on_registered` tags the registry version
with the same facts, logs the model card to the run, and appends a ``register`` audit record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.lineage import audit
from hypomimia.lineage.model_card import build_model_card, write_model_card
from hypomimia.lineage.provenance import data_version, mlflow_tags, sha256_file, stamp

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def training_lineage(params: Any, tubes_dir: Path, split: Any) -> dict[str, Any]:
    """``split`` has ``train``/``val``/``test`` lists of items with ``video_id`` and ``subject_id``."""
    table = Path(tubes_dir) / "tubes.parquet"
    cols = pd.read_parquet(table, columns=["video_id", "sha256"])
    sha = dict(zip(cols["video_id"], cols["sha256"], strict=True))
    videos = [
        {"video_id": it.video_id, "subject_id": it.subject_id, "sha256": sha.get(it.video_id), "split": name}
        for name in SPLITS
        for it in getattr(split, name)
    ]
    return {
        "data_version": data_version({"tubes": table}),
        "tubes_sha256": sha256_file(table),
        "videos": sorted(videos, key=lambda v: v["video_id"]),
        "provenance": stamp("train", params, {"tubes": table}),
    }


def audit_log_for(tracking_uri: str | None) -> Path | None:
    """Beside a local SQLite store (``work/mlflow/mlflow.db`` -> ``work/audit/audit.jsonl``), unless
    ``HYPOMIMIA_AUDIT_LOG`` says otherwise; None (the default path) for servers."""
    if tracking_uri and tracking_uri.startswith("sqlite:///") and not os.environ.get("HYPOMIMIA_AUDIT_LOG"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent.parent / "audit" / "audit.jsonl"
    return None


def version_tags(params: Any, meta: dict[str, Any], run_id: str, **extra: Any) -> dict[str, str]:
    lineage = meta.get("lineage") or {}
    tags = mlflow_tags(
        "train",
        params,
        run_id=run_id,
        tubes_sha256=lineage.get("tubes_sha256"),
        videos=len(lineage.get("videos") or []),
        subjects=len({v["subject_id"] for v in lineage.get("videos") or []}),
        **extra,
    )
    tags["data.version"] = lineage.get("data_version") or "unknown"
    return tags


def on_registered(
    name: str, version: str, run_id: str, params: Any, model_dir: Path, tracking_uri: str, **extra: Any
) -> dict[str, Any]:
    """Tag the new registry version, log its model card to the run, and audit the registration."""
    import json

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    meta = json.loads((Path(model_dir) / "metadata.json").read_text())
    tags = version_tags(params, meta, run_id, **extra)
    card = build_model_card(model_dir, registry={"name": name, "version": version})
    card_dir = Path(model_dir) / "model_card"
    for path in write_model_card(card, card_dir):
        client.log_artifact(run_id, str(path), "model_card")
    tags["model_card"] = f"runs:/{run_id}/model_card/model_card.json"
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)
    entry = audit.record(
        "register",
        {"model": name, "version": version, "run_id": run_id, "data_version": tags.get("data.version")},
        why="trained by hypomimia train",
        evidence=f"runs:/{run_id}/metadata.json",
        path=audit_log_for(tracking_uri),
    )
    log.info("registered %s v%s (run %s), audit seq %d", name, version, run_id, entry["seq"])
    return tags
