"""The provenance block every stage report carries: content hashes, params hash, code, lock, data version."""

from __future__ import annotations

import json
from pathlib import Path

from hypomimia.config.ingest import IngestConfig
from hypomimia.lineage.provenance import content_hash, params_sha256, stamp


def test_stamp_hashes_content_and_follows_the_dvc_data_version_downstream(tmp_path: Path):
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc123.dir\n  path: data\n")
    manifest = tmp_path / "data" / "phantom" / "manifest.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("video_id,path\nv1,v1.mp4\n")
    ingest = stamp("ingest", IngestConfig(), {"manifest": manifest})
    assert ingest["data_version"] == "abc123.dir"  # the manifest lies in the folder data.dvc tracks
    assert ingest["inputs"]["manifest"]["sha256"] == content_hash(manifest)["sha256"]
    assert ingest["params_sha256"] == params_sha256(IngestConfig()) != params_sha256(IngestConfig(folds=3))
    assert {"package_version", "git_commit", "git_dirty"} <= set(ingest["code"]) and ingest["env_sha256"]

    work = tmp_path / "work" / "ingest"
    work.mkdir(parents=True)
    (work / "ingested.parquet").write_bytes(b"table")
    (work / "report.json").write_text(json.dumps({"provenance": ingest}))
    tubes = stamp("facetubes", {"size": 112}, {"ingested": work / "ingested.parquet"})
    assert tubes["data_version"] == "abc123.dir"  # inherited from the ingest report beside its input

    elsewhere = tmp_path / "other.csv"
    elsewhere.write_text("x")
    assert stamp("ingest", IngestConfig(), {"manifest": elsewhere})["data_version"] is None  # not DVC data
    folder = content_hash(tmp_path / "data")
    manifest.write_text("video_id,path\nv2,v2.mp4\n")
    assert content_hash(tmp_path / "data")["sha256"] != folder["sha256"] and folder["files"] == 1
    assert content_hash(tmp_path / "missing")["missing"] is True
