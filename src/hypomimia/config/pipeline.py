from typing import Annotated, Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section

# Kubernetes resource quantities ("8", "500m", "64G", "16Gi") and DNS-1123 names (PVCs, runtimes, namespaces).
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class TrainJobConfig(Section):
    """The Kubeflow Trainer v2 ``TrainJob`` the train task launches when ``train_launcher`` is ``trainjob``:
    ``nodes`` x ``gpus_per_node`` processes of ``hypomimia train`` under torchrun (docs/operations.md)."""

    runtime: str = Field(
        "torch-distributed",
        pattern=DNS_NAME,
        description="training runtime with the torch ML policy: a ClusterTrainingRuntime, or a TrainingRuntime "
        "of the same name in the namespace (which wins)",
    )
    nodes: int = Field(2, ge=1, le=256, description="training nodes (pods), one torchrun agent each")
    gpus_per_node: int = Field(1, ge=1, le=16, description="GPUs per node = torchrun processes per node")
    cpu_per_node: str = Field("8", pattern=QUANTITY, description="CPU request and limit of each node")
    memory_per_node: str = Field("64G", pattern=QUANTITY, description="memory request and limit of each node")
    namespace: str = Field(
        "",
        pattern=r"^$|" + DNS_NAME,
        description="namespace of the TrainJob; empty -> the pipeline pod's own namespace",
    )
    image: str = Field("", description="image of the nodes; empty -> pipeline.gpu_image")
    pvc: str = Field(
        "",
        pattern=r"^$|" + DNS_NAME,
        description="ReadWriteMany PVC in that namespace, mounted on the train task and every node: "
        "the staged tubes, the params and the model the job writes; required for trainjob",
    )
    mount_path: str = Field("/mnt/hypomimia", pattern=r"^/.+", description="where the PVC is mounted")
    shm_size: str = Field(
        "16Gi",
        pattern=QUANTITY,
        description="/dev/shm of each node (emptyDir, medium Memory) for the loaders",
    )
    timeout_s: int = Field(
        86400, ge=60, description="wait at most this long; also the job's activeDeadlineSeconds"
    )
    poll_s: int = Field(30, ge=1, le=3600, description="seconds between two status checks")
    keep: bool = Field(
        False,
        description="keep the TrainJob and its folder on the PVC after success (a failed one is always kept)",
    )

    @model_validator(mode="after")
    def _poll_inside_timeout(self):
        if self.poll_s >= self.timeout_s:
            raise ValueError(f"poll_s ({self.poll_s}) must be less than timeout_s ({self.timeout_s})")
        return self


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
    mlflow_secret_keys: list[Annotated[str, Field(pattern=ENV_NAME)]] = Field(
        default_factory=lambda: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        description="keys of mlflow_secret, each exported under the same name",
    )
    train_launcher: Literal["pod", "trainjob"] = Field(
        "pod",
        description="pod: train runs in the KFP task's own pod (one node); trainjob: the task launches a "
        "Kubeflow Trainer TrainJob (pipeline.trainjob: nodes x GPUs under torchrun) and hands its model on",
    )
    trainjob: TrainJobConfig = TrainJobConfig()

    @model_validator(mode="after")
    def _trainjob_needs_its_volume(self):
        if self.train_launcher == "trainjob" and not self.trainjob.pvc:
            raise ValueError(
                "train_launcher is trainjob but trainjob.pvc is empty: name a ReadWriteMany PVC that the "
                "train task and every node mount (docs/operations.md, multi-node training)"
            )
        return self
