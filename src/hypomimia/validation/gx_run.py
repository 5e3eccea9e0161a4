"""Run the gate's checkpoints (five; six with a voice table) in a throw-away copy of the GX context.

GX writes into its context as it runs (validation results, store ids), and the context in
``gx/`` is version-controlled, so each run materialises the context for this run's params
(:func:`hypomimia.validation.context.write_context`, the same files as ``gx/``) in a temp
folder, points the Data Docs site at the stage's ``out_dir/data_docs``, and discards the rest.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.config.validate import ValidateConfig
from hypomimia.validation.context import write_context
from hypomimia.validation.suites import AREAS

log = logging.getLogger(__name__)

REPO_GX_DIR = Path(__file__).resolve().parents[3] / "gx"
_EXAMPLES = 5


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict, in plain data (what summary.json and the terminal table show)."""

    area: str
    name: str
    severity: str  # error | warning
    success: bool
    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    observed: dict[str, Any]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _observed(result: dict[str, Any], exception_info: Any) -> dict[str, Any]:
    infos = exception_info or {}
    if "raised_exception" in infos:
        infos = {"_": infos}
    errors = [
        i.get("exception_message")
        for i in infos.values()
        if isinstance(i, dict) and i.get("raised_exception")
    ]
    if errors:
        return {"error": str(errors[0]).splitlines()[0]}
    keep = ("observed_value", "element_count", "unexpected_count", "unexpected_percent", "missing_count")
    observed = {k: result[k] for k in keep if k in result}
    if result.get("partial_unexpected_list"):
        observed["unexpected_values"] = result["partial_unexpected_list"][:_EXAMPLES]
    if result.get("partial_unexpected_index_list"):
        observed["unexpected_rows"] = result["partial_unexpected_index_list"][:_EXAMPLES]
    return _jsonable(observed)


def _outcomes(area: str, suite_result: Any) -> list[Outcome]:
    out = []
    for r in suite_result.results:
        cfg = r.expectation_config
        meta = cfg.meta or {}
        kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "result_format")}
        out.append(
            Outcome(
                area=area,
                name=meta.get("name", cfg.type),
                severity=meta.get("severity", "error"),
                success=bool(r.success),
                expectation=cfg.type,
                column=kwargs.get("column"),
                kwargs=_jsonable(kwargs),
                observed=_observed(r.result or {}, r.exception_info),
            )
        )
    return out


def _open_context(root: Path, cfg: ValidateConfig, docs_dir: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    write_context(cfg, root / "gx")
    ctx = gx.get_context(mode="file", project_root_dir=root)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.delete_data_docs_site("local_site")
    ctx.add_data_docs_site(
        "local_site",
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return ctx


def validate_frames(
    cfg: ValidateConfig,
    frames: dict[str, pd.DataFrame],
    docs_dir: Path,
    timings: dict[str, float] | None = None,
) -> list[Outcome]:
    """Run one checkpoint per area on its frame (the areas ``frames`` holds); build Data Docs into ``docs_dir``.

    ``timings`` (if given) receives seconds for ``gx_context``, ``checkpoints`` and ``data_docs``.
    """
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    if docs_dir.exists():
        shutil.rmtree(docs_dir)  # stale pages from an earlier run would mix into the index
    docs_dir.mkdir(parents=True)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="hypomimia-gx-") as tmp:
        ctx = _open_context(Path(tmp), cfg, docs_dir)
        t1 = time.perf_counter()
        for area in (a for a in AREAS if a in frames):  # an optional area (voice) only with its table
            result = ctx.checkpoints.get(area).run(batch_parameters={"dataframe": frames[area]})
            for suite_result in result.run_results.values():
                outcomes += _outcomes(area, suite_result)
        t2 = time.perf_counter()
        # Built once at the end: an UpdateDataDocsAction per checkpoint would rebuild the site per area.
        ctx.build_data_docs()
        t3 = time.perf_counter()
    timings.update(gx_context=round(t1 - t0, 3), checkpoints=round(t2 - t1, 3), data_docs=round(t3 - t2, 3))
    return outcomes
