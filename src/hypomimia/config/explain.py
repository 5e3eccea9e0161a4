from typing import Literal

from pydantic import Field

from hypomimia.config.base import Section

Method = Literal["gradcam", "gradcam++", "occlusion"]


class ExplainConfig(Section):
    """Activation maps, region attribution and embedding plots of a trained model (docs/explain.md)."""

    layers: list[str] = Field(
        default_factory=lambda: ["last"],
        min_length=1,
        description="module names (model.named_modules()) to explain; 'last' = the last spatio-temporal "
        "feature map. All get maps and region shares; the first is the headline",
    )
    methods: list[Method] = Field(
        default_factory=lambda: ["gradcam", "gradcam++"], min_length=1, description="map methods to compute"
    )
    target: Literal["predicted", "label"] = Field(
        "predicted", description="class whose score is explained: the model's prediction or the true label"
    )
    split: Literal["heldout", "all"] = Field(
        "heldout", description="attribute the model's held-out fold only (honest) or every video"
    )
    clips_per_video: int = Field(
        4, ge=1, le=64, description="evenly spaced clips per video (maps and embeddings)"
    )
    max_videos: int = Field(200, ge=2, description="at most this many videos get maps and region shares")
    render_per_group: int = Field(2, ge=0, le=50, description="overlay videos/strips rendered per label")
    render_format: Literal["gif", "mp4"] = "gif"
    occlusion_patch: int = Field(16, ge=4, le=112, description="side of the occluding cube in pixels")
    tsne_perplexity: float = Field(15.0, gt=1.0, le=100.0, description="clipped to (n-1)/3 on small sets")
    seed: int = Field(0, ge=0)
    threads: int = Field(2, ge=1, le=256, description="torch intra-op threads on CPU")
