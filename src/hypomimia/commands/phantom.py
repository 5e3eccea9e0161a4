from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from hypomimia.config import ConfigError, load_params
from hypomimia.config.phantom import CueConfig, PhantomConfig, VoiceCueConfig
from hypomimia.errors import UserError

_CUES = tuple(CueConfig.model_fields)
_VOICE_CUES = tuple(VoiceCueConfig.model_fields)


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
    audio_only: Annotated[
        bool | None, typer.Option("--audio-only", help="only the voice differs (twins with identical videos)")
    ] = None,
    video_only: Annotated[
        bool | None, typer.Option("--video-only", help="only the face differs (PD and control share a voice)")
    ] = None,
    cue: Annotated[
        list[str] | None, typer.Option(help="cue=on|off, e.g. --cue static=on --cue blink=off")
    ] = None,
    voice_cue: Annotated[
        list[str] | None,
        typer.Option(help="voice cue=on|off, e.g. --voice-cue rate=off --voice-cue loudness=off"),
    ] = None,
) -> None:
    """Generate the phantom study: synthetic face videos of PD and control subjects with a known answer."""
    cfg = load_params(params).phantom
    given = {"subjects": subjects, "videos_per_subject": videos_per_subject, "seed": seed, "duration_s": duration,
             "size": size, "workers": workers, "dynamic_only": dynamic_only, "cue_region": cue_region,
             "audio_only": audio_only, "video_only": video_only}  # fmt: skip
    cfg = _override(
        cfg, {k: v for k, v in given.items() if v is not None} | _cues(cfg, cue) | _voice(cfg, voice_cue)
    )
    from hypomimia.stages.phantom import run  # heavy imports only when the command runs

    r = run(cfg, out)
    Console().print(f"[green]phantom[/green] {r.videos} videos of {r.subjects} subjects ({r.pd_subjects} PD, "
                    f"{r.control_subjects} control) in {r.seconds:.0f} s -> {r.manifest}")  # fmt: skip


def _override(cfg: PhantomConfig, overrides: dict) -> PhantomConfig:
    try:
        return PhantomConfig.model_validate(cfg.model_dump() | overrides)
    except ValidationError as e:
        # A whole-section rule (several options that do not go together) names no field: no input to echo.
        lines = [f"phantom.{'.'.join(map(str, err['loc']))}: got {err.get('input')!r} -- {err['msg']}"
                 if err["loc"] else f"phantom: {err['msg']}" for err in e.errors(include_url=False)]  # fmt: skip
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


def _voice(cfg, specs: list[str] | None) -> dict:
    if not specs:
        return {}
    cues = cfg.voice.cues.model_dump()
    for spec in specs:
        name, _, value = spec.partition("=")
        if name not in _VOICE_CUES or value not in ("on", "off"):
            raise UserError(
                f"bad --voice-cue {spec!r}",
                f"use NAME=on or NAME=off with NAME one of {', '.join(_VOICE_CUES)}",
            )
        cues[name] = value == "on"
    return {"voice": cfg.voice.model_dump() | {"cues": cues}}


def register(app: typer.Typer) -> None:
    app.command("phantom")(phantom)
