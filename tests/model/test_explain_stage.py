"""The explain stage end to end: a (small, untrained) I3D, tubes with landmarks, MLflow logging.

What the maps show is tested in test_explain_mouth.py; this checks the stage's contract: the
held-out selection, the outputs named in docs/explain.md, shares that are distributions, figures
that exist, and the artifacts and metrics in the model's MLflow run.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from hypomimia.config.explain import ExplainConfig
from hypomimia.config.train import ModelConfig
from hypomimia.errors import UserError
from hypomimia.explain.regions import REGION_NAMES
from hypomimia.models import build_model, save_model
from hypomimia.stages.explain import run
from tests.helpers_explain import write_tubes

FRAMES = 8
pytestmark = pytest.mark.slow  # one stage run, ~25-50 s on a loaded 2-core machine


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    table = write_tubes(root / "facetubes", subjects=6, videos_per_subject=2, frames=20)
    mc = ModelConfig(width=0.125, frames=FRAMES, size=112, dropout=0.0)
    torch.manual_seed(0)
    model_dir = root / "train"
    save_model(model_dir / "model.pt", build_model(mc), mc, extra={"stride": 2})
    (model_dir / "metadata.json").write_text(json.dumps({"name": "hypomimia-i3d", "version": "0.1.0"}))
    # The model's held-out fold: subjects s00 (control) and s01 (PD).
    test = table[table.subject_id.isin(["s00", "s01"])]
    pd.DataFrame({"video_id": test.video_id, "split": "test"}).to_parquet(model_dir / "predictions.parquet")
    return root, table


@pytest.fixture(scope="module")
def result(inputs):
    import mlflow

    root, _ = inputs
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("explain-test", artifact_location=(root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as r:
        run_id = r.info.run_id
    cfg = ExplainConfig(clips_per_video=2, render_per_group=1, tsne_perplexity=3.0, threads=1)
    res = run(cfg, root / "train", root / "facetubes", root / "ingest", root / "explain", uri, run_id)
    return res, root, uri


def test_attributes_only_the_heldout_videos_and_embeds_all(result, inputs):
    res, root, _ = result
    _, table = inputs
    assert res.split == "heldout"
    assert res.n_videos == len(table) == 12
    assert res.n_attributed == 4
    regions = pd.read_csv(root / "explain" / "regions.csv")
    assert set(regions.subject_id) == {"s00", "s01"}
    assert set(regions["map"]) == {"gradcam@blocks", "gradcam++@blocks"}  # "last" is I3D's final feature map


def test_summary_holds_distributions_and_statistics(result):
    res, root, _ = result
    summary = json.loads((root / "explain" / "explain.json").read_text())
    for key in summary["maps"]:
        for group in summary["attention"][key]["groups"].values():
            assert sum(group["shares"].values()) == pytest.approx(1.0, abs=1e-6)
            assert sum(group["area_shares"].values()) == pytest.approx(1.0, abs=1e-6)
            assert 0.0 <= group["entropy_mean"] <= 1.0
        assert summary["attention"][key]["entropy_test"]["test"] == "mann-whitney-u two-sided"
    motion = summary["motion_by_region"]
    # Model-free check of the synthetic data: only the mouth moves, so it differs most between groups.
    assert max(motion["relative_difference"], key=motion["relative_difference"].get) == "mouth"
    assert summary["concentration_check"]["most_different_region"] == "mouth"
    video = summary["embeddings"]["video"]
    assert -1.0 <= video["silhouette_label"] <= 1.0
    assert video["spearman_updrs_pc1"]["n"] == 12
    assert summary["embeddings"]["subject"]["n"] == 6
    coords = pd.read_csv(root / "explain" / "embeddings.csv")
    assert coords[["pc1", "pc2", "tsne1", "tsne2"]].notna().all().all()
    assert set(res.region_shares) == {"control", "pd"}
    assert set(res.region_shares["pd"]) == set(REGION_NAMES)


def test_figures_are_written(result):
    res, root, _ = result
    names = {p.name for p in res.figures}
    assert "embeddings.png" in names
    assert any(n.startswith("overlay_pd_") and n.endswith(".gif") for n in names)
    assert any(n.startswith("strip_control_") for n in names)
    assert any(n.startswith("regions_gradcam") for n in names)
    for p in res.figures:
        assert p.is_file() and p.stat().st_size > 1000
    from PIL import Image

    gif = next(p for p in res.figures if p.suffix == ".gif")
    with Image.open(gif) as im:
        assert im.n_frames == FRAMES
        assert im.size == (224, 224)  # 112 px tube, shown 2x


def test_everything_is_logged_to_the_model_run(result):
    from mlflow import MlflowClient

    res, _, uri = result
    client = MlflowClient(uri)
    logged = {f.path for f in client.list_artifacts(res.run_id, "explain")}
    assert {"explain/explain.json", "explain/regions.csv", "explain/figures"} <= logged
    metrics = client.get_run(res.run_id).data.metrics
    assert "explain.silhouette_video" in metrics


def test_a_missing_layer_is_a_user_error(inputs, tmp_path):
    root, _ = inputs
    cfg = ExplainConfig(layers=["blocks.no_such_layer"], threads=1)
    with pytest.raises(UserError, match="no_such_layer"):
        run(cfg, root / "train", root / "facetubes", root / "ingest", tmp_path, "off")


def test_missing_tubes_is_a_user_error(inputs, tmp_path):
    root, _ = inputs
    with pytest.raises(UserError, match=r"tubes\.parquet"):
        run(ExplainConfig(), root / "train", tmp_path, root / "ingest", tmp_path / "out", "off")
