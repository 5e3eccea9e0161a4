"""Drift monitoring's known answers: false alarms, detection per shift type, and patient-course alerts.

Pools, rendered once and cached under ``out/pool`` (phantom videos -> ingest -> face tubes):

* ``reference``: a phantom cohort (seed 0), the training data the monitor compares with;
* ``same``: fresh subjects (seed 1), same camera: windows drawn from it must raise no alarm;
* ``blur``, ``dark``, ``lowres``, ``compression``: part of ``same`` re-encoded through
  ``phantom.camera.CHANGES`` (the same faces, another camera): every window must alarm;
* ``severe``: fresh subjects whose PD patients are at UPDRS 3.2 = 3-4 (``phantom.visits.severe_cohort``),
  the camera unchanged: a population shift;
* patients: two patients rendered at UPDRS 3.2 rising 0 -> 1 -> 2 -> 3 over four sessions, and
  stable patients (same score every session), several clips per session.

A window is ``window`` videos drawn without replacement from a pool, i.e. resampled subjects (one
video per subject), so 20+ windows need one render of the pool, not 20. Windows of one pool overlap,
so their outcomes are not independent: the pool is kept several times larger than the window for
the no-shift case, where it matters most. Each window runs the monitor's drift tests and decision
(``monitoring.drift.compare`` + ``monitoring.decision.decide``, no model: quality features and the
model-free hypomimia index). An alarm is any outcome other than ``ok`` (``warn`` or ``retrain``).

Patient courses: for each stable patient, its clips are dealt at random into four sessions
(clips of a stable patient are exchangeable across sessions), ``draws`` times; each draw runs
``monitoring.course.courses`` on the stable patients together with the rising ones (the retest
spread pools every patient, as ``hypomimia monitor patients`` does on a clinic's batch).

``python -m benchmarks.monitor --population-sizes 120 150 200 --windows 100`` runs only the
population shift and its same-distribution windows at those sizes, with a reference of 2n: the severe
shift needs far larger windows than the camera shifts. ``reference``, ``same`` and ``severe`` are grown
to 2 x the largest n by cached chunks of fresh subjects (``grow_pools``).

Targets (issue 16): false-alarm rate <= 5 % over >= 20 same-distribution windows; detection
>= 95 % per shift type; the rising patient alerts and trends up; the stable patients' false-alert
rate is reported.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.config.ingest import IngestConfig
from hypomimia.config.monitor import MonitorConfig
from hypomimia.config.phantom import PhantomConfig

log = logging.getLogger(__name__)
SHIFTS = ("blur", "dark", "lowres", "compression")


def _sizes(quick: bool) -> dict:
    if quick:
        return {"reference": 16, "same": 16, "shifted": 12, "severe": 12, "windows": 5, "window_sizes": (6,),
                "stable": 2, "clips": 2, "draws": 5, "chunk": 8}  # fmt: skip
    return {"reference": 100, "same": 100, "shifted": 40, "severe": 120, "windows": 25, "window_sizes": (20, 40, 60),
            "stable": 4, "clips": 4, "draws": 25,
            # larger windows for the population shift: more reference, no-shift and severe videos
            "extra": {"reference": 100, "same": 100, "severe": 180}, "large_window_sizes": (100,),
            "chunk": 100}  # fmt: skip


# "chunk": fresh subjects per render when --population-sizes needs pools larger than the ones above


def _phantom_cfg(**kw) -> PhantomConfig:
    """Bench-sized clips: the smallest the phantom allows (256 px, 3 s), one smile clip per subject."""
    base = {"videos_per_subject": 1, "duration_s": 3.0, "size": 256, "tasks": ["smile"], "workers": 2}
    return PhantomConfig(**(base | kw))


def _prepare(folder: Path, manifest: Path) -> tuple[Path, Path]:
    """ingest + facetubes of one pool; reused when a previous bench run finished it."""
    from hypomimia.stages import facetubes, ingest

    done = folder / "tubes" / "tubes.parquet"
    if not done.is_file():
        ingest.run(IngestConfig(folds=2, workers=2), manifest, folder / "ingest")
        facetubes.run(FacetubesConfig(workers=2), folder / "ingest", folder / "tubes")
    return folder / "ingest", folder / "tubes"


def _pool(folder: Path, render, videos: int) -> pd.DataFrame:
    """A pool's window table (quality features + hypomimia index), rendering it once. A cached pool of
    another size (the sizes changed since) is rendered again."""
    from hypomimia.monitoring.window import batch_table

    manifest = folder / "data" / "manifest.csv"
    if manifest.is_file() and len(manifest.read_text(encoding="utf-8").splitlines()) - 1 != videos:
        shutil.rmtree(folder)
    if not manifest.is_file():
        render(folder / "data")
    return batch_table(*_prepare(folder, manifest))


def build_pools(root: Path, sizes: dict) -> dict[str, pd.DataFrame]:
    from hypomimia.phantom.camera import CHANGES, apply_to_folder
    from hypomimia.phantom.visits import render_visits, severe_cohort
    from hypomimia.stages import phantom

    ref_cfg = _phantom_cfg(subjects=sizes["reference"], seed=0)
    same_cfg = _phantom_cfg(subjects=sizes["same"], seed=1)
    pools = {
        "reference": _pool(
            root / "reference", lambda d: phantom.run(ref_cfg, d, progress=False), sizes["reference"]
        ),
        "same": _pool(root / "same", lambda d: phantom.run(same_cfg, d, progress=False), sizes["same"]),
    }
    # The camera changes see the first `shifted` videos of `same`: the same faces, re-encoded.
    base = root / "same_subset"
    if (base / "manifest.csv").is_file() and len(
        (base / "manifest.csv").read_text().splitlines()
    ) - 1 != sizes["shifted"]:
        shutil.rmtree(base)
    if not (base / "manifest.csv").is_file():
        base.mkdir(parents=True, exist_ok=True)
        lines = (root / "same" / "data" / "manifest.csv").read_text(encoding="utf-8").splitlines()
        (base / "manifest.csv").write_text("\n".join(lines[: sizes["shifted"] + 1]) + "\n", encoding="utf-8")
        (base / "videos").symlink_to((root / "same" / "data" / "videos").resolve())
    for shift in SHIFTS:
        pools[shift] = _pool(
            root / shift, lambda d, s=shift: apply_to_folder(base, d, CHANGES[s], fps=same_cfg.fps, crf=same_cfg.crf),
            sizes["shifted"],
        )  # fmt: skip
    severe = severe_cohort(same_cfg, first_subject=5000, subjects=sizes["severe"])
    pools["severe"] = _pool(root / "severe", lambda d: render_visits(same_cfg, severe, d), sizes["severe"])
    return pools


def build_large_pools(root: Path, sizes: dict, pools: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """reference, same and severe grown by ``sizes["extra"]`` fresh subjects (other seeds / subject ranges)."""
    from hypomimia.phantom.visits import render_visits, severe_cohort
    from hypomimia.stages import phantom

    extra = sizes["extra"]
    ref_cfg = _phantom_cfg(subjects=extra["reference"], seed=2)
    same_cfg = _phantom_cfg(subjects=extra["same"], seed=3)
    severe = severe_cohort(_phantom_cfg(seed=1), first_subject=6000, subjects=extra["severe"])
    grown = {
        "reference": _pool(
            root / "reference_extra", lambda d: phantom.run(ref_cfg, d, progress=False), extra["reference"]
        ),
        "same": _pool(root / "same_extra", lambda d: phantom.run(same_cfg, d, progress=False), extra["same"]),
        "severe": _pool(
            root / "severe_extra", lambda d: render_visits(_phantom_cfg(seed=1), severe, d), extra["severe"]
        ),
    }
    return {k: pd.concat([pools[k], v], ignore_index=True) for k, v in grown.items()}


def grow_pools(root: Path, pools: dict[str, pd.DataFrame], need: int, chunk: int) -> dict[str, pd.DataFrame]:
    """reference, same and severe grown to at least ``need`` videos each by chunks of ``chunk`` fresh
    subjects. Chunks have fixed seeds and subject ranges and are cached one folder each, so a larger
    ``need`` later renders only the missing chunks."""
    from hypomimia.phantom.visits import render_visits, severe_cohort
    from hypomimia.stages import phantom

    severe_cfg = _phantom_cfg(seed=1)  # as the severe pools: seed 1, subjects from 5000 (5000+, 6000+, 7000+)

    def plain(seed: int):
        cfg = _phantom_cfg(subjects=chunk, seed=seed)
        return lambda d: phantom.run(cfg, d, progress=False)

    def severe(k: int):
        visits = severe_cohort(severe_cfg, first_subject=7000 + chunk * k, subjects=chunk)
        return lambda d: render_visits(severe_cfg, visits, d)

    # seeds 0-3 are the reference/same pools above; the chunks take 100+k (reference), 200+k (same)
    makers = {"reference": lambda k: plain(100 + k), "same": lambda k: plain(200 + k), "severe": severe}
    grown = {}
    for name, make in makers.items():
        parts, k = [pools[name]], 0
        while sum(map(len, parts)) < need:
            parts.append(_pool(root / f"{name}_more{k}", make(k), chunk))
            k += 1
        grown[name] = pd.concat(parts, ignore_index=True)
    return grown


def population_rates(
    root: Path, sizes: dict, cfg: MonitorConfig, window_sizes: list[int], windows: int
) -> list[dict]:
    """The severe-PD shift and the same-distribution windows at each size n, against a reference of
    the first 2n reference videos; the pools grown first so that each holds at least 2n videos."""
    base = build_pools(root, sizes)
    if "extra" in sizes:
        base = build_large_pools(root, sizes, base)
    grown = grow_pools(root, base, 2 * max(window_sizes), sizes["chunk"])
    results = []
    for n in window_sizes:
        pools = {
            "reference": grown["reference"].iloc[: 2 * n],
            "same": grown["same"],
            "severe": grown["severe"],
        }
        results += drift_rates(pools, sizes | {"windows": windows}, cfg, [n], ("same", "severe"))
    return results


def _windows(pool: pd.DataFrame, size: int, count: int, seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    size = min(size, len(pool))
    return [pool.iloc[np.sort(rng.choice(len(pool), size, replace=False))] for _ in range(count)]


def drift_rates(
    pools: dict[str, pd.DataFrame], sizes: dict, cfg: MonitorConfig, window_sizes=None, scenarios=None
) -> list[dict]:
    """Per scenario and window size: the alarm rate (warn or retrain), the retrain rate, what drove them."""
    from hypomimia.monitoring.decision import decide
    from hypomimia.monitoring.drift import compare

    reference = pools["reference"]
    results = []
    for n in window_sizes or sizes["window_sizes"]:
        for k, scenario in enumerate(scenarios or ("same", *SHIFTS, "severe")):
            pool = pools[scenario]
            if 2 * n > len(pool):  # windows of more than half the pool would nearly all be the same videos
                continue
            outcomes, drivers = [], {}
            for window in _windows(pool, n, sizes["windows"], seed=1000 * n + k):
                d = decide(compare(reference, window.reset_index(drop=True), cfg).summary, cfg)
                outcomes.append(d.outcome)
                for col in d.drivers:
                    drivers[col] = drivers.get(col, 0) + 1
            alarms = sum(o != "ok" for o in outcomes)
            results.append({
                "scenario": scenario, "window": n, "windows": len(outcomes), "pool": len(pool),
                "reference": len(reference),
                "alarm_rate": alarms / len(outcomes), "retrain_rate": outcomes.count("retrain") / len(outcomes),
                "drivers": dict(sorted(drivers.items(), key=lambda kv: -kv[1])),
            })  # fmt: skip
            log.info("monitor bench: %s n=%d alarms %d/%d", scenario, n, alarms, len(outcomes))
    return results


def patient_courses(root: Path, sizes: dict, cfg: MonitorConfig) -> dict:
    """Rising patients (0 -> 1 -> 2 -> 3) and stable ones: alerts over ``draws`` session assignments."""
    from hypomimia.monitoring.course import IDENTITY, courses
    from hypomimia.monitoring.expressivity import hypomimia_index
    from hypomimia.phantom.visits import course, render_visits

    clips, sessions = sizes["clips"], 4
    rising_ids = (900, 901)
    stable = {910 + i: (0, 1, 2, 3)[i % 4] for i in range(sizes["stable"])}  # stable at each score in turn
    visits = [v for s in rising_ids for v in course(s, [0, 1, 2, 3], clips)]
    visits += [v for s, u in stable.items() for v in course(s, [u] * sessions, clips)]
    cfg_ph = _phantom_cfg(subjects=2)
    table = _pool(root / "patients", lambda d: render_visits(cfg_ph, visits, d), len(visits))
    table["score"] = [hypomimia_index(Path(t)) for t in table["tube"]]
    rising = table[table["subject_ref"].isin([f"ph_s{s:03d}" for s in rising_ids])]
    still = table[~table.index.isin(rising.index)]
    rng = np.random.default_rng(7)
    stable_alerts, rising_alerts, rising_trend, n_stable = 0, 0, 0, 0
    for _ in range(sizes["draws"]):
        parts = [rising]
        for _ref, g in still.groupby("subject_ref"):  # deal a stable patient's clips into sessions at random
            order = rng.permutation(len(g))
            parts.append(g.iloc[order].assign(session=[f"s{1 + i // clips}" for i in range(len(g))]))
        result = courses(pd.concat(parts, ignore_index=True), cfg, IDENTITY)
        for ref, c in result["patients"].items():
            if ref in {f"ph_s{s:03d}" for s in rising_ids}:
                rising_alerts += bool(c["alerts"])
                rising_trend += c["trend"] == "rising"
            else:
                stable_alerts += bool(c["alerts"])
                n_stable += 1
    # the rendered (not reshuffled) courses, as `hypomimia monitor patients` reports them
    as_rendered = courses(table, cfg, IDENTITY)
    return {
        "sessions": sessions, "clips_per_session": clips, "draws": sizes["draws"],
        "rising_patients": len(rising_ids), "stable_patients": len(stable),
        "rising_alert_rate": rising_alerts / (len(rising_ids) * sizes["draws"]),
        "rising_trend_rate": rising_trend / (len(rising_ids) * sizes["draws"]),
        "stable_false_alert_rate": stable_alerts / max(n_stable, 1), "stable_courses": n_stable,
        "retest_sd": as_rendered["retest_sd"],
        "as_rendered": {ref: {"scores": [round(s["score"], 3) for s in c["sessions"]], "trend": c["trend"],
                              "alerts": [f"{a['kind']} {a['from']}->{a['to']} z={a['z']:.1f}" for a in c["alerts"]]}
                        for ref, c in as_rendered["patients"].items()},
    }  # fmt: skip


def run(out: Path, quick: bool) -> list[dict]:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    sizes = _sizes(quick)
    pool_root = out / ("pool-quick" if quick else "pool")  # cached: a re-run reuses the rendered pools
    for stale in out.glob("results*.json"):
        stale.unlink()
    cfg = MonitorConfig(min_window=5)
    pools = build_pools(pool_root, sizes)
    t_pools = time.perf_counter() - t0
    drift = drift_rates(pools, sizes, cfg)
    if "extra" in sizes:
        t1 = time.perf_counter()
        large = build_large_pools(pool_root, sizes, pools)
        t_pools += time.perf_counter() - t1
        drift += drift_rates(large, sizes, cfg, sizes["large_window_sizes"], ("same", "severe"))
    patients = patient_courses(pool_root, sizes, cfg)
    wall = time.perf_counter() - t0
    (out / "monitor.json").write_text(
        json.dumps({"sizes": {k: v for k, v in sizes.items()}, "alpha": cfg.alpha, "drift": drift,
                    "patients": patients, "pools_s": t_pools, "wall_s": wall}, indent=2, default=list) + "\n"
    )  # fmt: skip
    (out / "monitor.md").write_text(_markdown(drift, patients, cfg))
    rows = []
    for r in drift:
        what = "false-alarm rate" if r["scenario"] == "same" else "detection rate"
        note = (f"{r['windows']} windows of {r['window']} from a pool of {r['pool']}, reference {r['reference']}; "
                f"drivers {r['drivers']}")  # fmt: skip
        rows.append(_row(f"{r['scenario']}_n{r['window']}", r["alarm_rate"], "share", f"{what}; {note}"))
    rows.append(
        _row("rising_patient_alert_rate", patients["rising_alert_rate"], "share", "UPDRS 3.2 0->1->2->3")
    )
    rows.append(_row("stable_patient_false_alert_rate", patients["stable_false_alert_rate"], "share",
                     f"{patients['stable_courses']} stable courses, 4 sessions x {patients['clips_per_session']} clips"))  # fmt: skip
    rows.append(
        _row("pools_s", t_pools, "s", "render + ingest + facetubes of the pools (seconds when cached)")
    )
    rows.append(_row("bench_wall", wall, "s", "whole benchmark"))
    return rows


def run_population(out: Path, quick: bool, window_sizes: list[int], windows: int) -> list[dict]:
    """Only the population shift (severe PD) and the same-distribution windows, at the given window
    sizes with a reference of 2n: ``python -m benchmarks.monitor --population-sizes 150 200``.
    Reuses (and grows) the pools cached by the default run; writes population.json / population.md."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    sizes = _sizes(quick)
    cfg = MonitorConfig(min_window=5)
    drift = population_rates(out / ("pool-quick" if quick else "pool"), sizes, cfg, window_sizes, windows)
    wall = time.perf_counter() - t0
    (out / "population.json").write_text(
        json.dumps({"window_sizes": window_sizes, "windows": windows, "alpha": cfg.alpha, "drift": drift,
                    "wall_s": wall}, indent=2) + "\n"
    )  # fmt: skip
    (out / "population.md").write_text(_markdown(drift, None, cfg))
    return [
        _row(f"{r['scenario']}_n{r['window']}", r["alarm_rate"], "share",
             f"{'false-alarm' if r['scenario'] == 'same' else 'detection'} rate; {r['windows']} windows of "
             f"{r['window']} from a pool of {r['pool']}, reference {r['reference']}; drivers {r['drivers']}")
        for r in drift
    ]  # fmt: skip


# -- issue 26: windows of 5 subjects x 4 clips, a model's outputs, occluded regions, lost videos ----------
CLUSTERED = {"reference": 16, "pool": 12, "clips": 4, "subjects": 5, "windows": 40, "folds": 4}


def _clustered_pool(folder: Path, render, folds: int = 2) -> tuple[pd.DataFrame, dict[str, int], Path, Path]:
    from hypomimia.monitoring.window import batch_table, lost_counts
    from hypomimia.stages import facetubes, ingest

    manifest = folder / "data" / "manifest.csv"
    if not manifest.is_file():
        render(folder / "data")
    if not (folder / "tubes" / "tubes.parquet").is_file():
        ingest.run(IngestConfig(folds=folds, workers=1), manifest, folder / "ingest")
        facetubes.run(FacetubesConfig(workers=2), folder / "ingest", folder / "tubes")
    ing, tubes = folder / "ingest", folder / "tubes"
    return batch_table(ing, tubes), lost_counts(ing, tubes), ing, tubes


def clustered_rates(out: Path, sizes: dict = CLUSTERED, train: bool = True) -> dict:
    """False alarms of same-distribution windows of ``subjects`` x ``clips`` (fresh subjects, one
    reference with a model), and detection of occluded eyes / mouth on the same windows.

    Pools, rendered once (cached under ``out/clustered``): ``reference`` (seed 10, ``reference``
    subjects x ``clips`` smile clips, ingest with ``folds`` folds; a tiny model trained on it,
    tests/helpers_train.tiny_train_config, 1 epoch), ``same`` (seed 11, ``pool`` fresh subjects x
    ``clips``), and ``eyes`` / ``mouth``: ``same`` with phantom.camera.OCCLUSIONS painted over the
    region and re-encoded. A window = ``subjects`` subjects drawn without replacement from the pool
    (seeded, rng 26 + window index), all their clips; the occluded windows are the same subjects'
    occluded clips. Each window runs ``drift.compare`` (with the window's and the reference's lost
    counts) + ``decide``; the model's scores of every pool video are computed once and reused.
    An alarm is any outcome but ``ok``."""
    from hypomimia.monitoring.decision import decide
    from hypomimia.monitoring.drift import compare
    from hypomimia.phantom.camera import OCCLUSIONS, apply_to_folder
    from hypomimia.stages import phantom

    t0 = time.perf_counter()
    root = out / "clustered"
    ph = {"videos_per_subject": sizes["clips"], "tasks": ["smile"]}
    ref_cfg = _phantom_cfg(subjects=sizes["reference"], seed=10, **ph)
    same_cfg = _phantom_cfg(subjects=sizes["pool"], seed=11, **ph)
    ref, ref_lost, ref_ing, ref_tubes = _clustered_pool(
        root / "reference", lambda d: phantom.run(ref_cfg, d, progress=False), sizes["folds"]
    )
    pools = {"same": _clustered_pool(root / "same", lambda d: phantom.run(same_cfg, d, progress=False))}
    for region in ("eyes", "mouth"):
        pools[region] = _clustered_pool(
            root / region,
            lambda d, r=region: apply_to_folder(root / "same" / "data", d, OCCLUSIONS[r], fps=25),
        )
    t_pools = time.perf_counter() - t0
    cfg = MonitorConfig()
    model_reference = None
    if train:
        from hypomimia.monitoring.scoring import Scorer
        from hypomimia.monitoring.window import heldout_folds, training_ids
        from hypomimia.stages import train as train_stage
        from tests.helpers_train import tiny_train_config

        model = root / "train" / "model.pt"
        if not model.is_file():
            train_stage.run(tiny_train_config(epochs=1, bootstrap=20), ref_tubes, ref_ing, root / "train",
                            tracking_uri="off")  # fmt: skip
        scorer = Scorer.load(model, 2)
        folds = training_ids(ref_ing)
        held = set(folds.loc[folds["fold"].isin(heldout_folds(scorer.metadata, sizes["folds"])), "video_id"])
        scored_ref = scorer.score(ref[ref["video_id"].isin(held)])[0]
        model_reference = ref.drop(columns=["p_pd", "label"], errors="ignore").merge(
            scored_ref[["video_id", "p_pd", "label", *[c for c in scored_ref if c.startswith("emb_")]]],
            on="video_id", how="left",
        )  # fmt: skip
        same_scored = scorer.score(pools["same"][0])[0]
    t_model = time.perf_counter() - t0 - t_pools
    subjects = sorted(pools["same"][0]["subject_ref"].unique())
    results: dict[str, dict] = {}

    def window_lost(table: pd.DataFrame, folder: Path, chosen: list[str]) -> dict:
        tubes = pd.read_parquet(folder / "tubes" / "tubes.parquet")
        mine = tubes[tubes["subject_id"].isin(chosen)]
        return {"submitted": len(mine), "ingest_quarantined": 0,
                "face_lost": int((mine["status"] == "quarantined").sum()), "reference": ref_lost}  # fmt: skip

    scenarios = [
        ("same", ref, pools["same"][0]),
        ("eyes", ref, pools["eyes"][0]),
        ("mouth", ref, pools["mouth"][0]),
    ]
    if model_reference is not None:
        scenarios.insert(0, ("same_with_model", model_reference, same_scored))
    for name, reference, pool in scenarios:
        folder = root / ("same" if name.startswith("same") else name)
        outcomes, drivers = [], {}
        for k in range(sizes["windows"]):
            rng = np.random.default_rng(26 + k)
            chosen = sorted(rng.choice(subjects, sizes["subjects"], replace=False))
            window = pool[pool["subject_ref"].isin(chosen)].reset_index(drop=True)
            d = decide(compare(reference, window, cfg, window_lost(window, folder, chosen)).summary, cfg)
            outcomes.append(d.outcome)
            for col in d.drivers:
                drivers[col] = drivers.get(col, 0) + 1
        results[name] = {
            "windows": len(outcomes), "alarm_rate": sum(o != "ok" for o in outcomes) / len(outcomes),
            "retrain_rate": outcomes.count("retrain") / len(outcomes),
            "drivers": dict(sorted(drivers.items(), key=lambda kv: -kv[1])),
        }  # fmt: skip
        log.info("monitor bench (clustered): %s alarms %s", name, results[name])
    summary = {
        "sizes": sizes, "alpha": cfg.alpha, "results": results,
        "reference_videos": len(ref), "reference_scored": int(model_reference["p_pd"].notna().sum()) if train else 0,
        "pools_s": t_pools, "model_s": t_model, "wall_s": time.perf_counter() - t0,
    }  # fmt: skip
    (out / "clustered.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _markdown(drift: list[dict], patients: dict | None, cfg: MonitorConfig) -> str:
    lines = [
        "| scenario | window | reference | windows | alarm rate | retrain rate | drivers (windows) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in drift:
        drivers = ", ".join(f"{k} {v}" for k, v in list(r["drivers"].items())[:4]) or "-"
        lines.append(f"| {r['scenario']} | {r['window']} | {r['reference']} | {r['windows']} | {r['alarm_rate']:.2f} | "
                     f"{r['retrain_rate']:.2f} | {drivers} |")  # fmt: skip
    if patients is None:
        return "\n".join(lines) + "\n"
    p = patients
    lines += [
        "",
        f"Patient courses (4 sessions x {p['clips_per_session']} clips, retest SD {p['retest_sd']:.3f}): "
        f"rising patients alert in {p['rising_alert_rate']:.2f} and trend up in {p['rising_trend_rate']:.2f} "
        f"of {p['draws']} draws; stable patients' false-alert rate {p['stable_false_alert_rate']:.3f} "
        f"over {p['stable_courses']} courses (alpha per window {cfg.alpha}, course_z {cfg.course_z}).",
    ]
    return "\n".join(lines) + "\n"


def _row(metric: str, value: float, unit: str, note: str) -> dict:
    return {"name": "monitor", "metric": metric, "value": round(float(value), 4), "unit": unit, "note": note}


if __name__ == "__main__":
    import argparse

    from hypomimia.logs import setup_logging

    ap = argparse.ArgumentParser(description="the monitor benchmark; `--population-sizes` runs only the "
                                 "severe-PD shift and its same-distribution windows at those sizes")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("bench/monitor"))
    ap.add_argument("--quick", action="store_true", help="the smoke-run pools (pool-quick)")
    ap.add_argument("--population-sizes", type=int, nargs="+", default=None, metavar="N",
                    help="window sizes n for the population shift (reference 2n, pools grown to 2 x max n)")  # fmt: skip
    ap.add_argument(
        "--windows", type=int, default=25, help="windows per scenario and size (--population-sizes)"
    )
    ap.add_argument("--clustered", action="store_true",
                    help="issue 26: windows of 5 subjects x 4 clips with a tiny model; occluded eyes / mouth")  # fmt: skip
    a = ap.parse_args()
    setup_logging()
    if a.clustered:
        print(json.dumps(clustered_rates(a.out), indent=2, default=float))
        raise SystemExit(0)
    rows = (
        run_population(a.out, a.quick, a.population_sizes, a.windows)
        if a.population_sizes
        else run(a.out, a.quick)
    )
    print(json.dumps(rows, indent=2))
