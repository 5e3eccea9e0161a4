from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia.config import load_params


def train(
    tubes: Annotated[Path, typer.Option(help="facetubes output folder")] = Path("work/facetubes"),
    ingest: Annotated[Path, typer.Option(help="ingest output folder (folds.parquet)")] = Path("work/ingest"),
    voice: Annotated[
        Path,
        typer.Option(help="voice output folder (voice.parquet); read when train.voice_stream is enabled"),
    ] = Path("work/voice"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/train"),
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URI; default $MLFLOW_TRACKING_URI or work/mlflow; 'off' = none")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from out/checkpoints/last.pt if present")] = True,
    fold: Annotated[int | None, typer.Option(help="held-out test fold (overrides train.fold)")] = None,
) -> None:
    """Train the I3D on face tubes (one GPU, CPU, or DDP under torchrun), with its landmark and voice
    streams when enabled; log to MLflow."""
    from hypomimia.stages.train import run  # heavy imports only when the command runs

    cfg = load_params(params).train
    if fold is not None:
        cfg = cfg.model_copy(update={"fold": fold})
    r = run(cfg, tubes, ingest, out, tracking_uri=tracking_uri, resume=resume, voice_dir=voice)
    s = r.metrics["overall"]["subject"]
    lo, hi = s["auroc_ci95"]
    Console().print(
        f"test fold: subject AUROC [bold]{s['auroc']:.3f}[/bold] (95% CI {lo:.2f}-{hi:.2f}), "
        f"balanced accuracy {s['balanced_accuracy']:.3f}, {s['n']} subjects; best epoch {r.best_epoch}/{r.epochs_run}"
    )
    streams = r.metrics.get("streams") or {}
    if "voice_fusion" in streams:
        v, vf = streams["voice"], streams["voice_fusion"]
        auc = "n/a" if v["test_subject_auroc"] is None else f"{v['test_subject_auroc']:.3f}"
        Console().print(
            f"voice: subject AUROC {auc} on the {v['subjects']} test subjects with voice; "
            f"fused with the visual model by {vf['method'].replace('_', ' ')}"
        )
    elif "skipped" in streams.get("voice", {}):
        Console().print(f"voice: {streams['voice']['skipped']}")
    Console().print(f"model: {r.model_path}  metrics: {r.metrics_path}")
    if r.run_id:
        Console().print(
            f"MLflow run {r.run_id} in {r.tracking_uri} (make mlflow-ui -> http://127.0.0.1:5000)"
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
