"""Stage `validate`: the data gate between face tubes and training.

Validates five areas with Great Expectations -- the manifest, the ingested videos, the face
tubes, the folds, and leakage across folds -- and, when given the voice stage's output, a sixth
(the voice table) against thresholds from params.yaml. Writes
``summary.json`` (every expectation with its verdict and observed values), ``data_docs/``
(GX Data Docs) and ``reference_stats.json`` (training-data statistics for drift monitoring).
A failed ``error`` expectation raises :class:`GateFailed` so no later stage runs; a failed
``warning`` is logged and reported only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypomimia.config.validate import ValidateConfig
from hypomimia.errors import GateFailed, UserError
from hypomimia.lineage.offline import make_offline
from hypomimia.lineage.provenance import stamp
from hypomimia.validation import context, frames, reference, suites
from hypomimia.validation.gx_run import REPO_GX_DIR, Outcome, validate_frames

log = logging.getLogger(__name__)

SUMMARY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    outcomes: list[Outcome]
    summary_path: Path
    data_docs_index: Path
    reference_stats_path: Path
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def failed_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "error"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]


def _summary(outcomes: list[Outcome], success: bool, timings: dict[str, float]) -> dict:
    areas = {}
    validated = {o.area for o in outcomes}
    for area in (a for a in suites.AREAS if a not in suites.OPTIONAL_AREAS or a in validated):
        mine = [o for o in outcomes if o.area == area]
        areas[area] = {
            "success": all(o.success or o.severity == "warning" for o in mine),
            "evaluated": len(mine),
            "passed": [o.name for o in mine if o.success],
            "failed": [asdict(o) for o in mine if not o.success],
        }
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "success": success,
        "failed_errors": [o.name for o in outcomes if not o.success and o.severity == "error"],
        "warnings": [o.name for o in outcomes if not o.success and o.severity == "warning"],
        "checkpoints": areas,
        "timings_s": timings,
    }


def gate_message(failed: list[Outcome]) -> str:
    shown = ", ".join(o.name for o in failed)
    return f"data validation gate failed: {len(failed)} error expectation(s): {shown}"


def run(
    cfg: ValidateConfig,
    ingest_dir: Path,
    tubes_dir: Path,
    out_dir: Path,
    raise_on_error: bool = True,
    gx_dir: Path | None = REPO_GX_DIR,
    voice_dir: Path | None = None,
) -> ValidationResult:
    """Validate the ingest + facetubes outputs (and the voice stage's, given ``voice_dir``); write
    summary, Data Docs and reference statistics.

    ``gx_dir`` is the version-controlled GX context; it is only compared with what this run's
    params generate (a warning names stale files), never written.
    Raises :class:`GateFailed` naming the failed error expectations when ``raise_on_error``.
    """
    unknown = suites.unknown_names(cfg)
    if unknown:
        raise UserError(
            f"validate.warning_only names unknown expectations: {', '.join(unknown)}",
            "use names from docs/validation.md (or summary.json of an earlier run)",
        )
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  -- a one-off ~3 s per process, timed on its own

    timings = {"gx_import": round(time.perf_counter() - t0, 3)}
    inputs = frames.load_inputs(Path(ingest_dir), Path(tubes_dir), Path(voice_dir) if voice_dir else None)
    area_frames = frames.area_frames(inputs, cfg.near_duplicate_hamming)
    t1 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if gx_dir is not None and gx_dir.is_dir():
        stale = context.stale_files(cfg, gx_dir)
        if stale:
            log.warning(
                "%s differ from params; this run uses params (refresh with: hypomimia validate --write-suites)",
                ", ".join(f"gx/{f}" for f in stale),
            )
    timings["derive_tables"] = round(t1 - t0 - timings["gx_import"], 3)
    outcomes = validate_frames(cfg, area_frames, out_dir / "data_docs", timings)
    make_offline(out_dir / "data_docs")  # no CDN: the pages open complete without a network
    stats = reference.reference_stats(inputs.ingested, inputs.folds, inputs.tubes, inputs.files)
    stats_path = reference.write_reference_stats(stats, out_dir / "reference_stats.json")
    timings["total"] = round(time.perf_counter() - t0, 3)

    success = not any(not o.success and o.severity == "error" for o in outcomes)
    summary_path = out_dir / "summary.json"
    prov = stamp("validate", cfg, {"ingested": Path(ingest_dir) / "ingested.parquet", "tubes": Path(tubes_dir) / "tubes.parquet",
                                   "voice": Path(voice_dir) / "voice.parquet" if voice_dir else None})  # fmt: skip
    summary_path.write_text(
        json.dumps(_summary(outcomes, success, timings) | {"provenance": prov}, indent=2) + "\n",
        encoding="utf-8",
    )
    result = ValidationResult(
        success=success,
        outcomes=outcomes,
        summary_path=summary_path,
        data_docs_index=out_dir / "data_docs" / "index.html",
        reference_stats_path=stats_path,
        timings_s=timings,
    )
    for o in result.warnings:
        log.warning("validation warning %s: %s", o.name, json.dumps(o.observed)[:300])
    for o in result.failed_errors:
        log.error("validation failed %s: %s", o.name, json.dumps(o.observed)[:300])
    log.info(
        "validated %d expectations in %.1f s: %d failed errors, %d warnings",
        len(outcomes),
        timings["total"],
        len(result.failed_errors),
        len(result.warnings),
    )
    if raise_on_error and not success:
        raise GateFailed(
            gate_message(result.failed_errors), f"see {summary_path} and {result.data_docs_index}"
        )
    return result
