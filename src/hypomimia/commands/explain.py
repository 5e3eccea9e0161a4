from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia.config import load_params


def explain(
    model: Annotated[Path, typer.Option(help="train output folder (model.pt, metadata.json)")] = Path(
        "work/train"
    ),
    tubes: Annotated[Path, typer.Option(help="facetubes output folder")] = Path("work/facetubes"),
    ingest: Annotated[Path, typer.Option(help="ingest output folder (folds.parquet)")] = Path("work/ingest"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/explain"),
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow store; 'off' to skip [default: MLFLOW_TRACKING_URI or work/mlflow]"),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="MLflow run to log to [default: the model's run]")
    ] = None,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
) -> None:
    """Grad-CAM maps, attention per facial region (PD vs controls) and embedding plots of a trained model."""
    from hypomimia.stages.explain import run  # heavy imports only when the command runs

    r = run(load_params(params).explain, model, tubes, ingest, out, tracking_uri, run_id)
    shares = ", ".join(
        f"{g}: " + " ".join(f"{k} {v:.2f}" for k, v in s.items()) for g, s in r.region_shares.items()
    )
    p, sil = r.entropy_test["p_value"], r.silhouette_video
    Console().print(
        f"explain: {r.n_videos} videos embedded, {r.n_attributed} attributed ({r.split}, {r.headline_map}); "
        f"region shares {shares}; entropy PD vs control p={p if p is None else f'{p:.3g}'}; "
        f"silhouette {sil if sil is None else f'{sil:.2f}'}; {len(r.figures)} figures in {out}"
        + (f"; logged to MLflow run {r.run_id}" if r.run_id else ""),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
