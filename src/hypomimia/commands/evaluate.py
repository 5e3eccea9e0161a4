"""`hypomimia evaluate`: models and temporal settings on the same folds, paired tests, the blessing."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def evaluate(
    tubes: Annotated[Path, typer.Option(help="facetubes output folder")] = Path("work/facetubes"),
    ingest: Annotated[Path, typer.Option(help="ingest output folder (folds.parquet)")] = Path("work/ingest"),
    voice: Annotated[
        Path,
        typer.Option(help="voice output folder: the I3D recipe's voice stream and the 'voice' model read it"),
    ] = Path("work/voice"),
    model: Annotated[
        Path | None,
        typer.Option(help="train output folder: the challenger (its folds are checked, its run reused)"),
    ] = Path("work/train"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/evaluate"),
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
    reuse: Annotated[
        list[Path] | None,
        typer.Option(help="more train output folders to reuse where their params match a task"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a param, e.g. --set evaluate.folds=[0,1]")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URI; default $MLFLOW_TRACKING_URI or work/mlflow; 'off' = none")
    ] = None,
) -> None:
    """Compare models and frame counts on the same subject-grouped folds; decide the blessing."""
    from hypomimia.config import load_params
    from hypomimia.pipeline_runner import apply_overrides
    from hypomimia.stages.evaluate import run

    p = load_params(params)
    if set_:
        p = apply_overrides(p, set_)
    model_dir = model if model is not None and (model / "metadata.json").is_file() else None
    if model is not None and model_dir is None and model != Path("work/train"):
        from hypomimia.errors import UserError

        raise UserError(
            f"{model} holds no trained model (metadata.json)", "pass a 'hypomimia train' output folder"
        )
    r = run(
        p.evaluate,
        p.train,
        tubes,
        ingest,
        out,
        model_dir=model_dir,
        reuse=reuse or [],
        tracking_uri=tracking_uri,
        voice_dir=voice,
    )
    console = Console()
    ev_md = r.report_path.read_text().split("## Models", 1)[1].split("\n## ", 1)[0]
    console.print(ev_md.strip(), markup=False, highlight=False)
    colour = "green" if r.blessed else "yellow"
    console.print(f"blessing: [{colour}]{r.decision['reason']}[/{colour}]", highlight=False)
    console.print(f"report: {r.report_path}  decision: {r.blessing_path}  ({r.seconds:.0f} s)")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
