"""Stage `explain`: where the trained model looks, and what its descriptor space shows.

Inputs: the train output folder (``model.pt``, ``metadata.json``, ``predictions.parquet``), the
facetubes folder (tubes with landmarks) and the ingest folder (``folds.parquet``). Outputs in
``out_dir`` (docs/explain.md):

* ``explain.json`` -- region shares per group and method, the entropy test PD vs controls,
  motion per region (model-free), silhouette and Spearman(UPDRS 3.2) of the embeddings;
* ``regions.csv`` (one row per video and map), ``embeddings.csv`` (video coordinates);
* ``figures/`` -- overlay GIFs/mp4s, frame strips, region bars, entropy boxes, embedding plots.

Everything is also logged to the MLflow run that trained the model, when its id is known.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hypomimia import jsonio
from hypomimia.config.explain import ExplainConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.explain import embeddings as emb
from hypomimia.explain import render
from hypomimia.explain.gradcam import resolve_layers
from hypomimia.explain.regions import REGION_NAMES, RegionMass, compare_entropy, entropy, lift_with_ci
from hypomimia.explain.tube import TubeExplanation, clip_batch, explain_tube, load_tube
from hypomimia.learning.clips import LABEL_INDEX
from hypomimia.lineage.provenance import stamp

log = logging.getLogger(__name__)
GROUPS = ("control", "pd")


@dataclass
class ExplainResult:
    out_dir: Path
    n_videos: int  # embedded
    n_attributed: int  # with maps and region shares
    split: str  # which videos were attributed: "heldout" or "all"
    headline_map: str  # "method@layer" of the headline numbers
    region_shares: dict  # group -> region -> mean share (headline map)
    entropy_test: dict
    silhouette_video: float | None
    spearman_updrs_video: dict
    figures: list[Path] = field(default_factory=list)
    run_id: str | None = None


def run(
    cfg: ExplainConfig,
    model_dir: Path,
    tubes_dir: Path,
    ingest_dir: Path,
    out_dir: Path,
    tracking_uri: str | None = None,
    run_id: str | None = None,
) -> ExplainResult:
    """Explain the model in ``model_dir`` on the tubes in ``tubes_dir``; ``tracking_uri="off"`` skips MLflow."""
    t0 = time.perf_counter()
    model_dir, tubes_dir, ingest_dir, out_dir = map(Path, (model_dir, tubes_dir, ingest_dir, out_dir))
    torch.manual_seed(cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        loaded, metadata = _load_model(model_dir)
        table = _tube_table(tubes_dir)
        heldout, split = _heldout_videos(cfg, model_dir, ingest_dir, metadata, table)
        attributed = _pick_attributed(table, heldout, cfg)
        mc, extra = loaded.config, loaded.extra
        stride = int(extra.get("stride") or metadata.get("train_params", {}).get("stride") or 1)
        first = load_tube(tubes_dir / table.tube.iloc[0], table.video_id.iloc[0], mc.size)
        layers = _layers(loaded.model, cfg.layers, clip_batch(first, mc.frames, stride, 1)[0])
        keys = _map_keys(cfg, layers)
        results: dict[str, TubeExplanation] = {}
        for row in table.itertuples(index=False):
            tube = load_tube(tubes_dir / row.tube, row.video_id, mc.size)
            results[row.video_id] = explain_tube(
                loaded.model,
                tube,
                frames=mc.frames,
                stride=stride,
                clips=cfg.clips_per_video,
                attribute=row.video_id in attributed,
                layers=layers,
                methods=list(cfg.methods),
                target=LABEL_INDEX[row.label] if cfg.target == "label" else None,
                occlusion_patch=cfg.occlusion_patch,
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        regions = _regions_table(table, results, keys)
        regions.to_csv(out_dir / "regions.csv", index=False)
        summary = {
            "model": _model_summary(metadata, loaded),
            "split": split,
            "stride": stride,
            "n_videos": len(table),
            "n_attributed": len(attributed),
            "maps": keys,
            "headline_map": keys[0],
        }
        summary["attention"] = {k: _attention_summary(regions[regions["map"] == k], cfg.seed) for k in keys}
        summary["motion_by_region"] = _motion_summary(table, results)
        summary["concentration_check"] = _concentration_check(
            summary["attention"][keys[0]], summary["motion_by_region"]
        )
        coords, summary["embeddings"] = _embeddings(table, results, heldout, cfg.seed, cfg.tsne_perplexity)
        coords.to_csv(out_dir / "embeddings.csv", index=False)
        figures = _figures(cfg, out_dir / "figures", table, results, summary, keys, coords, layers)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        summary["provenance"] = stamp("explain", cfg, {"model": model_dir / "metadata.json", "tubes": tubes_dir / "tubes.parquet"})  # fmt: skip
        (out_dir / "explain.json").write_text(
            jsonio.dumps(json.loads(json.dumps(summary, default=_json_default)))
        )
        logged_run = _log_to_mlflow(out_dir, summary, metadata, tracking_uri, run_id)
    finally:
        torch.set_num_threads(threads)
    head = summary["attention"][keys[0]]
    log.info(
        "explain: %d videos embedded, %d attributed (%s) in %.0f s",
        len(table),
        len(attributed),
        split,
        summary["seconds"],
    )
    return ExplainResult(
        out_dir=out_dir,
        n_videos=len(table),
        n_attributed=len(attributed),
        split=split,
        headline_map=keys[0],
        region_shares={g: head["groups"][g]["shares"] for g in head["groups"]},
        entropy_test=head["entropy_test"],
        silhouette_video=summary["embeddings"]["video"]["silhouette_label"],
        spearman_updrs_video=summary["embeddings"]["video"]["spearman_updrs_pc1"],
        figures=figures,
        run_id=logged_run,
    )


# --- inputs -----------------------------------------------------------------------------------


def _load_model(model_dir: Path):
    from hypomimia.models import load_model

    loaded = load_model(model_dir / "model.pt")
    meta_path = model_dir / "metadata.json"
    metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not hasattr(loaded.model, "embed"):
        raise UserError(
            "the model has no embed() method", "explain needs a hypomimia model (hypomimia train)"
        )
    return loaded, metadata


def _tube_table(tubes_dir: Path) -> pd.DataFrame:
    table = read_stage_table(
        tubes_dir, "tubes.parquet", "facetubes", ["video_id", "subject_id", "label", "tube"]
    )
    if "status" in table:
        table = table[table.status.fillna("accepted") == "accepted"]
    table = table[table.label.isin(GROUPS)].copy()  # "unknown" has no group to compare
    if table.empty:
        raise UserError("no accepted pd/control face tubes to explain", "check tubes.parquet (status, label)")
    if "updrs_3_2" not in table:
        table["updrs_3_2"] = np.nan
    table["updrs_3_2"] = pd.to_numeric(table["updrs_3_2"], errors="coerce").astype(float)
    return table.sort_values("video_id").reset_index(drop=True)


def _heldout_videos(cfg, model_dir, ingest_dir, metadata, table) -> tuple[set[str], str]:
    """Videos the model never trained on: its test predictions, else its fold in folds.parquet."""
    if cfg.split == "all":
        return set(), "all"
    preds = model_dir / "predictions.parquet"
    if preds.is_file():
        p = pd.read_parquet(preds, columns=["video_id", "split"])
        ids = set(p.loc[p.split == "test", "video_id"]) & set(table.video_id)
        if ids:
            return ids, "heldout"
    folds, tp = ingest_dir / "folds.parquet", metadata.get("train_params", {})
    if folds.is_file() and "fold" in tp:
        f = pd.read_parquet(folds)
        f = f[(f.fold == tp["fold"]) & (f.get("repeat", 0) == tp.get("repeat", 0))]
        ids = set(f.video_id) & set(table.video_id)
        if ids:
            return ids, "heldout"
    log.warning("explain: the model's held-out videos are unknown; attributing every video (split=all)")
    return set(), "all"


def _pick_attributed(table: pd.DataFrame, heldout: set[str], cfg: ExplainConfig) -> set[str]:
    """At most ``max_videos`` videos, balanced between groups, chosen reproducibly with ``seed``."""
    pool = table[table.video_id.isin(heldout)] if heldout else table
    per_group = max(1, cfg.max_videos // 2)
    picked = [
        g.sample(n=min(len(g), per_group), random_state=cfg.seed).video_id for _, g in pool.groupby("label")
    ]
    return set(pd.concat(picked)) if picked else set()


def _layers(model, names: list[str], x: torch.Tensor) -> list[str]:
    try:
        return resolve_layers(model, names, x)
    except KeyError as e:
        raise UserError(
            f"explain.layers: {e.args[0]}", "set explain.layers in params.yaml to existing names"
        ) from None


def _map_keys(cfg: ExplainConfig, layers: list[str]) -> list[str]:
    keys = [f"{m}@{layer}" for layer in layers for m in cfg.methods if m != "occlusion"]
    return keys + (["occlusion@input"] if "occlusion" in cfg.methods else [])


def _model_summary(metadata: dict, loaded) -> dict:
    return {
        "name": metadata.get("name"),
        "version": metadata.get("version"),
        "arch": loaded.config.arch,
        "width": loaded.config.width,
        "frames": loaded.config.frames,
        "size": loaded.config.size,
    }


# --- attention on regions -----------------------------------------------------------------------


def _regions_table(table: pd.DataFrame, results: dict[str, TubeExplanation], keys: list[str]) -> pd.DataFrame:
    rows = []
    for r in table.itertuples(index=False):
        res = results[r.video_id]
        for key in keys if res.masses else []:
            m = res.masses[key]
            correct = (res.p_pd >= 0.5) == (r.label == "pd")
            row = {
                "video_id": r.video_id,
                "subject_id": r.subject_id,
                "label": r.label,
                "updrs_3_2": r.updrs_3_2,
                "map": key,
                "p_pd": round(res.p_pd, 6),
                "correct": bool(correct),
                "entropy": entropy(m.shares),
                "outside_share": m.outside_share,
            }
            row |= {f"share_{n}": v for n, v in zip(REGION_NAMES, m.shares, strict=True)}
            row |= {f"area_{n}": v for n, v in zip(REGION_NAMES, m.area_shares, strict=True)}
            rows.append(row)
    return pd.DataFrame(rows)


def _attention_summary(rows: pd.DataFrame, seed: int = 0) -> dict:
    """Per group: mean region shares, area shares and lift, entropy; PD vs control entropy tests;
    over every attributed video: lift per region with subject-bootstrap CIs and the top region."""
    groups = {}
    for g, part in rows.groupby("label"):
        shares = {n: float(part[f"share_{n}"].mean()) for n in REGION_NAMES}
        area = {n: float(part[f"area_{n}"].mean()) for n in REGION_NAMES}
        groups[g] = {
            "n_videos": len(part),
            "accuracy": float(part.correct.mean()),
            "shares": shares,
            "area_shares": area,
            "lift": {n: shares[n] / area[n] if area[n] > 0 else None for n in REGION_NAMES},
            "entropy_of_mean_shares": entropy(np.array(list(shares.values()))),
            "entropy_mean": float(part.entropy.mean()),
            "outside_share": float(part.outside_share.mean()),
        }
    subj = rows.groupby(["subject_id", "label"], as_index=False).entropy.mean()
    pooled = (
        lift_with_ci(
            rows[[f"share_{n}" for n in REGION_NAMES]].to_numpy(),
            rows[[f"area_{n}" for n in REGION_NAMES]].to_numpy(),
            rows["subject_id"].to_numpy(),
            seed=seed,
        )
        if len(rows)
        else None
    )
    return {
        "groups": groups,
        "all_videos": pooled,
        "entropy_test": compare_entropy(
            rows.loc[rows.label == "pd", "entropy"].tolist(),
            rows.loc[rows.label == "control", "entropy"].tolist(),
        ),
        "entropy_test_subject_level": compare_entropy(
            subj.loc[subj.label == "pd", "entropy"].tolist(),
            subj.loc[subj.label == "control", "entropy"].tolist(),
        ),
    }


def _motion_summary(table: pd.DataFrame, results: dict[str, TubeExplanation]) -> dict:
    """Mean absolute frame difference per region and group (grey levels per pixel per frame), from the data alone."""
    pooled: dict[str, RegionMass] = {}
    for r in table.itertuples(index=False):
        m = results[r.video_id].motion
        if m is not None:
            pooled[r.label] = m if r.label not in pooled else pooled[r.label] + m
    per_group = {
        g: {n: float(m.mass[i] / m.area[i]) if m.area[i] else 0.0 for i, n in enumerate(REGION_NAMES)}
        for g, m in pooled.items()
    }
    out: dict = {"per_group": per_group}
    if set(per_group) == set(GROUPS):
        c, p = per_group["control"], per_group["pd"]
        # Relative difference: a region that moves 2x more in one group scores the same at any base level.
        out["relative_difference"] = {
            n: abs(c[n] - p[n]) / max((c[n] + p[n]) / 2, 1e-9) for n in REGION_NAMES
        }
    return out


def _concentration_check(attention: dict, motion: dict) -> dict:
    """Do the maps favour the regions whose motion differs most between the groups? (measured, not eyeballed)"""
    diff = motion.get("relative_difference")
    groups = attention["groups"]
    if not diff or not groups:
        return {"available": False}
    lift = {n: float(np.mean([groups[g]["lift"][n] or 0.0 for g in groups])) for n in REGION_NAMES}
    from scipy import stats

    res = stats.spearmanr([lift[n] for n in REGION_NAMES], [diff[n] for n in REGION_NAMES])
    top_motion = max(diff, key=diff.get)
    return {
        "available": True,
        "mean_lift": lift,
        "most_different_region": top_motion,
        "most_attended_region": max(lift, key=lift.get),
        "lift_of_most_different_region": lift[top_motion],
        "spearman_lift_vs_motion_difference": {
            "rho": float(res.statistic),
            "p_value": float(res.pvalue),
            "n": 6,
        },
    }


# --- embeddings ----------------------------------------------------------------------------------


def _embeddings(table, results, heldout, seed: int, perplexity: float) -> tuple[pd.DataFrame, dict]:
    x = np.stack([results[v].embedding for v in table.video_id])
    is_pd = (table.label == "pd").to_numpy()
    updrs = table.updrs_3_2.to_numpy(float)
    subjects = table.subject_id.astype(str).to_numpy()
    pca, var = emb.pca_2d(x, seed)
    tsne = emb.tsne_2d(x, perplexity, seed)
    coords = table[["video_id", "subject_id", "label", "updrs_3_2"]].assign(
        pc1=pca[:, 0],
        pc2=pca[:, 1],
        pc1_signed=emb.pc1_projection(x, is_pd),
        tsne1=tsne[:, 0] if tsne is not None else np.nan,
        tsne2=tsne[:, 1] if tsne is not None else np.nan,
        heldout=table.video_id.isin(heldout),
    )
    subj = pd.DataFrame(x).assign(subject_id=subjects, is_pd=is_pd, updrs=updrs).groupby("subject_id").mean()
    xs = subj.drop(columns=["is_pd", "updrs"]).to_numpy()
    summary = {
        "pca_explained_variance": var,
        "video": emb.embedding_summary(x, is_pd, updrs, subjects, seed),
        "subject": emb.embedding_summary(
            xs, subj.is_pd.to_numpy() > 0.5, subj.updrs.to_numpy(), subj.index, seed
        ),
    }
    h = coords.heldout.to_numpy()
    if h.sum() >= 4:
        summary["video_heldout"] = emb.embedding_summary(x[h], is_pd[h], updrs[h], subjects[h], seed)
    return coords, summary


# --- figures and tracking ------------------------------------------------------------------------


def _figures(cfg, fig_dir: Path, table, results, summary, keys, coords, layers) -> list[Path]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    figs: list[Path] = []
    for key in keys:
        att = summary["attention"][key]
        if not att["groups"]:
            continue
        safe = key.replace("@", "_at_").replace(".", "-").replace("+", "p")
        area = next(iter(att["groups"].values()))["area_shares"]
        shares = {g: att["groups"][g]["shares"] for g in att["groups"]}
        figs.append(
            render.region_bars(
                fig_dir / f"regions_{safe}.png", shares, area, f"activation share by region ({key})"
            )
        )
        ent = {g: [] for g in att["groups"]}
        for r in table.itertuples(index=False):
            m = results[r.video_id].masses.get(key)
            if m is not None:
                ent[r.label].append(entropy(m.shares))
        p = att["entropy_test"]["p_value"]
        title = (
            f"attention entropy ({key}), Mann-Whitney p={p:.3g}"
            if p is not None
            else f"attention entropy ({key})"
        )
        figs.append(render.entropy_boxes(fig_dir / f"entropy_{safe}.png", ent, title))
    e = summary["embeddings"]["video"]
    sil = e["silhouette_label"]
    title = f"video embeddings (silhouette {sil:.2f})" if sil is not None else "video embeddings"
    xy = {"PCA": coords[["pc1", "pc2"]].to_numpy()}
    if coords.tsne1.notna().all():
        xy["t-SNE"] = coords[["tsne1", "tsne2"]].to_numpy()
    figs.append(
        render.embedding_scatter(
            fig_dir / "embeddings.png", xy, coords.label.to_numpy(), coords.updrs_3_2.to_numpy(float), title
        )
    )
    figs += _render_examples(cfg, fig_dir, table, results, keys)
    return figs


def _render_examples(cfg, fig_dir: Path, table, results, keys) -> list[Path]:
    """Overlay videos and frame strips for the first ``render_per_group`` attributed videos per group."""
    figs = []
    for g in GROUPS:
        ids = [v for v in table.video_id[table.label == g] if results[v].first_clip is not None][
            : cfg.render_per_group
        ]
        for vid in ids:
            res = results[vid]
            frames, head = res.first_clip, res.first_maps[keys[0]]
            figs.append(
                render.write_overlay(fig_dir / f"overlay_{g}_{vid}.{cfg.render_format}", frames, head, fps=8)
            )
            title = f"{vid} ({g}, p(PD)={res.p_pd:.2f})"
            figs.append(render.frame_strip(fig_dir / f"strip_{g}_{vid}.png", frames, res.first_maps, title))
    return figs


def _find_run_id(metadata: dict) -> str | None:
    for value in (
        metadata.get("mlflow", {}).get("run_id") if isinstance(metadata.get("mlflow"), dict) else None,
        metadata.get("mlflow_run_id"),
        metadata.get("run_id"),
    ):
        if value:
            return str(value)
    return None


def _log_to_mlflow(
    out_dir: Path, summary: dict, metadata: dict, tracking_uri: str | None, run_id: str | None
):
    """Figures, tables and explain.json into the model's MLflow run (``explain/``), plus headline metrics."""
    if tracking_uri == "off":
        return None
    run_id = run_id or _find_run_id(metadata)
    if run_id is None:
        log.info("explain: no MLflow run id (metadata.json has none and none was given): not logged")
        return None
    from mlflow import MlflowClient

    from hypomimia.learning import mlflow_runs

    client = MlflowClient(tracking_uri or mlflow_runs.default_tracking_uri())
    client.log_artifacts(run_id, str(out_dir), artifact_path="explain")
    head = summary["attention"][summary["headline_map"]]
    metrics = {
        "explain.silhouette_video": summary["embeddings"]["video"]["silhouette_label"],
        "explain.spearman_updrs_pc1_video": summary["embeddings"]["video"]["spearman_updrs_pc1"]["rho"],
        "explain.entropy_p_value": head["entropy_test"]["p_value"],
        **{f"explain.entropy_mean.{g}": v["entropy_mean"] for g, v in head["groups"].items()},
    }
    for k, v in metrics.items():
        if v is not None and np.isfinite(v):
            client.log_metric(run_id, k, float(v))
    return run_id


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)
