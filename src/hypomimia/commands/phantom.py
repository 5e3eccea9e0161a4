from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from hypomimia.config import ConfigError, load_params
from hypomimia.config.phantom import CueConfig, PhantomConfig
from hypomimia.errors import UserError

_CUES = tuple(CueConfig.model_fields)


def phantom(
    out: Annotated[Path, typer.Option(help="output folder (videos, manifest.csv, truth/)")] = Path(
        "data/phantom"
    ),
    params: Annotated[
        Path, typer.Option(help="params file; the options below override its phantom section")
    ] = Path("params.yaml"),
    subjects: Annotated[int | None, typer.Option(help="subjects (matched PD/control pairs)")] = None,
    videos_per_subject: Annotated[int | None, typer.Option(help="clips per subject")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    duration: Annotated[float | None, typer.Option(help="clip length in seconds (3-10)")] = None,
    size: Annotated[int | None, typer.Option(help="frame side in pixels (256-480)")] = None,
    workers: Annotated[int | None, typer.Option(help="processes")] = None,
    dynamic_only: Annotated[
        bool | None, typer.Option("--dynamic-only/--natural", help="only timing differs between classes")
    ] = None,
    cue_region: Annotated[
        str | None,
        typer.Option(help="face | eyes | mouth: the only region where PD differs (explain's known answer)"),
    ] = None,
    cue: Annotated[
        list[str] | None, typer.Option(help="cue=on|off, e.g. --cue static=on --cue blink=off")
    ] = None,
) -> None:
    """Generate the phantom study: synthetic face videos of PD and control subjects with a known answer."""
    cfg = load_params(params).phantom
    given = {"subjects": subjects, "videos_per_subject": videos_per_subject, "seed": seed, "duration_s": duration,
             "size": size, "workers": workers, "dynamic_only": dynamic_only, "cue_region": cue_region}  # fmt: skip
    cfg = _override(cfg, {k: v for k, v in given.items() if v is not None} | _cues(cfg, cue))
    from hypomimia.stages.phantom import run  # heavy imports only when the command runs

    r = run(cfg, out)
    Console().print(f"[green]phantom[/green] {r.videos} videos of {r.subjects} subjects ({r.pd_subjects} PD, "
                    f"{r.control_subjects} control) in {r.seconds:.0f} s -> {r.manifest}")  # fmt: skip


def _override(cfg: PhantomConfig, overrides: dict) -> PhantomConfig:
    try:
        return PhantomConfig.model_validate(cfg.model_dump() | overrides)
    except ValidationError as e:
        lines = [f"phantom.{'.'.join(map(str, err['loc']))}: got {err.get('input')!r} -- {err['msg']}"
                 for err in e.errors(include_url=False)]  # fmt: skip
        raise ConfigError("command-line options", lines) from None


def _cues(cfg, specs: list[str] | None) -> dict:
    if not specs:
        return {}
    cues = cfg.cues.model_dump()
    for spec in specs:
        name, _, value = spec.partition("=")
        if name not in _CUES or value not in ("on", "off"):
            raise UserError(
                f"bad --cue {spec!r}", f"use NAME=on or NAME=off with NAME one of {', '.join(_CUES)}"
            )
        cues[name] = value == "on"
    return {"cues": cues}


def register(app: typer.Typer) -> None:
    app.command("phantom")(phantom)
