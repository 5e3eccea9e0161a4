"""`hypomimia lineage` (the chain behind a prediction or model, and the models behind a video or
subject) and `hypomimia model-card` (the card generated from a model's artifacts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia.errors import UserError

_URI = Annotated[str | None, typer.Option(help="MLflow store [default: MLFLOW_TRACKING_URI or work/mlflow]")]


def lineage(
    ref: Annotated[
        str | None,
        typer.Argument(help="models:/NAME@ALIAS, models:/NAME/VERSION, a version, a run id, or a request id"),
    ] = None,
    video: Annotated[
        str | None, typer.Option(help="sha256 of a video: list the models trained on it")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="a subject id: list the models trained on it")] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="list the models trained on subjects/videos this manifest no longer lists"),
    ] = None,
    mark: Annotated[
        bool,
        typer.Option(help="with --manifest: tag each such registry version data.removed_subjects/videos"),
    ] = False,
    deletion_request: Annotated[
        str | None,
        typer.Option(help="with --video/--subject: record a deletion request (why) in the audit log"),
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for lineage.json + lineage.md")] = Path("work/lineage"),
    work: Annotated[
        Path, typer.Option(help="the pipeline's work folder (ingest, facetubes, validate)")
    ] = Path("work"),
    predictions: Annotated[Path | None, typer.Option(help="prediction log folder")] = None,
    tracking_uri: _URI = None,
) -> None:
    """From a served prediction or a model back to the exact video bytes; or from a video/subject to every model."""
    from hypomimia.lineage import audit, query

    out.mkdir(parents=True, exist_ok=True)
    console = Console(soft_wrap=True)
    if ref is not None:
        chain = query.lineage(ref, tracking_uri, predictions, work)
        (out / "lineage.json").write_text(json.dumps(chain, indent=2, default=str) + "\n", encoding="utf-8")
        (out / "lineage.md").write_text(query.render_markdown(chain), encoding="utf-8")
        console.print(query.summary(chain), markup=False, highlight=False)
        console.print(f"the whole chain: {out / 'lineage.md'} and {out / 'lineage.json'}", highlight=False)
        return
    if manifest is not None:
        hits = query.models_using_removed(manifest, tracking_uri, mark=mark)
        what = f"trained on data {manifest} no longer lists"
    elif video or subject:
        hits = query.models_using(video_sha256=video, subject_id=subject, tracking_uri=tracking_uri)
        what = f"trained on {'video ' + video if video else 'subject ' + str(subject)}"
    else:
        raise UserError("nothing to trace", "pass a REF, or --video SHA256, --subject ID or --manifest CSV")
    (out / "models_using.json").write_text(json.dumps(hits, indent=2) + "\n", encoding="utf-8")
    console.print(f"{len(hits)} registered model version(s) {what}:", highlight=False)
    for h in hits:
        extra = h.get("removed_subjects") or sorted({v["video_id"] for v in h.get("videos", [])})
        console.print(
            f"  {h['name']} v{h['version']} {h['aliases'] or ''} run {h['run_id']}: {extra}", highlight=False
        )
    if deletion_request:
        if not (video or subject):
            raise UserError(
                "a deletion request names a video or a subject", "add --video SHA256 or --subject ID"
            )
        entry = audit.record(
            "deletion_request",
            {
                "video_sha256": video,
                "subject": subject,
                "models": [f"{h['name']}/{h['version']}" for h in hits],
            },
            why=deletion_request,
            evidence=str(out / "models_using.json"),
        )
        console.print(f"audit: deletion request recorded (seq {entry['seq']})", highlight=False)


def model_card(
    model: Annotated[Path, typer.Option(help="train output folder (metadata.json, metrics.json)")] = Path(
        "work/train"
    ),
    evaluation: Annotated[
        Path | None, typer.Option(help="evaluation.json [default: in the model folder]")
    ] = None,
    explain: Annotated[Path | None, typer.Option(help="explain.json")] = Path("work/explain/explain.json"),
    out: Annotated[Path | None, typer.Option(help="output folder [default: MODEL/model_card]")] = None,
) -> None:
    """Generate the model card (Markdown + JSON) from the model's artifacts."""
    from hypomimia.lineage.model_card import build_model_card, write_model_card

    card = build_model_card(model, evaluation=evaluation, explain=explain)
    j, md = write_model_card(card, out or model / "model_card")
    Console().print(f"model card: {md} and {j}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
    app.command("model-card")(model_card)
