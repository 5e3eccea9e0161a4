"""Stage `evaluate`: every model and temporal setting on the same subject-grouped folds, paired
statistics, a report, and the blessing decision for the trained challenger.

    plan (evaluation/plan.py) -> fit each (setting, fold, seed) task -> gather: pool folds per
    setting and seed, average the seeds (the seed ensemble), compare paired, recalibrate (cross-fitted),
    slice, figures, bless the ensemble, log to MLflow (parent run + one child per task)

On one machine :func:`run` fits the tasks one after another; the KFP DAG fans them out
(``components/evaluate.py``: one ``evaluate-fit`` task per (setting, fold, seed), then ``evaluate``
gathers). A task's folder holds ``task.json`` and ``test_clips.parquet`` (held-out clips with the
run's calibrated margin); a finished task with the same ``task.json`` is not fitted again.

The voice: the I3D recipe's runs are trained with the voice table (``voice_dir``) when
``train.voice_stream`` is on, so the reference is the model that is served; the ``voice`` model kind is
its voice stream alone (:mod:`hypomimia.evaluation.voice`), and derived rows give the reference's
network alone (``<ref>_video_stream``, with the landmark stream) and its visual model without the voice
(``<ref>_without_voice``), all paired on the same folds without training anything more.

Pairing is enforced, not assumed: every run must hold out exactly the subjects its fold holds in
ingest's folds.parquet, and the trained model passed as ``model_dir`` must have been tested on
them too; otherwise a UserError says the comparison is not paired.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia import jsonio
from hypomimia.config.evaluate import EvaluateConfig
from hypomimia.config.train import TrainConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.evaluation import blessing, calibration, landmarks, plan, report
from hypomimia.evaluation import voice as voice_baseline
from hypomimia.evaluation.plan import Setting, Task
from hypomimia.learning.metrics import auroc, bootstrap_ci, with_probability
from hypomimia.lineage.provenance import params_sha256

log = logging.getLogger(__name__)

CLIPS = "test_clips.parquet"


@dataclass
class EvaluateResult:
    out_dir: Path
    evaluation_path: Path
    report_path: Path
    blessing_path: Path
    blessed: bool
    decision: dict
    settings: dict  # name -> pooled subject AUROC
    figures: list[Path] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0


# --- one task ----------------------------------------------------------------------------------


def _videos(tubes_dir: Path, folds: pd.DataFrame) -> pd.DataFrame:
    """Accepted tubes with their fold (the join training makes)."""
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes")
    if "status" in tubes:
        tubes = tubes[tubes["status"].fillna("accepted") == "accepted"]
    df = tubes.drop(columns=["label", "subject_id"], errors="ignore").merge(
        folds[["video_id", "subject_id", "label", "fold"]], on="video_id", how="inner"
    )
    return df.assign(label=df["label"].map({"control": 0, "pd": 1}).astype(int)).sort_values("video_id")


def data_identity(tubes_dir: Path, ingest_dir: Path, voice_dir: Path | None = None) -> dict[str, str]:
    """Content digests of the tables a task reads: the tubes (each row names its video's sha256 and tube
    file; the stage's params name the tube code), the folds and, where given, the voice measures.

    Part of the task spec: without it a re-rendered study with the same subjects and folds would reuse
    the tasks fitted on the old videos (it happened: an audio-only re-run kept fold 0's stale runs)."""

    def digest(df: pd.DataFrame, *extra: bytes) -> str:
        df = df.sort_values(list(df.columns[:1])).reset_index(drop=True)
        h = hashlib.sha256(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
        for b in extra:
            h.update(b)
        return h.hexdigest()[:16]

    tubes_dir, ingest_dir = Path(tubes_dir), Path(ingest_dir)
    report = tubes_dir / "report.json"
    tube_params = (
        json.dumps(json.loads(report.read_text()).get("params"), sort_keys=True) if report.is_file() else ""
    )
    out = {
        "tubes": digest(read_stage_table(tubes_dir, "tubes.parquet", "facetubes"), tube_params.encode()),
        "folds": digest(read_stage_table(ingest_dir, "folds.parquet", "ingest")),
    }
    if voice_dir is not None and (Path(voice_dir) / "voice.parquet").is_file():
        voice = pd.read_parquet(Path(voice_dir) / "voice.parquet")
        out["voice"] = digest(
            voice.drop(columns=[c for c in ("seconds", "praat_s") if c in voice])
        )  # timings vary
    return out


def task_spec(
    task: Task, cfg: EvaluateConfig, train: TrainConfig, data: dict[str, str] | None = None
) -> dict:
    """What determines a task's result (its folder is reused only when this is unchanged): the setting,
    fold and seed, the params, and ``data`` (:func:`data_identity`) of the tables it reads."""
    spec = {
        "setting": task.setting.to_dict(),
        "fold": task.fold,
        "task_seed": task.seed,
        "repeat": train.repeat,
    }
    tcfg = (
        plan.train_config(task.setting, train, task.fold, cfg.epochs, task.seed)
        if task.setting.network
        else None
    )
    uses_voice = task.setting.model == "voice" or (tcfg is not None and tcfg.voice_stream.enabled)
    if data is not None:
        spec["data"] = {k: v for k, v in data.items() if k != "voice" or uses_voice}
    if tcfg is not None:
        from hypomimia.learning.training import config_fingerprint

        spec["train"] = config_fingerprint(tcfg)
    elif task.setting.model == "voice":
        spec["voice"] = train.voice_stream.model_dump(mode="json", exclude={"enabled", "fusion_c"})
    else:
        spec["landmarks"] = cfg.landmarks.model_dump()
        spec["seed"] = cfg.seed
    return spec


def _donor(tcfg: TrainConfig, donors: list[Path], videos: dict[str, str]) -> Path | None:
    """A finished train output folder trained with exactly these params (fold included) on these videos
    (``videos``: video_id -> sha256 of the tubes table; the donor's lineage lists what it trained on)."""
    from hypomimia.learning.training import config_fingerprint

    want = config_fingerprint(tcfg)
    for d in donors:
        try:
            meta = json.loads((Path(d) / "metadata.json").read_text())
            used = {v["video_id"]: v["sha256"] for v in (meta.get("lineage") or {}).get("videos", [])}
            if (
                config_fingerprint(TrainConfig.model_validate(meta["train_params"])) == want
                and used
                and all(videos.get(v) == sha for v, sha in used.items())
                and (Path(d) / "predictions.parquet").is_file()
            ):
                return Path(d)
            log.debug("evaluate: %s is not a donor (other params or other videos)", d)
        except (OSError, ValueError, KeyError):
            continue
    return None


_FEATURES: dict[tuple[str, str, float], dict[str, np.ndarray]] = {}


def _landmark_features(
    tubes_dir: Path, videos: pd.DataFrame, kind: str, blink: float
) -> dict[str, np.ndarray]:
    key = (str(Path(tubes_dir).resolve()), kind, blink)
    cache = _FEATURES.setdefault(key, {})
    for r in videos.itertuples():
        if r.video_id not in cache:
            cache[r.video_id] = landmarks.tube_features(Path(tubes_dir) / r.tube, kind, blink)
    return cache


def _voice_table(voice_dir: Path | None, tubes_dir: Path, videos: pd.DataFrame | None = None):
    """The voice table the voice model kind reads, checked against the tubes (None without a folder)."""
    if voice_dir is None:
        return None
    from hypomimia.voice.table import check_videos, read_voice_table

    table = read_voice_table(Path(voice_dir))
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes", ["video_id", "sha256"])
    check_videos(table, tubes if videos is None else tubes[tubes["video_id"].isin(videos["video_id"])])
    return table


def fit(
    task: Task,
    cfg: EvaluateConfig,
    train: TrainConfig,
    tubes_dir: Path,
    ingest_dir: Path,
    runs_dir: Path,
    *,
    donors: list[Path] = (),
    frame_cache: Path | None = None,
    into: Path | None = None,
    voice_dir: Path | None = None,
) -> Path:
    """Fit one (setting, fold, seed) task into ``runs_dir/<run key>[/seed<s>]/fold<k>`` (or ``into``);
    return that folder. ``voice_dir``: the voice stage's folder, for the I3D recipe's voice stream and the
    ``voice`` model kind."""
    run_dir = Path(into) if into is not None else Path(runs_dir) / task.folder
    spec = task_spec(task, cfg, train, data_identity(tubes_dir, ingest_dir, voice_dir))
    done = run_dir / "task.json"
    if done.is_file() and (run_dir / CLIPS).is_file() and json.loads(done.read_text()).get("spec") == spec:
        log.info("evaluate: %s fold %d seed %s already fitted", task.setting.name, task.fold, task.seed)
        return run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    if task.setting.network:
        from hypomimia.learning.crossval import load_run
        from hypomimia.stages import train as train_stage

        tcfg = plan.train_config(task.setting, train, task.fold, cfg.epochs, task.seed)
        tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes", ["video_id", "sha256"])
        donor = _donor(
            tcfg, [Path(d) for d in donors if d], dict(zip(tubes["video_id"], tubes["sha256"], strict=True))
        )
        if donor is not None:
            source = f"reused {donor.name}"
            clips, _ = load_run(donor)
            shutil.copy2(donor / "metrics.json", run_dir / "metrics.json")
        else:
            source = "trained"
            if frame_cache is not None:  # one unpacked copy of the tubes for every run
                Path(frame_cache).mkdir(parents=True, exist_ok=True)
                (run_dir / "frame_cache").symlink_to(Path(frame_cache).resolve(), target_is_directory=True)
            log.info("evaluate: training %s on fold %d, seed %d", task.setting.name, task.fold, task.seed)
            train_stage.run(
                tcfg, tubes_dir, ingest_dir, run_dir, tracking_uri="off", resume=False, voice_dir=voice_dir
            )
            clips, _ = load_run(run_dir)
            for extra in ("checkpoints", "frame_cache"):  # keep the outputs lean (DVC caches them)
                p = run_dir / extra
                p.unlink() if p.is_symlink() else shutil.rmtree(p, ignore_errors=True)
    elif task.setting.model == "voice":
        source = "fitted"
        videos = _videos(tubes_dir, plan.load_folds(ingest_dir, train.repeat))
        table = _voice_table(voice_dir, tubes_dir, videos)
        if table is None:
            raise UserError(
                "evaluate.models has 'voice' but no voice table was given",
                "pass the voice stage's folder (hypomimia evaluate --voice work/voice), or drop 'voice'",
            )
        clips = voice_baseline.fit_predict(
            videos[videos["fold"] != task.fold],
            videos[videos["fold"] == task.fold],
            table,
            train.voice_stream,
        )
    else:
        source = "fitted"
        folds = plan.load_folds(ingest_dir, train.repeat)
        videos = _videos(tubes_dir, folds)
        feats = _landmark_features(tubes_dir, videos, task.setting.model, cfg.landmarks.blink_threshold)
        lc = cfg.landmarks
        clips = landmarks.fit_predict(
            videos[videos["fold"] != task.fold], videos[videos["fold"] == task.fold], feats,
            classifier=lc.classifier, c=lc.c, seed=cfg.seed,
        )  # fmt: skip
    keep = [
        "video_id",
        "subject_id",
        "label",
        "margin",
        *[c for c in ("margin_video", "margin_visual", "voiced") if c in clips],
    ]
    clips = clips[keep].assign(subject_id=lambda d: d["subject_id"].astype(str))
    clips.to_parquet(run_dir / CLIPS, index=False)
    jsonio.write(done, {"spec": spec, "source": source, "seconds": round(time.perf_counter() - t0, 2)})
    return run_dir


def task_from_json(text: str) -> Task:
    """A task of :func:`plan.tasks` from its JSON (the KFP fan-out passes tasks as strings)."""
    d = json.loads(text)
    seed = d.get("seed")
    return Task(Setting(**d["setting"]), int(d["fold"]), None if seed is None else int(seed))


def task_json(task: Task) -> str:
    return json.dumps(
        {"setting": task.setting.to_dict(), "fold": task.fold, "seed": task.seed}, sort_keys=True
    )


# --- the whole stage ---------------------------------------------------------------------------


def check_model_folds(model_dir: Path, folds: pd.DataFrame) -> None:
    """The trained model's held-out subjects must be exactly its test fold's subjects in these folds."""
    try:
        meta = json.loads((Path(model_dir) / "metadata.json").read_text())
        fold = int(meta["train_params"]["fold"])
        preds = pd.read_parquet(Path(model_dir) / "predictions.parquet", columns=["subject_id", "split"])
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"{model_dir} is not a finished train output ({type(e).__name__}: {e})",
            "pass the output folder of 'hypomimia train' (model.pt, metadata.json, predictions.parquet)",
        ) from None
    tested = set(preds.loc[preds["split"] == "test", "subject_id"].astype(str))
    expected = set(folds.loc[folds["fold"] == fold, "subject_id"].astype(str))
    if not tested <= expected or not tested:
        stray = sorted(tested - expected)[:5]
        raise UserError(
            f"the model in {model_dir} was tested on subjects that fold {fold} of these folds does not hold "
            f"(e.g. {stray}): it was trained on other folds, so the evaluation would not be paired with it",
            "evaluate with the ingest output the model was trained with (same folds.parquet), or retrain",
        )


def run(
    cfg: EvaluateConfig,
    train: TrainConfig,
    tubes_dir: Path,
    ingest_dir: Path,
    out_dir: Path,
    *,
    model_dir: Path | None = None,
    reuse: list[Path] = (),
    tracking_uri: str | None = None,
    voice_dir: Path | None = None,
) -> EvaluateResult:
    """Fit every (setting, fold, seed) task, then :func:`gather`. ``model_dir``: the trained challenger
    (its fold's reference run is reused when its params match); ``reuse``: more train folders to reuse;
    ``voice_dir``: the voice stage's folder (the recipe's voice stream and the ``voice`` model kind)."""
    tubes_dir, ingest_dir, out_dir = Path(tubes_dir), Path(ingest_dir), Path(out_dir)
    t0 = time.perf_counter()
    folds = plan.load_folds(ingest_dir, train.repeat)
    if model_dir is not None:
        check_model_folds(model_dir, folds)
    wanted = plan.test_folds(cfg, folds)
    cache = out_dir / "frame_cache"
    donors = [Path(d) for d in ([model_dir] if model_dir and cfg.reuse_trained else []) + list(reuse)]
    run_dirs = [
        fit(t, cfg, train, tubes_dir, ingest_dir, out_dir / "runs", donors=donors, frame_cache=cache,
            voice_dir=voice_dir)
        for t in plan.tasks(cfg, train, wanted)
    ]  # fmt: skip
    shutil.rmtree(cache, ignore_errors=True)
    result = gather(
        cfg, train, tubes_dir, ingest_dir, run_dirs, out_dir, model_dir=model_dir, tracking_uri=tracking_uri
    )
    result.seconds = time.perf_counter() - t0
    return result


def _load_runs(
    run_dirs: list[Path], expected: dict[int, set[str]]
) -> dict[tuple[str, int | None, int], pd.DataFrame]:
    """(run key, seed, fold) -> held-out clips of every task folder, each checked against its fold."""
    out = {}
    for d in run_dirs:
        d = Path(d)
        try:
            spec = json.loads((d / "task.json").read_text())["spec"]
            clips = pd.read_parquet(d / CLIPS)
        except (OSError, ValueError, KeyError) as e:
            raise UserError(
                f"{d} is not a finished evaluation task ({e})", "re-run 'hypomimia evaluate'"
            ) from None
        fold = int(spec["fold"])
        s = Setting(**spec["setting"])
        got = set(clips["subject_id"].astype(str))
        if fold not in expected or got != expected[fold]:
            missing, extra = (
                sorted(expected.get(fold, set()) - got)[:3],
                sorted(got - expected.get(fold, set()))[:3],
            )
            raise UserError(
                f"run {d.parent.name}/{d.name} held out other subjects than fold {fold} of the evaluation's folds "
                f"(missing {missing}, unexpected {extra}): the comparison would not be paired",
                "fit every task from the same ingest folds.parquet (delete the stale run folder and re-run)",
            )
        out[(s.run_key, spec.get("task_seed"), fold)] = clips
    return out


def _info(tubes_dir: Path, ingest_dir: Path, cfg: EvaluateConfig) -> pd.DataFrame:
    """Per-video metadata for slices: task (tubes) and sex, age, site, camera (ingested.parquet)."""
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes")
    info = tubes[["video_id", *[c for c in ("task",) if c in tubes]]]
    ing_path = Path(ingest_dir) / "ingested.parquet"
    if ing_path.is_file():
        ing = pd.read_parquet(ing_path)
        cols = [c for c in ("sex", "age", "site", "camera") if c in ing]
        if cols:
            info = info.merge(ing[["video_id", *cols]], on="video_id", how="left")
    return report.add_age_band(info, cfg.age_bands)


def _ablation_rows(ev_settings: dict, train: TrainConfig) -> list[dict]:
    rows = []
    for name, r in ev_settings.items():
        s = r["setting"]
        if s["design"] is None:
            continue
        sub, seeds = r["pooled"]["subject"], r.get("seeds") or {}
        rows.append({"setting": name, "design": s["design"], "frames": s["frames"], "stride": s["stride"],
                     "span": (s["frames"] - 1) * s["stride"] + 1, "auroc": sub["auroc"], "auroc_ci95": sub["auroc_ci95"],
                     "seed_auroc_sd": seeds.get("auroc_sd", float("nan"))})  # fmt: skip
    return sorted(rows, key=lambda r: (r["design"], r["frames"]))


def _ablation_verdict(rows: list[dict], comparisons: list[dict], shipped: int) -> str:
    """Does the curve pick a frame count? Only if one beats the shipped count significantly."""
    if not rows:
        return ""
    parts = []
    for design in ("fixed_stride", "fixed_duration"):
        rs = [r for r in rows if r["design"] == design and r["auroc"] == r["auroc"]]
        if rs:
            best = max(rs, key=lambda r: r["auroc"])
            parts.append(f"{design}: best {best['frames']} frames (AUROC {best['auroc']:.3f})")
    better = [c for c in comparisons if c["significant"] and c["difference"] > 0]
    if better:
        verdict = "significantly better than the shipped count: " + ", ".join(c["a"] for c in better)
    else:
        verdict = (f"no frame count differs significantly from the shipped {shipped} frames after correction: "
                   f"the curve cannot pick one on these subjects; params.yaml keeps train.model.frames = {shipped}")  # fmt: skip
    return "; ".join(parts) + ". " + verdict + "."


def ensemble_clips(per_seed: list[pd.DataFrame]) -> pd.DataFrame:
    """One clip table from the same held-out clips scored by several seeds' models: each clip's margin
    is the logit of the mean of the seeds' probabilities (one seed: unchanged). Clips are matched by
    video and position (evaluation clips are evenly spaced, so every seed scores the same clips)."""
    if len(per_seed) == 1:
        return per_seed[0]
    counts = {tuple(c.groupby("video_id").size().sort_index().items()) for c in per_seed}
    if len(counts) != 1:
        raise UserError(
            "the seeds' runs scored different clips of the same videos: their ensemble is undefined",
            "fit every seed with the same train.eval_clips_per_video (delete the stale run folders and re-run)",
        )
    parts = [with_probability(c).assign(clip=lambda d: d.groupby("video_id").cumcount()) for c in per_seed]
    mean = (
        pd.concat(parts, ignore_index=True)
        .groupby(["video_id", "clip"], sort=True)
        .agg(subject_id=("subject_id", "first"), label=("label", "first"), p=("p", "mean"))
        .reset_index()
    )
    p = mean["p"].clip(1e-12, 1 - 1e-12)
    return mean.assign(margin=np.log(p / (1 - p)))[["video_id", "subject_id", "label", "margin"]]


def _seed_summary(
    s: Setting, by_seed: dict, wanted: list[int], fold_of: dict[str, int], cfg: EvaluateConfig
) -> dict:
    """Per training seed: its own pooled subject AUROC (95% CI), per-fold AUROCs and calibration; the
    mean and SD over seeds. The ensemble's numbers are the setting's ``pooled``."""
    rows = []
    for seed, fold_clips in by_seed.items():
        seed_clips = pd.concat(fold_clips, ignore_index=True)
        t = report.subject_table(seed_clips)
        cal = calibration.summary(t, fold_of, cfg.calibration, report.video_table(seed_clips))
        rows.append(
            {
                "seed": seed,
                "subject_auroc": auroc(*_yp(t)),
                "auroc_ci95": bootstrap_ci(t, auroc, cfg.bootstrap, cfg.seed),
                "folds": [
                    {"fold": k, "subject_auroc": auroc(*_yp(report.subject_table(c)))}
                    for k, c in zip(wanted, fold_clips, strict=True)
                ],
                "ece_before": cal["ece_before"],
                "ece_after": cal["ece_after"],
                "video_ece": cal["video"]["ece"],
                # the map fitted on every held-out subject of this seed: what a deployment of this seed's
                # model applies to a subject's mean probability (hypomimia external reads it)
                "calibration_map": cal["all_folds"],
            }
        )
    aucs = np.array([r["subject_auroc"] for r in rows], float)
    finite = aucs[np.isfinite(aucs)]
    return {
        "seeds": list(by_seed),
        "per_seed": rows,
        "auroc_mean": float(finite.mean()) if len(finite) else float("nan"),
        "auroc_sd": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
        "auroc_range": [float(finite.min()), float(finite.max())] if len(finite) else [float("nan")] * 2,
        "ensemble": "per subject, the mean of the seeds' probabilities; its metrics are this setting's 'pooled'",
    }


# Rows derived from the reference's own runs (no training): (name suffix, clip column, what it is).
DERIVED = (
    ("video_stream", "margin_video", "the reference runs' video-stream margins (margin_video): the network "
     "alone, without the landmark stream (and the voice)"),
    ("without_voice", "margin_visual", "the reference runs' visual margins (margin_visual): the recipe "
     "without the voice, as it answers a clip without audio"),
)  # fmt: skip


def _derived_settings(cfg: EvaluateConfig, train: TrainConfig, runs: dict, wanted: list[int]):
    """[(setting, {seed: [clips per fold]}, description)] of the reference's streams alone, for each
    column every run of the reference carries (two-stream runs: ``margin_video``; voice-fused runs:
    ``margin_visual``)."""
    ref = next(x for x in plan.settings(cfg, train) if x.name == cfg.reference)
    if not ref.network:
        return []
    by_seed = {seed: [runs[(ref.run_key, seed, k)] for k in wanted] for seed in plan.seeds_of(ref, cfg)}
    out = []
    for suffix, col, what in DERIVED:
        if not all(col in c for fold_clips in by_seed.values() for c in fold_clips):
            continue
        derived = {
            seed: [c.assign(margin=c[col]) for c in fold_clips] for seed, fold_clips in by_seed.items()
        }
        out.append((Setting(f"{ref.name}_{suffix}", ref.model, ref.frames, ref.stride), derived, what))
    return out


def _yp(t: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return t["label"].to_numpy(int), t["p"].to_numpy(float)


def gather(
    cfg: EvaluateConfig,
    train: TrainConfig,
    tubes_dir: Path,
    ingest_dir: Path,
    run_dirs: list[Path],
    out_dir: Path,
    *,
    model_dir: Path | None = None,
    tracking_uri: str | None = None,
) -> EvaluateResult:
    """Pool, compare, slice, bless and report the fitted tasks (the KFP gather step calls this alone)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folds = plan.load_folds(ingest_dir, train.repeat)
    if model_dir is not None:
        check_model_folds(model_dir, folds)
    wanted = plan.test_folds(cfg, folds)
    videos = _videos(tubes_dir, folds)
    expected = {k: set(videos.loc[videos["fold"] == k, "subject_id"].astype(str)) for k in wanted}
    runs = _load_runs(run_dirs, expected)
    digest = plan.folds_digest(folds)

    fold_of = {sid: k for k, subjects in expected.items() for sid in subjects}
    ev_settings, tables, pooled_clips = {}, {}, {}
    for s in plan.settings(cfg, train):
        seeds = plan.seeds_of(s, cfg)
        missing = [(seed, k) for seed in seeds for k in wanted if (s.run_key, seed, k) not in runs]
        if missing:
            raise UserError(
                f"setting {s.name} has no run for (seed, fold) {missing}", "re-run 'hypomimia evaluate'"
            )
        by_seed = {seed: [runs[(s.run_key, seed, k)] for k in wanted] for seed in seeds}
        # The seed ensemble: per clip (so per video and subject), the mean of the seeds' probabilities.
        per_fold_clips = [ensemble_clips([by_seed[seed][i] for seed in seeds]) for i in range(len(wanted))]
        clips = pd.concat(per_fold_clips, ignore_index=True)
        per_fold = [
            {"fold": k, "subjects": len(t), "subject_auroc": auroc(*_yp(t))}
            for k, t in zip(wanted, (report.subject_table(c) for c in per_fold_clips), strict=True)
        ]  # fmt: skip
        table = report.subject_table(clips)
        ev_settings[s.name] = {
            "setting": s.to_dict(),
            "runs": [f"runs/{plan.Task(s, k, seed).folder}" for seed in seeds for k in wanted],
            "folds": per_fold,
            "pooled": report.pooled(
                clips, n_bootstrap=cfg.bootstrap, seed=cfg.seed, bins=cfg.calibration_bins
            ),
            "seeds": _seed_summary(s, by_seed, wanted, fold_of, cfg) if s.network else None,
            "calibration": calibration.summary(table, fold_of, cfg.calibration, report.video_table(clips)),
        }
        if s.model == "voice":  # subjects without any voiced video were scored p = 0.5
            voiced = pd.concat([c for fold_clips in by_seed.values() for c in fold_clips], ignore_index=True)
            has = voiced.groupby("subject_id")["voiced"].any()
            ev_settings[s.name]["voice"] = {
                "subjects": int(len(has)),
                "subjects_without_voice": int((~has).sum()),
                "note": "a subject is the mean of its voiced videos; one without voice is scored p = 0.5",
            }
        tables[s.name], pooled_clips[s.name] = table, clips

    for s, by_seed, what in _derived_settings(cfg, train, runs, wanted):
        # the reference's streams alone (the landmark stream's and the voice's ablations), no training
        per_fold_clips = [ensemble_clips([by_seed[seed][i] for seed in by_seed]) for i in range(len(wanted))]
        clips = pd.concat(per_fold_clips, ignore_index=True)
        table = report.subject_table(clips)
        ev_settings[s.name] = {
            "setting": s.to_dict(),
            "runs": ev_settings[cfg.reference]["runs"],
            "derived": what,
            "folds": [{"fold": k, "subjects": len(t), "subject_auroc": auroc(*_yp(t))}
                      for k, t in zip(wanted, (report.subject_table(c) for c in per_fold_clips), strict=True)],
            "pooled": report.pooled(clips, n_bootstrap=cfg.bootstrap, seed=cfg.seed, bins=cfg.calibration_bins),
            "seeds": _seed_summary(s, by_seed, wanted, fold_of, cfg),
            "calibration": calibration.summary(table, fold_of, cfg.calibration, report.video_table(clips)),
        }  # fmt: skip
        tables[s.name], pooled_clips[s.name] = table, clips

    ref = cfg.reference
    info = _info(tubes_dir, ingest_dir, cfg)
    kw = {"n_bootstrap": cfg.bootstrap, "seed": cfg.seed, "method": cfg.correction, "alpha": cfg.alpha}
    model_names = [n for n, r in ev_settings.items() if r["setting"]["design"] is None]
    comparisons = report.compare(tables, [(ref, m) for m in model_names if m != ref], **kw)
    ref_key = next(x.run_key for x in plan.settings(cfg, train) if x.name == ref)
    ablation_pairs = [(n, ref) for n, r in ev_settings.items() if r["setting"]["design"] is not None
                      and Setting(**r["setting"]).run_key != ref_key]  # fmt: skip
    ablation_comparisons = report.compare(tables, ablation_pairs, **kw)
    ablation = _ablation_rows(ev_settings, train)
    sub = ev_settings[ref]["pooled"]["subject"]
    ev = {
        "reference": ref,
        "folds": wanted,
        "repeat": train.repeat,
        "folds_digest": digest,
        "subjects": int(sum(len(v) for v in expected.values())),
        "bootstrap": cfg.bootstrap,
        "seeds": list(cfg.seeds),
        "ensemble": "networks: every number of a setting (pooled, folds, comparisons, slices, the blessing) is "
        "its seed ensemble, per subject the mean of the evaluate.seeds runs' probabilities; per-seed results "
        "under settings.<name>.seeds",
        "calibration": cfg.calibration,
        "correction": cfg.correction,
        "alpha": cfg.alpha,
        "settings": ev_settings,
        "comparisons": comparisons,
        "ablation": ablation,
        "ablation_comparisons": ablation_comparisons,
        "ablation_verdict": _ablation_verdict(ablation, ablation_comparisons, train.model.frames),
        "slices": report.slices(pooled_clips[ref], info, n_bootstrap=cfg.bootstrap, seed=cfg.seed),
        "task_slices": report.task_slices(
            pooled_clips, info, model_names, n_bootstrap=cfg.bootstrap, seed=cfg.seed
        ),
        "params": {"evaluate": cfg.model_dump(mode="json"), "train": train.model_dump(mode="json")},
    }

    # --- the blessing decision for the trained challenger
    name = train.registered_model or None
    tracking = tracking_uri != "off"
    uri = None
    version = champ = None
    c = None
    if tracking and name:
        from hypomimia.evaluation import registry
        from hypomimia.learning import mlflow_runs

        uri = tracking_uri or mlflow_runs.default_tracking_uri()
        c = registry.client(uri)
        run_id = None
        if model_dir is not None:
            try:
                run_id = (
                    json.loads((Path(model_dir) / "metadata.json").read_text())
                    .get("mlflow", {})
                    .get("run_id")
                )
            except (OSError, ValueError):
                run_id = None
        version = registry.version_of_run(c, name, run_id)
        rec = registry.champion(c, name)
        champ = blessing.Champion(rec.version, rec.subject_auroc, rec.folds_digest) if rec else None
    ref_seeds = ev_settings[ref]["seeds"] or {}
    candidate = blessing.Candidate(
        ref, sub["auroc"], tuple(sub["auroc_ci95"]), digest, version,
        seeds=[{"seed": r["seed"], "auroc": r["subject_auroc"], "auroc_ci95": tuple(r["auroc_ci95"])}
               for r in ref_seeds.get("per_seed", [])],
    )  # fmt: skip
    decision = blessing.decide(cfg.blessing, candidate, champ, model=name)
    decision.evidence = str(out_dir / "evaluation.json")
    ev["blessing"] = decision.to_dict()

    fig_paths = report.figures(ev, out_dir / "figures")
    ev["figures"] = [str(p.relative_to(out_dir)) for p in fig_paths]
    run_id = _log_mlflow(ev, cfg, train, tubes_dir, videos, out_dir, uri) if tracking else None
    ev["mlflow_run_id"] = run_id
    jsonio.write(out_dir / "evaluation.json", ev)
    jsonio.write(out_dir / "blessing.json", ev["blessing"])
    (out_dir / "evaluation.md").write_text(report.markdown(ev), encoding="utf-8")
    if c is not None and version is not None:
        from hypomimia.evaluation import registry

        registry.set_challenger(c, name, version)
        if not decision.blessed:
            registry.reject(name, version, why=decision.reason, evidence=str(out_dir / "blessing.json"))
    return EvaluateResult(
        out_dir, out_dir / "evaluation.json", out_dir / "evaluation.md", out_dir / "blessing.json",
        decision.blessed, ev["blessing"], {n: r["pooled"]["subject"]["auroc"] for n, r in ev_settings.items()},
        fig_paths, run_id,
    )  # fmt: skip


def _log_mlflow(
    ev: dict,
    cfg: EvaluateConfig,
    train: TrainConfig,
    tubes_dir: Path,
    videos: pd.DataFrame,
    out_dir: Path,
    uri: str | None,
) -> str:
    """One parent run (tags: git commit, params hash, data version, folds digest) and a child run per
    task: '<setting> fold<k>' (landmark baselines) or '<setting> fold<k> seed<s>' (networks)."""
    import mlflow

    from hypomimia.learning import mlflow_runs

    uri = uri or mlflow_runs.default_tracking_uri()
    exp = mlflow_runs.setup_experiment(uri, cfg.experiment)
    params_hash = params_sha256(ev["params"])[:16]
    data = mlflow_runs.tubes_digest(tubes_dir, [tubes_dir / t for t in videos["tube"]])
    tags = {**mlflow_runs.data_version_tags(tubes_dir, data), "params.hash": params_hash,
            "folds.digest": ev["folds_digest"], "hypomimia.stage": "evaluate"}  # fmt: skip
    with mlflow.start_run(
        experiment_id=exp, run_name=f"evaluate {cfg.reference} folds {ev['folds_digest'][:8]}", tags=tags
    ) as parent:
        mlflow.log_params({"reference": cfg.reference, "folds": str(ev["folds"]), "models": ",".join(cfg.models),
                           "ablation.frames": str(cfg.ablation.frames), "ablation.designs": ",".join(cfg.ablation.designs),
                           "bootstrap": cfg.bootstrap, "correction": cfg.correction,
                           "seeds": str(list(cfg.seeds)), "calibration": cfg.calibration})  # fmt: skip
        for name, r in ev["settings"].items():
            s = r["pooled"]["subject"]
            key = name.replace("/", ".")
            seeds = r.get("seeds") or {}
            metrics = {f"{key}.subject_auroc": s["auroc"], f"{key}.seed_auroc_mean": seeds.get("auroc_mean"),
                       f"{key}.seed_auroc_sd": seeds.get("auroc_sd"),
                       **{f"{key}.seed{row['seed']}.subject_auroc": row["subject_auroc"] for row in seeds.get("per_seed", [])}}  # fmt: skip
            mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None and v == v})
            subjects = {f["fold"]: f["subjects"] for f in r["folds"]}
            # one child per task: (setting, fold) for a landmark baseline, (setting, fold, seed) for a network
            children = [(None, f) for f in r["folds"]] if not seeds else [
                (row["seed"], f) for row in seeds["per_seed"] for f in row["folds"]]  # fmt: skip
            for seed, f in children:
                st = r["setting"]
                child_tags = {**tags, "hypomimia.setting": name, "hypomimia.model": st["model"],
                              "hypomimia.fold": str(f["fold"]), "hypomimia.design": st["design"] or "shipped",
                              **({} if seed is None else {"hypomimia.seed": str(seed)})}  # fmt: skip
                run_name = f"{name} fold{f['fold']}" + ("" if seed is None else f" seed{seed}")
                with mlflow.start_run(experiment_id=exp, run_name=run_name, nested=True, tags=child_tags):
                    mlflow.log_params({k: v for k, v in st.items() if v is not None})
                    if f["subject_auroc"] == f["subject_auroc"]:
                        mlflow.log_metric("test.subject_auroc", f["subject_auroc"])
                    mlflow.log_metric("test.subjects", subjects[f["fold"]])
        mlflow.set_tag("blessing.blessed", str(ev["blessing"]["blessed"]).lower())
        for p in ev.get("figures", []):
            mlflow.log_artifact(str(out_dir / p), artifact_path="figures")
        mlflow.log_text(jsonio.dumps(ev), "evaluation.json")
        return parent.info.run_id


__all__ = ["EvaluateResult", "check_model_folds", "fit", "gather", "run"]
