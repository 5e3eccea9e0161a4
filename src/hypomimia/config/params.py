import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from hypomimia.config.base import ConfigError, Section
from hypomimia.config.evaluate import EvaluateConfig
from hypomimia.config.explain import ExplainConfig
from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.config.ingest import IngestConfig
from hypomimia.config.monitor import MonitorConfig
from hypomimia.config.phantom import PhantomConfig
from hypomimia.config.pipeline import PipelineConfig
from hypomimia.config.serve import ServeConfig
from hypomimia.config.train import TrainConfig
from hypomimia.config.validate import ValidateConfig
from hypomimia.config.voice import VoiceConfig


class Params(Section):
    """All of params.yaml. A missing section takes its defaults."""

    phantom: PhantomConfig = PhantomConfig()
    ingest: IngestConfig = IngestConfig()
    facetubes: FacetubesConfig = FacetubesConfig()
    voice: VoiceConfig = VoiceConfig()
    # `validate` would shadow BaseModel.validate, so the attribute is `validate_`; the YAML key stays `validate`.
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    train: TrainConfig = TrainConfig()
    explain: ExplainConfig = ExplainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    pipeline: PipelineConfig = PipelineConfig()
    serve: ServeConfig = ServeConfig()
    monitor: MonitorConfig = MonitorConfig()

    model_config = Section.model_config | {"populate_by_name": True}

    def to_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _format_error(err: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "<top level>"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key (remove it, or check its spelling against 'hypomimia config show')"
    value = err.get("input")
    shown = "<missing>" if err["type"] == "missing" else repr(value)
    return f"{path}: got {shown} -- {err['msg']}"


def params_errors(data: Any) -> list[str]:
    """One readable line per problem in an already-parsed params mapping (empty if valid)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [f"<top level>: expected a mapping of sections, got {type(data).__name__}"]
    try:
        Params.model_validate(data)
    except ValidationError as e:
        return [_format_error(err) for err in e.errors(include_url=False)]
    return []


DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path | None = "params.yaml") -> Params:
    """Read and validate params.yaml; raise ConfigError listing every problem. ``None`` -> defaults.

    The default name ``params.yaml`` missing from the working directory (a command run outside the
    repository) means the built-in defaults, said in a warning; any other missing file is an error.
    """
    if path is None:
        return Params()
    path = Path(path)
    if path == DEFAULT_PARAMS and not path.is_file():
        logging.getLogger(__name__).warning(
            "no params.yaml in %s: using the built-in defaults of every section (%s); "
            "'hypomimia config show' prints them, --params FILE picks a file",
            Path.cwd().name or "/",
            ", ".join(f.alias or name for name, f in Params.model_fields.items()),
        )
        return Params()
    if not path.is_file():
        raise ConfigError(str(path), ["file not found (run from the repository root or pass --params FILE)"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), [f"not valid YAML: {e}"]) from None
    errors = params_errors(data)
    if errors:
        raise ConfigError(str(path), errors)
    return Params.model_validate(data or {})
