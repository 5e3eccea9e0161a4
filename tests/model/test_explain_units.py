"""Unit tests of the explanation pieces: maps, region shares, entropy and its test, embeddings, rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hypomimia.explain import embeddings as emb
from hypomimia.explain import render
from hypomimia.explain.gradcam import (
    activation_maps,
    class_score,
    feature_layer,
    normalize_maps,
    resolve_layers,
)
from hypomimia.explain.occlusion import occlusion_maps
from hypomimia.explain.regions import (
    OUTSIDE,
    REGION_NAMES,
    compare_entropy,
    entropy,
    label_image,
    region_mass,
)
from tests.helpers_explain import TinyVideoNet, face_tube_still


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return TinyVideoNet().eval()


@pytest.fixture(scope="module")
def clips():
    return torch.rand(3, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))


# --- Grad-CAM ------------------------------------------------------------------------------------


def test_maps_have_the_clip_shape_and_are_normalized(net, clips):
    maps, logits = activation_maps(net, clips, methods=["gradcam", "gradcam++"])
    assert logits.shape == (3, 2)
    for m in maps["features"].values():
        assert m.shape == (3, 8, 32, 32)  # upsampled from 8x8 in space, in time too
        assert m.min() >= 0
        assert torch.allclose(m.flatten(1).amax(1), torch.ones(3))


def test_maps_of_several_layers_in_one_pass(net, clips):
    maps, _ = activation_maps(net, clips, layers=["features.2", "last"], methods=["gradcam"])
    assert list(maps) == ["features.2", "features"]
    assert maps["features.2"]["gradcam"].shape == (3, 8, 32, 32)


def test_maps_are_deterministic(net, clips):
    a, _ = activation_maps(net, clips, methods=["gradcam++"])
    b, _ = activation_maps(net, clips, methods=["gradcam++"])
    assert torch.equal(a["features"]["gradcam++"], b["features"]["gradcam++"])


def test_explaining_the_other_class_gives_another_map(net, clips):
    a, _ = activation_maps(net, clips, target=torch.zeros(3, dtype=torch.long))
    b, _ = activation_maps(net, clips, target=torch.ones(3, dtype=torch.long))
    assert not torch.allclose(a["features"]["gradcam"], b["features"]["gradcam"])


def test_last_layer_is_the_last_spatiotemporal_map(net, clips):
    assert feature_layer(net, clips) == "features"
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        resolve_layers(net, ["nope"], clips)


def test_a_2d_network_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 2))
    with pytest.raises(ValueError, match="N×C×T×H×W"):
        feature_layer(model, torch.rand(1, 3, 4, 8, 8))


def test_unknown_method_is_refused(net, clips):
    with pytest.raises(ValueError, match="unknown method"):
        activation_maps(net, clips, methods=["saliency"])


def test_class_score_is_the_log_odds_margin():
    logits = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    assert class_score(logits, torch.tensor([1, 1])).tolist() == [2.0, -3.0]
    assert class_score(logits, torch.tensor([0, 0])).tolist() == [-2.0, 3.0]
    assert class_score(torch.tensor([[0.5]]), torch.tensor([0])).tolist() == [-0.5]


def test_normalize_keeps_zero_maps_zero():
    m = normalize_maps(torch.stack([torch.zeros(2, 3, 3), torch.full((2, 3, 3), 4.0)]))
    assert m[0].abs().sum() == 0
    assert torch.allclose(m[1], torch.ones(2, 3, 3))


def test_occlusion_finds_the_only_pixels_the_model_reads():
    class WatchesCorner(nn.Module):
        def forward(self, x):
            s = x[:, :, :, :8, :8].mean(dim=(1, 2, 3, 4))
            return torch.stack([-s, s], 1)

    x = torch.zeros(1, 3, 4, 32, 32)
    x[:, :, :, :8, :8] = 1.0
    maps, _ = occlusion_maps(WatchesCorner(), x, patch=8, stride=8)
    assert maps.shape == (1, 4, 32, 32)
    assert maps[0, :, :8, :8].min() == 1.0
    assert maps[0, :, 8:, 8:].max() == 0.0


# --- regions -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labels():
    _, lm = face_tube_still(64)
    return label_image(lm, (64, 64))


def test_label_image_covers_every_region(labels):
    present = set(np.unique(labels).tolist())
    assert present == {OUTSIDE, *range(len(REGION_NAMES))}


def test_shares_are_a_distribution_and_a_mouth_only_map_is_all_mouth(labels):
    rng = np.random.default_rng(0)
    lab = np.repeat(labels[None], 3, 0)
    mass = region_mass(rng.random(lab.shape), lab)
    assert mass.shares.sum() == pytest.approx(1.0)
    assert mass.area_shares.sum() == pytest.approx(1.0)
    assert 0 < mass.outside_share < 1
    mouth = REGION_NAMES.index("mouth")
    only_mouth = region_mass((lab == mouth).astype(float), lab)
    assert only_mouth.shares[mouth] == pytest.approx(1.0)
    assert only_mouth.lift[mouth] == pytest.approx(1 / only_mouth.area_shares[mouth])
    assert entropy(only_mouth.shares) == 0.0
    uniform = region_mass((lab >= 0).astype(float), lab)
    np.testing.assert_allclose(uniform.lift, 1.0)  # a flat map over the face: every region at its area


def test_region_mass_adds_over_clips(labels):
    lab = labels[None]
    a, b = region_mass(np.ones(lab.shape), lab), region_mass(2 * np.ones(lab.shape), lab)
    total = a + b
    np.testing.assert_allclose(total.mass, 3 * a.mass)
    np.testing.assert_allclose(total.shares, a.shares)


def test_shape_mismatch_is_refused(labels):
    with pytest.raises(ValueError, match="same"):
        region_mass(np.ones((2, 10, 10)), labels[None])


def test_entropy_bounds():
    assert entropy(np.array([1, 0, 0, 0, 0, 0])) == 0.0
    assert entropy(np.ones(6)) == pytest.approx(1.0)
    assert 0 < entropy(np.array([0.5, 0.5, 0, 0, 0, 0])) < 1
    assert entropy(np.zeros(6)) == 0.0


def test_entropy_comparison_detects_a_planted_difference():
    rng = np.random.default_rng(0)
    pd_focused, control_broad = rng.uniform(0.3, 0.6, 20), rng.uniform(0.6, 0.9, 20)
    res = compare_entropy(pd_focused.tolist(), control_broad.tolist())
    assert res["p_value"] < 1e-4
    assert res["effect_size_rank_biserial"] < -0.8  # PD lower
    same = compare_entropy(rng.uniform(0, 1, 20).tolist(), rng.uniform(0, 1, 20).tolist())
    assert same["p_value"] > 0.01
    assert compare_entropy([0.5], [])["p_value"] is None


# --- embeddings ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    """40 subjects: PD shifted along 3 axes in proportion to severity, plus 13 noise dimensions."""
    rng = np.random.default_rng(0)
    updrs = np.r_[np.zeros(20), rng.integers(1, 5, 20)].astype(float)
    is_pd = updrs > 0
    x = rng.normal(0, 1, (40, 16))
    x[:, :3] += 1.5 * updrs[:, None]
    return x, is_pd, updrs, np.array([f"s{i}" for i in range(40)])


def test_planted_embedding_separates_and_follows_severity(planted):
    x, is_pd, updrs, groups = planted
    s = emb.embedding_summary(x, is_pd, updrs, groups, seed=0)
    assert s["silhouette_label"] > 0.1
    assert s["spearman_updrs_pc1"]["rho"] > 0.7
    assert s["spearman_updrs_pc1"]["p_value"] < 1e-5
    assert s["spearman_updrs_lda_oof"]["rho"] > 0.5


def test_random_embedding_shows_no_structure(planted):
    x, is_pd, updrs, groups = planted
    noise = np.random.default_rng(1).normal(0, 1, x.shape)
    s = emb.embedding_summary(noise, is_pd, updrs, groups, seed=0)
    assert abs(s["silhouette_label"]) < 0.1
    assert s["spearman_updrs_pc1"]["p_value"] > 0.01


def test_small_sets_degrade_gracefully():
    x = np.random.default_rng(0).normal(size=(3, 5))
    assert emb.tsne_2d(x, 30.0) is None
    assert emb.silhouette(x, np.array([0, 0, 0])) is None
    assert emb.spearman(np.arange(3.0), np.array([np.nan, np.nan, 1.0]))["rho"] is None
    assert emb.lda_projection_oof(x, np.array([0, 1, 0]), np.array(["a", "b", "c"])) is None
    coords, var = emb.pca_2d(x)
    assert coords.shape == (3, 2) and len(var) == 2


def test_tsne_runs_with_a_clipped_perplexity(planted):
    x, *_ = planted
    xy = emb.tsne_2d(x[:10], perplexity=30.0, seed=0)
    assert xy.shape == (10, 2) and np.isfinite(xy).all()


# --- rendering -----------------------------------------------------------------------------------


def test_overlay_and_gif(tmp_path):
    from PIL import Image

    frames = np.full((5, 16, 16, 3), 100, np.uint8)
    frames[:, 15, 15] = np.arange(5)[:, None] * 10  # PIL merges identical frames of a GIF
    cam = np.zeros((5, 16, 16))
    cam[:, :4, :4] = 1.0
    over = render.overlay(frames, cam, scale=2)
    assert over.shape == (5, 32, 32, 3)
    assert (over[:, 16:30, 16:30] == 100).all()  # no activation: the face stays as it was
    assert not (over[:, :8, :8] == 100).all()
    path = render.write_overlay(tmp_path / "o.gif", frames, cam, fps=5)
    with Image.open(path) as im:
        assert im.n_frames == 5
    strip = render.frame_strip(tmp_path / "s.png", frames, {"gradcam": cam}, "title")
    with Image.open(strip) as im:
        assert im.size[1] > 2 * 16


def test_overlay_mp4(tmp_path):
    frames = np.full((4, 16, 16, 3), 100, np.uint8)
    path = render.write_overlay(tmp_path / "o.mp4", frames, np.zeros((4, 16, 16)), fps=5)
    assert path.stat().st_size > 0


def test_region_lift_ci_finds_the_planted_region_and_resamples_subjects():
    from hypomimia.explain.regions import lift_with_ci

    rng = np.random.default_rng(0)
    area = np.array([0.08, 0.08, 0.1, 0.12, 0.22, 0.4])
    shares = np.tile(area, (30, 1))
    shares[:, REGION_NAMES.index("eyes")] *= 3.0  # three times a uniform map's share per pixel
    shares = np.abs(shares + rng.normal(0, 0.01, shares.shape))
    shares /= shares.sum(1, keepdims=True)
    out = lift_with_ci(shares, np.tile(area, (30, 1)), np.repeat(np.arange(6), 5), n_boot=300)
    eyes = out["lift"]["eyes"]
    assert out["top"] == "eyes" and out["top_share_of_boot"] == 1.0 and out["n_subjects"] == 6
    assert eyes["ci_low"] < eyes["lift"] < eyes["ci_high"] and eyes["ci_low"] > 2.0
    flat = lift_with_ci(np.tile(area, (30, 1)), np.tile(area, (30, 1)), np.repeat(np.arange(6), 5))
    assert all(v["lift"] == pytest.approx(1.0) for v in flat["lift"].values())
