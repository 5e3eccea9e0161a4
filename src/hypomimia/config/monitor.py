from typing import Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section


class MonitorConfig(Section):
    """Drift monitoring (hypomimia monitor) and patient courses (hypomimia monitor patients); docs/monitoring.md."""

    window_days: float = Field(
        7.0, gt=0.0, description="prediction-log window: the last N days before --until"
    )
    min_window: int = Field(
        20,
        ge=5,
        description="fewer submitted videos in a window (quarantined and face-lost ones count) -> no decision "
        "(status too_small)",
    )
    max_lost_share: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="a window that loses more than this share of its submitted videos (ingest quarantine or "
        "no face) is flagged (driver lost_videos), whatever the Fisher tests say",
    )
    alpha: float = Field(
        0.05,
        gt=0.0,
        lt=0.5,
        description="false-alarm budget per window, split (Bonferroni) over every drift test of the window",
    )
    retrain_columns: int = Field(
        2,
        ge=1,
        description="drifted quality columns that mean retrain; fewer (and model outputs steady) -> warn",
    )
    embedding_method: Literal["mmd", "model"] = Field(
        "mmd", description="embedding drift: MMD with a bootstrap null, or a domain classifier (ROC AUC)"
    )
    max_reference: int = Field(
        1000,
        ge=20,
        description="reference videos for quality features (a seeded sample of whole subjects above this)",
    )
    max_scored_reference: int = Field(
        1000,
        ge=4,
        description="held-out reference videos scored by the model (a seeded sample of whole subjects above this)",
    )
    audio_min_subjects: int = Field(
        5,
        ge=2,
        description="fewer subjects with audio in the window or the reference -> the audio tests (loudness, "
        "SNR, bandwidth, clipping, sample rate) are skipped with the reason, not failed; fewer with a voice "
        "P(PD) -> the voice model's outputs (p_pd_voice) likewise",
    )
    seed: int = Field(0, ge=0, description="seed of reference sampling and bootstrap nulls")
    # Patient course
    course_min_clips: int = Field(
        2, ge=2, description="clips per session needed to estimate the score's test-retest spread"
    )
    course_z: float = Field(
        3.0, gt=0.0, description="change alert: consecutive sessions differ by more than z x the retest SD"
    )
    course_min_change: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="and by at least this much probability (ignore tiny but 'significant' moves)",
    )
    threads: int = Field(2, ge=1, le=64, description="torch threads when scoring tubes")
    # The scheduled monitor pipeline (pipeline/monitor_pipeline.py; hypomimia pipeline schedule --pipeline monitor)
    pipeline_name: str = Field(
        "hypomimia-monitor",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="KFP name of the monitor pipeline",
    )
    cron: str = Field(
        "0 0 3 * * 1", description="its schedule, KFP cron (6 fields, seconds first): Mondays 03:00"
    )
    reference_ingest_uri: str = Field(
        "s3://hypomimia/work/ingest", description="ingest folder of the training data (the reference)"
    )
    reference_tubes_uri: str = Field(
        "s3://hypomimia/work/facetubes", description="facetubes folder of the training data"
    )
    prediction_log_uri: str = Field(
        "s3://hypomimia/predictions", description="the serving prediction log folder (the current window)"
    )
    model_uri: str = Field(
        "", description="folder holding the served model.pt (+ metadata.json); empty -> quality features only"
    )
    kfp_host: str = Field(
        "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
        description="KFP API the retrain step submits the training pipeline to (in-cluster address)",
    )
    training_package: str = Field(
        "/opt/hypomimia/pipeline/hypomimia_pipeline.yaml",
        description="compiled training pipeline the retrain step submits (the image ships the checked-in one)",
    )

    @model_validator(mode="after")
    def _sane(self) -> "MonitorConfig":
        if self.min_window > self.max_reference:
            raise ValueError("min_window must not exceed max_reference")
        if len(self.cron.split()) != 6:
            raise ValueError(
                f"cron {self.cron!r} must have 6 fields, seconds first (KFP), e.g. '0 0 3 * * 1'"
            )
        return self
