"""I3D: inflation fixed point, any clip length/size, heads, weight files, model.pt round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hypomimia.config.train import ModelConfig
from hypomimia.errors import UserError
from hypomimia.models import LABELS, build_model, clip_contract, load_model, save_model, to_channels_last
from hypomimia.models.i3d import I3D, frame_differences, i3d, inflate_2d_state_dict, load_init_weights
from hypomimia.models.inception2d import Inception2D
from hypomimia.models.metadata import build_metadata, verify_model


def _calibrated_bn(model: torch.nn.Module, image: torch.Tensor) -> None:
    """Real BN statistics (one train-mode pass) and random affine terms, so activations are far
    from zero and the equality test cannot pass because everything vanished."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass sets the statistics exactly
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2)
    model.train()
    with torch.no_grad():
        model(image)
    model.eval()


@pytest.mark.parametrize(("frames", "stream"), [(4, "rgb"), (6, "rgb"), (6, "rgb+diff")])
def test_still_video_gives_the_2d_activations(frames, stream):
    torch.manual_seed(0)
    image = torch.rand(2, 3, 64, 64)
    net2d = Inception2D(width=0.25, num_classes=2)
    _calibrated_bn(net2d, image)
    # float64 throughout (inflation included): the comparison is about the maths, not rounding
    net2d, image = net2d.double(), image.double()
    net3d = I3D(width=0.25, stream=stream).double().eval()
    net3d.load_state_dict(inflate_2d_state_dict(net2d.state_dict(), net3d))
    video = image.unsqueeze(2).repeat(1, 1, frames, 1, 1)
    with torch.no_grad():
        f2, f3 = net2d.features(image), net3d.features(video)
        assert f2.abs().mean() > 0.1  # activations are alive
        # every time step of every layer equals the image's activation
        assert torch.allclose(f3, f2.unsqueeze(2).expand_as(f3), atol=1e-9)
        assert torch.allclose(net3d.embed(video), net2d.embed(image), atol=1e-9)
        assert torch.allclose(net3d(video), net2d(image), atol=1e-9)
        # and a moving video does not (the test can fail)
        moving = video.clone()
        moving[:, :, 1:] = torch.roll(moving[:, :, 1:], shifts=5, dims=-1)
        assert not torch.allclose(net3d.features(moving), f3, atol=1e-3)


def test_frame_differences_see_motion_only():
    still = torch.rand(1, 3, 1, 8, 8).repeat(1, 1, 5, 1, 1)
    assert torch.equal(frame_differences(still), torch.zeros_like(still))
    ramp = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(1, 3, 5, 8, 8)  # brightens by 1 per frame
    d = frame_differences(ramp, eps=0.0)
    assert d.shape == ramp.shape and torch.all(d[:, :, 0] == 0)
    assert torch.allclose(d[:, :, 1:], torch.tensor(1 / 1.2))  # step 1 over a mean deviation of 1.2
    # in units of the clip's own range of motion: the same timing at 3x the amplitude looks the same,
    # the same amplitude twice as fast does not
    assert torch.allclose(frame_differences(3 * ramp, eps=0.0), d)
    wave = lambda f: torch.sin(f * torch.arange(32.0)).view(1, 1, 32, 1, 1).expand(1, 3, 32, 4, 4)  # noqa: E731
    slow, fast = frame_differences(wave(0.5), eps=0.0), frame_differences(wave(1.0), eps=0.0)
    assert fast.abs().mean() > 1.5 * slow.abs().mean()
    model = I3D(width=0.125, stream="rgb+diff").eval()
    assert model.stem[0].conv.in_channels == 6 and model(torch.rand(1, 3, 6, 48, 48)).shape == (1, 2)
    with pytest.raises(UserError, match="only built for arch i3d"):
        build_model(ModelConfig(arch="r3d18", stream="rgb+diff"))


@pytest.mark.parametrize(("frames", "size"), [(4, 112), (14, 112), (64, 112), (14, 224), (5, 48)])
def test_any_clip_length_and_size(frames, size):
    model = i3d(width=0.125, num_classes=2).eval()
    with torch.no_grad():
        x = torch.rand(1, 3, frames, size, size)
        out = model.forward_all(x)
    assert out["logits"].shape == (1, 2)
    assert out["embedding"].shape == (1, model.embed_dim)
    assert model.embed(x).shape == (1, model.embed_dim)


def test_width_one_is_the_paper_size():
    n = sum(p.numel() for p in I3D(width=1.0, num_classes=2).parameters())
    assert 11.5e6 < n < 13e6  # ~12 M parameters with a 2-class head (I3D paper)
    assert I3D(width=1.0).embed_dim == 1024


@pytest.mark.parametrize(("head", "n"), [("regression", 1), ("ordinal", 4)])
def test_severity_head_shares_the_trunk(head, n):
    model = i3d(width=0.125, severity_head=head).eval()
    out = model.forward_all(torch.rand(2, 3, 4, 32, 32))
    assert out["severity"].shape == (2, n) and out["logits"].shape == (2, 2)
    assert "severity" not in i3d(width=0.125).forward_all(torch.rand(1, 3, 4, 32, 32))


def test_init_from_2d_and_3d_files(tmp_path):
    net2d = Inception2D(width=0.125, num_classes=1000)  # ImageNet head: dropped, trunk inflated
    torch.save(net2d.state_dict(), tmp_path / "inception_v1_2d.pt")
    model = i3d(width=0.125, weights=tmp_path / "inception_v1_2d.pt")
    w2, w3 = net2d.state_dict()["stem.0.conv.weight"], model.state_dict()["stem.0.conv.weight"]
    assert w3.shape[2] == 7 and torch.allclose(w3.sum(2), w2, atol=1e-6)

    torch.save({"state_dict": model.state_dict()}, tmp_path / "i3d_3d.pt")
    again = i3d(width=0.125, num_classes=2)
    report = load_init_weights(again, tmp_path / "i3d_3d.pt")
    assert report["missing"] == []
    assert torch.equal(
        again.state_dict()["blocks.mixed_5c.branch1.1.conv.weight"],
        model.state_dict()["blocks.mixed_5c.branch1.1.conv.weight"],
    )


def test_init_shape_mismatch_is_a_clear_error(tmp_path):
    torch.save(I3D(width=0.25).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(UserError, match=r"stem\.0\.conv\.weight.*shape"):
        i3d(width=0.125, weights=tmp_path / "wide.pt")
    with pytest.raises(UserError, match="not found"):
        i3d(width=0.125, weights=tmp_path / "missing.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="no tensor names"):
        i3d(width=0.125, weights=tmp_path / "other.pt")


def test_model_file_round_trip_and_metadata_contract(tmp_path):
    cfg = ModelConfig(width=0.125, frames=6, size=112, severity_head="ordinal")
    model = build_model(cfg).eval()
    path = save_model(tmp_path / "model.pt", model, cfg, extra={"temperature": 1.3})
    loaded = load_model(path)
    x = torch.rand(1, 3, 6, 112, 112)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), model(x))
    assert loaded.labels == LABELS and loaded.extra["temperature"] == 1.3
    meta = build_metadata(
        model_config=cfg.model_dump(), clip=clip_contract(cfg, fps=25.0), labels=LABELS, metrics={}, data={}
    )
    verify_model(loaded.model, meta)
    assert "not diagnosis" in meta["intended_use"] and meta["version"] in meta["changelog"]
    meta["labels"] = ["a", "b", "c"]
    with pytest.raises(ValueError, match="does not match"):
        verify_model(loaded.model, meta)
    (tmp_path / "junk.pt").write_bytes(b"nope")
    with pytest.raises(UserError):
        load_model(tmp_path / "junk.pt")


@pytest.mark.parametrize("arch", ["i3d", "r3d18", "resnet2d50"])
def test_every_arch_takes_a_channels_last_step(arch):
    """train converts every network to channels-last (train.channels_last: true): the 2D ResNet-50's
    4-D weights once made that conversion raise, so the evaluation could not train its baseline."""
    model = to_channels_last(build_model(ModelConfig(arch=arch, frames=4, width=0.25)))
    convs = [p for p in model.parameters() if p.dim() >= 4]
    assert convs and all(
        p.is_contiguous(memory_format=torch.channels_last if p.dim() == 4 else torch.channels_last_3d)
        for p in convs
    )
    x = torch.rand(2, 3, 4, 32, 32).contiguous(memory_format=torch.channels_last_3d)
    loss = nn.functional.cross_entropy(model.forward_all(x)["logits"], torch.tensor([0, 1]))
    loss.backward()
    assert all(p.grad is not None for p in convs)


@pytest.mark.parametrize("arch", ["r3d18", "resnet2d50"])
def test_baselines_share_the_interface(arch):
    model = build_model(ModelConfig(arch=arch, frames=4)).eval()
    with torch.no_grad():
        out = model.forward_all(torch.rand(1, 3, 4, 64, 64))
    assert out["logits"].shape == (1, 2) and out["embedding"].shape == (1, model.embed_dim)
