"""The endpoint's settings: params.yaml's ``serve`` section, then ``HYPOMIMIA_SERVE_*`` environment
overrides (what a container or ``hypomimia serve`` sets), validated once by :class:`ServeConfig`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hypomimia.config.params import load_params
from hypomimia.config.serve import ServeConfig
from hypomimia.config.voice import VoiceConfig

# env var -> ServeConfig field (values are validated by pydantic like params.yaml's)
ENV_OVERRIDES = {
    "HYPOMIMIA_SERVE_MODEL": "model",
    "HYPOMIMIA_SERVE_TRACKING_URI": "tracking_uri",
    "HYPOMIMIA_SERVE_API_KEY_FILE": "api_key_file",
    "HYPOMIMIA_SERVE_MAX_UPLOAD_MB": "max_upload_mb",
    "HYPOMIMIA_SERVE_MAX_DURATION_S": "max_duration_s",
    "HYPOMIMIA_SERVE_TIMEOUT_S": "timeout_s",
    "HYPOMIMIA_SERVE_MAX_CONCURRENCY": "max_concurrency",
    "HYPOMIMIA_SERVE_MAX_BATCH_SIZE": "max_batch_size",
    "HYPOMIMIA_SERVE_THREADS": "threads",
    "HYPOMIMIA_PREDICTION_LOG": "prediction_log",
}


def serve_config(params_file: str | Path | None = None) -> ServeConfig:
    """``HYPOMIMIA_PARAMS`` (or ``params.yaml`` when present, else defaults) + env overrides."""
    path = params_file or os.environ.get("HYPOMIMIA_PARAMS")
    if path is None and Path("params.yaml").is_file():
        path = "params.yaml"
    base = load_params(path).serve if path else ServeConfig()
    changes = {field: os.environ[var] for var, field in ENV_OVERRIDES.items() if os.environ.get(var)}
    return ServeConfig.model_validate({**base.model_dump(), **changes})


def voice_config(params_file: str | Path | None = None) -> VoiceConfig:
    """The voice stage's params (params.yaml's ``voice`` section, as :func:`serve_config` finds the
    file): the endpoint measures an upload's sound as the stage measured the training clips'."""
    path = params_file or os.environ.get("HYPOMIMIA_PARAMS")
    if path is None and Path("params.yaml").is_file():
        path = "params.yaml"
    return load_params(path).voice if path else VoiceConfig()


def api_keys(cfg: ServeConfig) -> list[bytes]:
    """The accepted keys: comma-separated in env ``cfg.api_key_env`` plus one per line in
    ``cfg.api_key_file``. Empty -> every protected request is refused (fail closed)."""
    keys = [k.strip() for k in os.environ.get(cfg.api_key_env, "").split(",")]
    if cfg.api_key_file:
        try:
            keys += [line.strip() for line in Path(cfg.api_key_file).read_text().splitlines()]
        except OSError as e:  # unreadable file: no keys from it (fail closed)
            logging.getLogger(__name__).error(
                "API key file unreadable (%s): no keys from it", type(e).__name__
            )
    return [k.encode() for k in keys if k and not k.startswith("#")]
