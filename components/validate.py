from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate(
    params: str,
    ingested: Input[Dataset],
    tubes: Input[Dataset],
    voice: Input[Dataset],
    validation: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> NamedTuple("GateOutputs", success=bool):
    """The data-validation gate (hypomimia.stages.validate): expectations on videos, tubes, folds and voice.

    Returns ``success`` instead of raising, so the report is kept either way; the pipeline stops
    the DAG on it (``dsl.If``) and fails the run in the ``gate_failed`` branch.
    """
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.config.validate import ValidateConfig
    from hypomimia.stages import validate as stage

    out = Path(validation.path)
    cfg = ValidateConfig.model_validate_json(params)
    result = stage.run(
        cfg, Path(ingested.path), Path(tubes.path), out, raise_on_error=False, voice_dir=Path(voice.path)
    )
    publish_stage_report(out, "summary.json", metrics, report, "validation gate", result)
    return (bool(result.success),)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gate_failed(validation: Input[Dataset]):
    """Fail the run, naming the failed expectations: the gate said no, so nothing downstream runs."""
    from pathlib import Path

    from components.pipeline_io import gate_summary
    from hypomimia.errors import GateFailed

    raise GateFailed(
        f"validation gate failed: {gate_summary(Path(validation.path))}",
        "read the validation artifact (summary.json, data_docs/) and fix the input data or params",
    )
