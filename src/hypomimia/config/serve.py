from pydantic import Field

from hypomimia.config.base import Section


class ServeConfig(Section):
    """The model endpoint (`hypomimia serve`, serving/service.py): which model, limits, refusals."""

    model: str = Field(
        "models:/hypomimia-i3d@champion",
        description="models:/NAME@ALIAS, models:/NAME/VERSION, or a local folder with model.pt + metadata.json; "
        "while the alias does not exist yet the newest version is served (and /model says so)",
    )
    tracking_uri: str | None = Field(
        None, description="MLflow store (None: MLFLOW_TRACKING_URI or work/mlflow)"
    )
    api_key_env: str = Field(
        "HYPOMIMIA_API_KEY", description="env var holding the API key(s), comma-separated"
    )
    api_key_file: str | None = Field(None, description="file with one API key per line (read at start-up)")
    max_upload_mb: float = Field(50.0, gt=0.0, le=4096.0, description="bigger request bodies get 413")
    max_duration_s: float = Field(30.0, gt=0.0, description="longer videos are refused (422 too_long)")
    min_duration_s: float = Field(1.0, ge=0.0, description="shorter videos are refused (422 too_short)")
    max_pixels: int = Field(4096 * 2160, ge=64 * 64, description="larger frames are refused (422 too_large)")
    min_side: int = Field(128, ge=16, description="a smaller shorter side is refused (422 too_small)")
    min_frames: int = Field(8, ge=1, description="fewer decodable frames are refused (422 too_few_frames)")
    timeout_s: float = Field(60.0, gt=0.0, description="requests still running after this get 504")
    max_concurrency: int = Field(16, ge=1, description="requests in flight beyond this get 429 at once")
    max_batch_size: int = Field(
        16, ge=1, le=256, description="clips per model forward (adaptive batching); 1 = no batching"
    )
    max_latency_ms: int = Field(30_000, ge=100, description="batching queue bound (keep well above p99)")
    threads: int = Field(2, ge=1, le=64, description="torch threads of the model service")
    prediction_log: str = Field("work/predictions", description="prediction log folder (daily JSONL)")
