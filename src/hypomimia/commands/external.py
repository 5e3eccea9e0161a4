"""`hypomimia external`: trained models on a labelled cohort they never saw (external validation)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def external(
    models: Annotated[
        list[Path], typer.Argument(help="train output folders (metadata.json + model.pt), e.g. work/train")
    ],
    ingest: Annotated[Path, typer.Option(help="the cohort's ingest output folder")] = Path(
        "work/external/ingest"
    ),
    tubes: Annotated[Path, typer.Option(help="the cohort's facetubes output folder")] = Path(
        "work/external/facetubes"
    ),
    voice: Annotated[
        Path | None, typer.Option(help="the cohort's voice output folder (a model with the voice reads it)")
    ] = None,
    evaluation: Annotated[
        Path | None,
        typer.Option(help="evaluate's evaluation.json: each model's seed's subject calibration map"),
    ] = None,
    calibration_cohort: Annotated[
        Path | None,
        typer.Option(
            help="another cohort's 'hypomimia external' output folder, scored by the same models: each model's "
            "subject map is fitted there and applied here"
        ),
    ] = None,
    method: Annotated[
        str, typer.Option(help="the calibration cohort's map: platt (slope + intercept) or temperature")
    ] = "platt",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/external/report"),
    params: Annotated[Path, typer.Option(help="params file (evaluate.bootstrap, evaluate.seed)")] = Path(
        "params.yaml"
    ),
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 2,
) -> None:
    """Score a labelled cohort with trained models as /predict does; subject AUROC and calibration."""
    from hypomimia.config import load_params
    from hypomimia.errors import UserError
    from hypomimia.stages.external import run

    missing = [str(m) for m in models if not (Path(m) / "metadata.json").is_file()]
    if missing:
        raise UserError(
            f"no trained model (metadata.json) in {', '.join(missing)}",
            "pass 'hypomimia train' output folders",
        )
    if method not in ("platt", "temperature"):
        raise UserError(f"unknown --method {method!r}", "use platt or temperature")
    p = load_params(params)
    r = run(models, ingest, tubes, out, evaluation=evaluation, voice_dir=voice,
            calibration_cohort=calibration_cohort, method=method,
            bootstrap=p.evaluate.bootstrap, seed=p.evaluate.seed, threads=threads)  # fmt: skip
    console = Console()
    console.print((r.out_dir / "external.md").read_text(), markup=False, highlight=False)
    console.print(f"report: {r.out_dir / 'external.json'}  ({r.seconds:.0f} s)")


def register(app: typer.Typer) -> None:
    app.command("external")(external)
