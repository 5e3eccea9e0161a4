from pydantic import Field

from hypomimia.config.base import Section


class PipelineConfig(Section):
    """How the DAG is laid out and what it asks the cluster for. Stage knobs live in their own sections."""

    name: str = Field("hypomimia", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="KFP pipeline name")
    image: str = Field(
        "ghcr.io/hypomimia/hypomimia:0.1.0",
        description="CPU image of every stage (Dockerfile); the one setting",
    )
    gpu_image: str = Field(
        "ghcr.io/hypomimia/hypomimia-cuda:0.1.0", description="CUDA image of train (Dockerfile.cuda)"
    )
    data_uri: str = Field(
        "",
        description="folder with manifest.csv + videos to import (s3://, gs://, minio://); empty -> phantom",
    )
    shards: int = Field(2, ge=1, le=256, description="face-tube fan-out width (dsl.ParallelFor)")
    gpu: bool = Field(True, description="request a GPU for train on the cluster (local runs never do)")
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = Field(1, ge=1, le=16)
    gpu_node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="node labels of the GPU node pool, e.g. cloud.google.com/gke-accelerator",
    )
    train_cpu_request: str = "4"
    train_memory_request: str = "16G"
    stage_cpu_request: str = "2"
    stage_memory_request: str = "4G"
    mlflow_tracking_uri: str = "http://mlflow.mlflow.svc:5000"
    mlflow_secret: str = Field(
        "",
        description="Kubernetes Secret whose keys (mlflow_secret_keys) become env vars of train; empty -> none",
    )
    mlflow_secret_keys: list[str] = Field(
        default_factory=lambda: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        description="keys of mlflow_secret, each exported under the same name",
    )
