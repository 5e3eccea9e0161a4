from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components import GPU_IMAGE, IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate_fit(
    evaluate_params: str,
    train_params: str,
    task: str,
    model: Input[Model],
    tubes: Input[Dataset],
    ingested: Input[Dataset],
    voice: Input[Dataset],
    run: Output[Dataset],
):
    """Fit one (setting, fold, seed) task of the evaluation (hypomimia.stages.evaluate.fit); the trained
    model is reused where its params, fold and seed are the task's. ``voice``: the voice stage's folder
    (the I3D recipe's voice stream, the ``voice`` model)."""
    from pathlib import Path

    from hypomimia.config.evaluate import EvaluateConfig
    from hypomimia.config.train import TrainConfig
    from hypomimia.stages import evaluate as stage

    stage.fit(
        stage.task_from_json(task),
        EvaluateConfig.model_validate_json(evaluate_params),
        TrainConfig.model_validate_json(train_params),
        Path(tubes.path),
        Path(ingested.path),
        Path(run.path).parent,
        donors=[Path(model.path)],
        into=Path(run.path),
        voice_dir=Path(voice.path),
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    evaluate_params: str,
    train_params: str,
    runs: Input[list[Dataset]],
    model: Input[Model],
    tubes: Input[Dataset],
    ingested: Input[Dataset],
    tracking_uri: str,
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> NamedTuple("EvaluateOutputs", blessed=bool):
    """Pool, compare, slice and report the fitted tasks; decide the blessing (hypomimia.stages.evaluate.gather).

    Returns ``blessed``; the pipeline gates promotion on it (``dsl.If``)."""
    from pathlib import Path

    from components.pipeline_io import publish_markdown, publish_metrics
    from hypomimia.config.evaluate import EvaluateConfig
    from hypomimia.config.train import TrainConfig
    from hypomimia.stages import evaluate as stage

    result = stage.gather(
        EvaluateConfig.model_validate_json(evaluate_params),
        TrainConfig.model_validate_json(train_params),
        Path(tubes.path),
        Path(ingested.path),
        [Path(r.path) for r in runs],
        Path(evaluation.path),
        model_dir=Path(model.path),
        tracking_uri=tracking_uri or None,
    )
    values = {f"{k}.subject_auroc": v for k, v in result.settings.items() if v == v}
    values["blessed"] = float(result.blessed)
    publish_metrics(metrics, values)
    publish_markdown(report, "evaluation", {**values, "decision": result.decision["reason"]})
    return (bool(result.blessed),)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(evaluation: Input[Dataset], tracking_uri: str):
    """Blessed: the challenger becomes champion, the old champion 'previous' (hypomimia.evaluation.registry)."""
    from pathlib import Path

    from hypomimia.evaluation import registry
    from hypomimia.learning import mlflow_runs

    if tracking_uri == "off":  # no registry in this run (local tests): nothing to promote
        print("tracking off: no registry to promote in")
        return
    c = registry.client(tracking_uri or mlflow_runs.default_tracking_uri())
    print(registry.promote_decision(c, Path(evaluation.path) / "blessing.json"))
