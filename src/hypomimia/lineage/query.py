"""Lineage queries: from a served prediction, an alias, a version or a run back to the video bytes,
and from a video or subject forward to every registered model trained on it.

The backward chain (:func:`lineage`), each link checked against the next by content hash where the
artifacts are at hand (``work_dir``):

    prediction (request id, prediction log) -> registry version (tags, aliases, audit history, bento)
    -> training run (commit, params hash, seed, lock hash) -> metadata.json lineage (DVC data version,
    every video's sha256 and split, face-tube params -> cache keys) -> validation summary (Data Docs)
    -> face-tube report -> ingest report and quarantine -> raw video hashes.

The forward query (:func:`models_using`) reads each registered version's ``metadata.json`` from its
run, so it needs only the registry: what a data-deletion request needs.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.errors import UserError
from hypomimia.inference import prediction_log
from hypomimia.lineage import audit
from hypomimia.lineage.provenance import sha256_file

DEFAULT_MODEL = "hypomimia-i3d"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _client(tracking_uri: str | None):
    from mlflow import MlflowClient

    from hypomimia.learning.mlflow_runs import default_tracking_uri

    return MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())


def _run_metadata(client, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "metadata.json", tmp)
        except Exception as e:
            raise UserError(
                f"run {run_id} has no metadata.json artifact ({type(e).__name__})",
                "the model was not logged by 'hypomimia train'; lineage needs its metadata",
            ) from None
        return json.loads(Path(path).read_text())


def _version_info(client, mv) -> dict[str, Any]:
    aliases = list(getattr(mv, "aliases", []) or [])
    return {
        "name": mv.name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "aliases": aliases,
        "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC").isoformat(),
        "tags": dict(mv.tags or {}),
    }


def _run_exists(client, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


def resolve(ref: str, tracking_uri: str | None = None, predictions: Path | None = None) -> dict[str, Any]:
    """What ``ref`` names: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, a version number (of
    hypomimia-i3d), an MLflow run id, or a prediction's request id."""
    client = _client(tracking_uri)
    out: dict[str, Any] = {"ref": ref}
    m = re.match(r"^models:/([^/@]+)(?:@(.+)|/(\d+))$", ref)
    if m:
        name, alias, version = m.groups()
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
        out.update(kind="alias" if alias else "version", version=mv)
        return out
    if ref.isdigit():
        out.update(kind="version", version=client.get_model_version(DEFAULT_MODEL, ref))
        return out
    if _RUN_ID.match(ref) and _run_exists(client, ref):  # else maybe a request id in uuid hex form
        found = client.search_model_versions(f"run_id = '{ref}'")
        out.update(kind="run", run_id=ref, version=found[0] if found else None)
        return out
    logged = prediction_log.read_log(predictions)  # torn or unreadable lines: skipped and reported
    for rec in logged.records:
        if rec.request_id == ref:
            if not (rec.model_name and rec.model_version):
                raise UserError(
                    f"prediction {ref} records no model (outcome {rec.outcome})",
                    "only answered predictions name the model version that made them",
                )
            out.update(kind="prediction", prediction=rec.model_dump(mode="json"),
                       version=client.get_model_version(rec.model_name, rec.model_version))  # fmt: skip
            return out
    skipped = f"; {len(logged.skipped)} unreadable lines skipped" if logged.skipped else ""
    raise UserError(
        f"{ref!r} is not a model URI, a version, a run id, or a request id in the prediction log "
        f"({prediction_log.store_path(predictions)}{skipped})",
        "pass models:/hypomimia-i3d@champion, a version number, a run id, or a served request id",
    )


def _check(path: Path, expected: str | None) -> dict[str, Any]:
    """A local artifact and whether its bytes are the ones the next link recorded."""
    if not path.is_file():
        return {"path": str(path), "present": False}
    sha = sha256_file(path)
    return {
        "path": str(path),
        "present": True,
        "sha256": sha,
        "matches": None if expected is None else sha == expected,
    }


def _input_sha(report: dict | None, name: str) -> str | None:
    return (((report or {}).get("provenance") or {}).get("inputs") or {}).get(name, {}).get("sha256")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _local_chain(meta: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Validation, face tubes and ingest as found under ``work_dir``, each checked by hash against the
    link after it (training recorded the tube table's hash; facetubes the ingest table's)."""
    lin = meta.get("lineage") or {}
    tubes_rep = _read_json(work_dir / "facetubes" / "report.json")
    val = _read_json(work_dir / "validate" / "summary.json")
    ingest_rep = _read_json(work_dir / "ingest" / "report.json")
    tubes = _check(work_dir / "facetubes" / "tubes.parquet", lin.get("tubes_sha256"))
    ingested = _check(work_dir / "ingest" / "ingested.parquet", _input_sha(tubes_rep, "ingested"))
    quarantine = work_dir / "ingest" / "quarantine.csv"
    docs = work_dir / "validate" / "data_docs" / "index.html"
    return {
        "validation": {
            "summary": str(work_dir / "validate" / "summary.json") if val else None,
            "success": (val or {}).get("success"),
            "failed_errors": (val or {}).get("failed_errors"),
            "warnings": (val or {}).get("warnings"),
            "validated_tubes_match": None
            if val is None
            else _input_sha(val, "tubes") == lin.get("tubes_sha256"),
            "data_docs": docs.resolve().as_uri() if docs.is_file() else None,
        },
        "face_tubes": {
            "report": str(work_dir / "facetubes" / "report.json") if tubes_rep else None,
            "table": tubes,
            "counts": {
                k: (tubes_rep or {}).get(k) for k in ("processed", "cache_hits", "accepted", "rejected")
            },
        },
        "ingest": {
            "report": str(work_dir / "ingest" / "report.json") if ingest_rep else None,
            "table": ingested,
            "manifest_sha256": _input_sha(ingest_rep, "manifest"),
            "counts": {
                k: (ingest_rep or {}).get(k) for k in ("listed", "accepted", "quarantined", "unlisted")
            },
            "quarantine": _quarantine(quarantine),
        },
    }


def _quarantine(path: Path) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    q = pd.read_csv(path)
    cols = [c for c in ("video_id", "subject_id", "reason", "sha256") if c in q]
    return q[cols].astype(object).where(q[cols].notna(), None).to_dict("records")


def _cache_keys(meta: dict[str, Any]) -> dict[str, str] | None:
    params = dict(meta.get("face_tubes") or {})
    if not params:
        return None
    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.faces.tube import TUBE_CODE_VERSION, cache_key

    if params.pop("tube_code_version", TUBE_CODE_VERSION) != TUBE_CODE_VERSION:
        return None  # made by other tube code: its keys cannot be recomputed here
    cfg = FacetubesConfig.model_validate(params)
    return {
        v["video_id"]: cache_key(v["sha256"], cfg)
        for v in (meta.get("lineage") or {}).get("videos", [])
        if v.get("sha256")
    }


def _audit_for(name: str, version: str, audit_log: Path | None) -> list[dict[str, Any]]:
    out = []
    for r in audit.read(audit_log):
        what = r.get("what") or {}
        if what.get("model") == name and str(what.get("version")) == str(version):
            out.append(r)
    return out


def lineage(
    ref: str,
    tracking_uri: str | None = None,
    predictions: Path | None = None,
    work_dir: Path = Path("work"),
    audit_log: Path | None = None,
) -> dict[str, Any]:
    """The whole chain behind ``ref`` as one JSON-ready dict (see the module docstring)."""
    client = _client(tracking_uri)
    r = resolve(ref, tracking_uri, predictions)
    mv = r.get("version")
    run_id = mv.run_id if mv is not None else r.get("run_id")
    run = client.get_run(run_id)
    meta = _run_metadata(client, run_id)
    lin = meta.get("lineage") or {}
    chain: dict[str, Any] = {"ref": ref, "kind": r["kind"], "prediction": r.get("prediction")}
    if mv is not None:
        chain["registry"] = _version_info(client, mv)
        history = _audit_for(mv.name, mv.version, audit_log)
        chain["registry"]["audit"] = history
        chain["registry"]["alias_history"] = [
            {k: h.get(k) for k in ("time", "actor", "action", "why", "evidence")}
            | {"alias": h["what"].get("alias")}
            for h in history
            if h["action"] in ("promote", "rollback", "reject")
        ]
        chain["evaluation"] = [h for h in history if h["action"] in ("promote", "reject")]
        bento = [
            h["what"].get("bento_tag") or h["what"].get("tag")
            for h in history
            if h["action"] == "serve_build"
        ]
        chain["bento"] = chain["registry"]["tags"].get("bento.tag") or (bento[-1] if bento else None)
    tags, params = run.data.tags, run.data.params
    chain["training_run"] = {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "git_commit": tags.get("git.commit"),
        "git_dirty": tags.get("git.dirty"),
        "params_sha256": tags.get("params.sha256"),
        "lock_sha256": tags.get("lock.sha256"),
        "data_version": tags.get("data.version") or tags.get("dvc.data.dvc"),
        "seed": params.get("seed"),
        "fold": tags.get("fold") or params.get("fold"),
    }
    chain["data"] = {
        "data_version": lin.get("data_version"),
        "tubes_sha256": lin.get("tubes_sha256"),
        "face_tube_params": meta.get("face_tubes"),
        "cache_keys": _cache_keys(meta),
        "videos": lin.get("videos", []),
        "subjects": sorted({v["subject_id"] for v in lin.get("videos", [])}),
    }
    chain["local"] = _local_chain(meta, Path(work_dir))
    return chain


def _metadata_cached(client, run_id: str, cache: dict[str, dict]) -> dict[str, Any] | None:
    if run_id not in cache:
        try:
            cache[run_id] = _run_metadata(client, run_id)
        except UserError:
            cache[run_id] = {}
    return cache[run_id] or None


def models_using(
    *,
    video_sha256: str | None = None,
    subject_id: str | None = None,
    tracking_uri: str | None = None,
) -> list[dict[str, Any]]:
    """Every registered model version whose training data (any split) holds the video or subject."""
    if not (video_sha256 or subject_id):
        raise UserError("nothing to look up", "pass --video SHA256 or --subject ID")
    client = _client(tracking_uri)
    cache: dict[str, dict] = {}
    hits = []
    for mv in client.search_model_versions(max_results=10000):
        meta = _metadata_cached(client, mv.run_id, cache)
        videos = ((meta or {}).get("lineage") or {}).get("videos") or []
        used = [v for v in videos if (video_sha256 and v.get("sha256") == video_sha256)
                or (subject_id and v.get("subject_id") == subject_id)]  # fmt: skip
        if used:
            info = _version_info(client, client.get_model_version(mv.name, mv.version))
            info.pop("tags")
            info["videos"] = [{k: v[k] for k in ("video_id", "subject_id", "sha256", "split")} for v in used]
            hits.append(info)
    return sorted(hits, key=lambda h: (h["name"], int(h["version"])))


def models_using_removed(
    manifest: Path, tracking_uri: str | None = None, mark: bool = False
) -> list[dict[str, Any]]:
    """Registered versions trained on subjects or videos the manifest no longer lists (after a
    deletion request removed them): which models must be retrained or retired. ``mark`` tags each
    such version ``data.removed_subjects`` / ``data.removed_videos`` in the registry."""
    from hypomimia.data.manifest import read_manifest

    rows = read_manifest(manifest).rows
    subjects = {str(r.get("subject_id")) for r in rows}
    videos = {str(r.get("video_id")) for r in rows}
    client = _client(tracking_uri)
    cache: dict[str, dict] = {}
    out = []
    for mv in client.search_model_versions(max_results=10000):
        lin = ((_metadata_cached(client, mv.run_id, cache) or {}).get("lineage")) or {}
        gone = [
            v
            for v in lin.get("videos") or []
            if v["video_id"] not in videos or v["subject_id"] not in subjects
        ]
        if gone:
            info = _version_info(client, client.get_model_version(mv.name, mv.version))
            info.pop("tags")
            info["removed_subjects"] = sorted({v["subject_id"] for v in gone} - subjects)
            info["removed_videos"] = sorted(v["video_id"] for v in gone)
            if mark:
                client.set_model_version_tag(
                    mv.name, mv.version, "data.removed_subjects", ",".join(info["removed_subjects"])
                )
                client.set_model_version_tag(
                    mv.name, mv.version, "data.removed_videos", ",".join(info["removed_videos"])
                )
            out.append(info)
    return sorted(out, key=lambda h: (h["name"], int(h["version"])))


def summary(chain: dict[str, Any]) -> str:
    """A few lines for the terminal; the whole chain is in the Markdown and JSON."""
    t, d, loc = chain["training_run"], chain["data"], chain["local"]
    g = chain.get("registry")
    lines = [f"lineage of {chain['ref']} ({chain['kind']})"]
    if chain.get("prediction"):
        p = chain["prediction"]
        lines.append(f"  prediction {p['request_id']} at {p['time']}: {p['outcome']} {p.get('label') or ''}")
    if g:
        lines.append(
            f"  registry   {g['name']} v{g['version']} aliases {g['aliases'] or '-'}; {len(g['audit'])} audit records"
        )
    lines.append(
        f"  run        {t['run_id']} ({t['run_name']}) commit {t['git_commit']} dirty {t['git_dirty']}"
    )
    lines.append(
        f"  data       DVC {d['data_version']}; {len(d['videos'])} videos of {len(d['subjects'])} subjects"
    )
    v = loc["validation"]
    lines.append(
        f"  validation success {v['success']}; validated these tubes: {v['validated_tubes_match']}; {v['data_docs']}"
    )
    lines.append(
        f"  tubes      table matches the model's record: {loc['face_tubes']['table'].get('matches')}"
    )
    ing = loc["ingest"]
    lines.append(f"  ingest     {ing['counts']}; table matches: {ing['table'].get('matches')}")
    return "\n".join(lines)


def render_markdown(chain: dict[str, Any]) -> str:
    """The chain as Markdown: one section per link, newest (the prediction) first."""
    lines = [f"# Lineage of `{chain['ref']}`", "", f"_kind: {chain['kind']}_", ""]
    if chain.get("prediction"):
        p = chain["prediction"]
        lines += ["## Prediction", "", *[f"- {k}: {p.get(k)}" for k in
                  ("request_id", "time", "outcome", "label", "p_pd", "model_name", "model_version", "model_alias")], ""]  # fmt: skip
    if chain.get("registry"):
        g = chain["registry"]
        lines += ["## Registry version", "", f"- {g['name']} v{g['version']} (aliases: {', '.join(g['aliases']) or 'none'})",
                  f"- created {g['created']}, run {g['run_id']}", f"- bento: {chain.get('bento')}", "",
                  "| time | actor | action | alias | why | evidence |", "|---|---|---|---|---|---|"]  # fmt: skip
        for h in g["audit"]:
            lines.append(f"| {h['time']} | {h['actor']} | {h['action']} | {h['what'].get('alias', '')} | "
                         f"{h['why']} | {h.get('evidence') or ''} |")  # fmt: skip
        lines += ["", "Version tags:", "", *[f"- `{k}`: {v}" for k, v in sorted(g["tags"].items())], ""]
    t = chain["training_run"]
    lines += ["## Training run", "", *[f"- {k}: {v}" for k, v in t.items()], ""]
    loc = chain["local"]
    v = loc["validation"]
    lines += ["## Validation", "", f"- success: {v['success']}; failed errors: {v['failed_errors']}; warnings: {v['warnings']}",
              f"- validated the training tubes: {v['validated_tubes_match']}", f"- Data Docs: {v['data_docs']}", ""]  # fmt: skip
    d = chain["data"]
    lines += ["## Face tubes", "", f"- table: {loc['face_tubes']['table']}", f"- params: `{json.dumps(d['face_tube_params'], sort_keys=True)}`", ""]  # fmt: skip
    ing = loc["ingest"]
    lines += ["## Ingest", "", f"- table: {ing['table']}", f"- manifest sha256: {ing['manifest_sha256']}",
              f"- counts: {ing['counts']}", f"- quarantined: {len(ing['quarantine'] or [])}"]  # fmt: skip
    lines += [f"  - {q.get('video_id')}: {q.get('reason')}" for q in ing["quarantine"] or []]
    lines += ["", "## Data", "", f"- DVC data version: `{d['data_version']}`", f"- tube table sha256: `{d['tubes_sha256']}`",
              f"- {len(d['videos'])} videos of {len(d['subjects'])} subjects", "",
              "| video | subject | split | sha256 | cache key |", "|---|---|---|---|---|"]  # fmt: skip
    keys = d.get("cache_keys") or {}
    for x in d["videos"]:
        lines.append(f"| {x['video_id']} | {x['subject_id']} | {x['split']} | `{x['sha256']}` | `{keys.get(x['video_id'], '')[:16]}` |")  # fmt: skip
    return "\n".join(lines) + "\n"
