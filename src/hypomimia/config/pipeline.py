from pydantic import Field

from hypomimia.config.base import Section


class PipelineConfig(Section):
    name: str = "hypomimia"
    image: str = Field("ghcr.io/hypomimia/hypomimia:0.1.0", description="CPU image of every stage")
    gpu_image: str = Field("ghcr.io/hypomimia/hypomimia-cuda:0.1.0", description="CUDA image of train")
    shards: int = Field(2, ge=1, le=256, description="face-tube fan-out width")
    gpu: bool = Field(True, description="request a GPU for train on the cluster")
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = Field(1, ge=1, le=16)
    train_cpu_request: str = "4"
    train_memory_request: str = "16G"
    stage_cpu_request: str = "2"
    stage_memory_request: str = "4G"
    mlflow_tracking_uri: str = "http://mlflow.mlflow.svc:5000"
