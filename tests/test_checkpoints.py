"""Checkpoint loaders: official-format pickles built here with fake NVIDIA modules (removed from
sys.modules before loading, so only the restricted unpickler can read them), refusal of unsafe
pickles, corrupt files, the rosinality conversion, load_into errors and safetensors."""
from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from portraitlib.nets.checkpoints import (CheckpointMismatchError, load_eg3d_pickle, load_eg3d_pth, load_into,
                                          load_safetensors, save_safetensors)
from portraitlib.nets.discriminators import Discriminator
from portraitlib.nets.stylegan2_official import load_stylegan2_pickle
from portraitlib.nets.rosinality import load_stylegan2_rosinality
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.unpickle import CheckpointError, ForbiddenGlobalError
from tests.official_format import Fakes, fake_from_module, module_state, write

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "eg3d_ffhq512-128_state_dict.json"
"""The official generator's names and shapes, from the study's shared specs beside the clone."""
@pytest.fixture
def fakes(tmp_path):
    f = Fakes(tmp_path / "EXECUTED")
    yield f
    assert not f.marker.exists(), f.marker.read_text()


def small_eg3d(fakes: Fakes):
    """A tiny TriPlaneGenerator-shaped object tree: backbone (persistent), decoder (plain OSGDecoder
    holding a real nn.Sequential with persistent FC layers and a real Softplus), renderer stand-ins."""
    fc = lambda o, i: fakes.persistent("FullyConnectedLayer", module_state(
        params={"weight": nn.Parameter(torch.randn(o, i)), "bias": nn.Parameter(torch.zeros(o))},
        weight_gain=np.float64(1 / np.sqrt(i)), activation="linear"))
    net = nn.Sequential()
    net._modules.update({"0": fc(8, 4), "1": nn.Softplus(), "2": fc(5, 8)})
    decoder = fakes.plain_module("OSGDecoder", module_state(modules={"net": net}, hidden_dim=8))
    mapping = fakes.persistent("MappingNetwork", module_state(buffers={"w_avg": torch.arange(4.0)},
                                                              modules={"fc0": fc(4, 4)}))
    b4 = fakes.persistent("SynthesisBlock", module_state(
        params={"const": nn.Parameter(torch.randn(4, 4, 4))},
        buffers={"resample_filter": torch.ones(4, 4), "scratch": torch.ones(3)}, non_persistent=["scratch"]))
    synthesis = fakes.persistent("SynthesisNetwork", module_state(modules={"b4": b4}))
    backbone = fakes.persistent("StyleGAN2Backbone", module_state(modules={"mapping": mapping, "synthesis": synthesis}))
    marcher = fakes.plain_module("MipRayMarcher2", module_state())
    renderer = fakes.plain_module("ImportanceRenderer", module_state(modules={"ray_marcher": marcher},
                                                                     plane_axes=torch.eye(3).expand(3, 3, 3)))
    sampler = fakes.plain_module("RaySampler", module_state(ray_origins_h=None))
    init_kwargs = fakes.EasyDict(z_dim=4, c_dim=25, rendering_kwargs=fakes.EasyDict(depth_resolution=48),
                                 sr_kwargs=fakes.EasyDict(channel_base=32768))
    g = fakes.persistent("TriPlaneGenerator", module_state(
        buffers={"dataset_label_std": torch.ones(25)},
        modules={"backbone": backbone, "renderer": renderer, "ray_sampler": sampler, "decoder": decoder,
                 "superresolution": None},
        _init_args=(), _init_kwargs=init_kwargs, rendering_kwargs=init_kwargs["rendering_kwargs"],
        neural_rendering_resolution=128, _last_planes=None))
    d = fakes.persistent("DualDiscriminator", module_state(params={"b4.out.weight": nn.Parameter(torch.ones(1, 2))}))
    return {"training_set_kwargs": fakes.EasyDict(resolution=512), "G": g, "D": d, "G_ema": g, "augment_pipe": None}


# ---------------------------------------------------------------------------------------------
# Official EG3D pickles.

def test_fake_official_pickle_loads_without_running_module_src(fakes, tmp_path):
    path = write(tmp_path / "ffhq512-128.pkl", fakes.dumps(small_eg3d(fakes)))
    assert b"module_src was executed" in path.read_bytes()  # the payload really is in the file
    ck = load_eg3d_pickle(path)
    assert ck.which == "G_ema" and ck.class_name == "TriPlaneGenerator"
    assert set(ck.state_dict) == {"dataset_label_std", "backbone.mapping.w_avg", "backbone.mapping.fc0.weight",
                                  "backbone.mapping.fc0.bias", "backbone.synthesis.b4.const",
                                  "backbone.synthesis.b4.resample_filter", "decoder.net.0.weight",
                                  "decoder.net.0.bias", "decoder.net.2.weight", "decoder.net.2.bias"}
    assert ck.state_dict["decoder.net.2.weight"].shape == (5, 8)
    assert torch.equal(ck.state_dict["backbone.mapping.w_avg"], torch.arange(4.0))
    assert type(ck.state_dict["decoder.net.0.weight"]) is torch.Tensor
    assert ck.init_kwargs == {"z_dim": 4, "c_dim": 25, "rendering_kwargs": {"depth_resolution": 48},
                              "sr_kwargs": {"channel_base": 32768}}
    assert type(ck.init_kwargs["rendering_kwargs"]) is dict and ck.rendering_kwargs == {"depth_resolution": 48}
    assert ck.neural_rendering_resolution == 128
    d = load_eg3d_pickle(path, which="D")
    assert list(d.state_dict) == ["b4.out.weight"] and d.class_name == "DualDiscriminator"
    assert not fakes.marker.exists()


def test_protocol_2_pickle_also_loads(fakes, tmp_path):  # sets go through builtins.set, dicts the same
    path = write(tmp_path / "old.pkl", fakes.dumps(small_eg3d(fakes), protocol=2))
    assert "decoder.net.0.weight" in load_eg3d_pickle(path).state_dict


def _nested_meta_from_spec(fakes: Fakes, entries: list[dict]):
    tree: dict = {}
    for e in entries:
        *parents, leaf = e["name"].split(".")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node.setdefault("__tensors__", []).append((leaf, e["shape"], e["kind"]))

    def build(node: dict, class_name: str):
        params = {n: nn.Parameter(torch.zeros(s)) for n, s, k in node.get("__tensors__", []) if k == "parameter"}
        buffers = {n: torch.zeros(s) for n, s, k in node.get("__tensors__", []) if k == "buffer"}
        kids = {n: build(child, n) for n, child in node.items() if n != "__tensors__"}
        if class_name == "decoder":
            seq = nn.Sequential()
            seq._modules.update({"0": kids["net"]._children["0"], "1": nn.Softplus(), "2": kids["net"]._children["2"]})
            return fakes.plain_module("OSGDecoder", module_state(modules={"net": seq}))
        obj = fakes.persistent(class_name, module_state(params=params, buffers=buffers, modules=kids))
        obj._children = kids
        return obj

    return build(tree, "TriPlaneGenerator")


def test_real_eg3d_names_and_shapes_round_trip(fakes, tmp_path):
    """All 176 official names with their real shapes (30.7M zeros); names and shapes must come back."""
    if not SPEC.is_file():
        pytest.skip(f"the official state-dict spec {SPEC.name} is not beside this clone (../shared/specs/)")
    spec = json.loads(SPEC.read_text())
    g = _nested_meta_from_spec(fakes, spec["entries"])
    path = write(tmp_path / "ffhq512-128.pkl", fakes.dumps({"G_ema": g, "G": g, "D": None}))
    ck = load_eg3d_pickle(path)
    assert list(ck.state_dict) == [e["name"] for e in spec["entries"]]
    assert all(list(ck.state_dict[e["name"]].shape) == e["shape"] for e in spec["entries"])
    n_params = sum(ck.state_dict[e["name"]].numel() for e in spec["entries"] if e["kind"] == "parameter")
    assert n_params == spec["num_parameters"] == 30_662_136


def test_wrong_architecture_and_missing_network(fakes, tmp_path):
    g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=1)
    path = write(tmp_path / "sg2.pkl", fakes.dumps({"G_ema": fake_from_module(fakes, g, "Generator")}))
    with pytest.raises(CheckpointError, match="wrong architecture.*load_stylegan2_pickle"):
        load_eg3d_pickle(path)
    with pytest.raises(CheckpointError, match="no network 'D'"):
        load_eg3d_pickle(path, which="D")
    with pytest.raises(ValueError):
        load_eg3d_pickle(path, which="G_ema_typo")


# ---------------------------------------------------------------------------------------------
# Refusals and damaged files.

class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.mark.parametrize("which", ["os.system", "builtins.eval", "builtins.exec", "subprocess.call"])
def test_forbidden_globals_are_refused(tmp_path, which):
    import builtins
    import os
    import subprocess
    marker = tmp_path / "PWNED"
    code = f"open({str(marker)!r}, 'w').write('x')"
    fn, arg = {"os.system": (os.system, f"touch {marker}"), "builtins.eval": (builtins.eval, code),
               "builtins.exec": (builtins.exec, code),
               "subprocess.call": (subprocess.call, ["touch", str(marker)])}[which]
    pickled_name = f"{fn.__module__}.{fn.__name__}"  # os.system pickles as posix.system
    path = write(tmp_path / "evil.pkl", pickle.dumps({"G_ema": _Evil(fn, arg)}, protocol=4))
    with pytest.raises(ForbiddenGlobalError, match=pickled_name.replace(".", r"\.")) as info:
        load_eg3d_pickle(path)
    assert info.value.global_name == pickled_name
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()


def test_forbidden_global_nested_inside_persistent_state(fakes, tmp_path):
    import os
    marker = tmp_path / "PWNED"
    g = fakes.persistent("TriPlaneGenerator", module_state(payload=_Evil(os.system, f"touch {marker}")))
    path = write(tmp_path / "evil2.pkl", fakes.dumps({"G_ema": g}))
    with pytest.raises(ForbiddenGlobalError, match=r"posix\.system|os\.system"):
        load_eg3d_pickle(path)
    assert not marker.exists()


def test_truncated_and_missing_files(fakes, tmp_path):
    data = fakes.dumps(small_eg3d(fakes))
    for cut in (len(data) // 2, 10, len(data) - 1):
        path = write(tmp_path / "cut.pkl", data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_eg3d_pickle(path)
    with pytest.raises(FileNotFoundError, match=r"ffhq512-128\.pkl.*NVIDIA NGC"):
        load_eg3d_pickle(tmp_path / "ffhq512-128.pkl")
    with pytest.raises(FileNotFoundError, match=r"G\.pth"):
        load_eg3d_pth(tmp_path / "G.pth")
    with pytest.raises(FileNotFoundError, match=r"sg2\.pt"):
        load_stylegan2_rosinality(tmp_path / "sg2.pt")


# ---------------------------------------------------------------------------------------------
# Third-party formats and StyleGAN2.

def tiny_g(seed=0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16, mapping_layers=2)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.normal_(0, 0.1)  # non-zero so that a dropped or misplaced one shows
        g.mapping.w_avg.normal_()
    return g.eval()


def test_eg3d_pth(tmp_path):
    sd = {"backbone.synthesis.b4.const": torch.randn(4, 4, 4), "decoder.net.0.weight": torch.randn(3, 2)}
    torch.save({"G_ema": sd, "init_kwargs": {"z_dim": 512}, "latent_avg": torch.ones(3)}, tmp_path / "G.pth")
    ck = load_eg3d_pth(tmp_path / "G.pth")
    assert ck.state_dict.keys() == sd.keys() and all(torch.equal(ck.state_dict[k], v) for k, v in sd.items())
    assert ck.init_kwargs == {"z_dim": 512} and torch.equal(ck.extras["latent_avg"], torch.ones(3))
    torch.save({"G_ema": nn.Linear(2, 2)}, tmp_path / "module.pth")  # a pickled module: refused
    with pytest.raises(CheckpointError):
        load_eg3d_pth(tmp_path / "module.pth")
    raw = (tmp_path / "G.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_eg3d_pth(tmp_path / "cut.pth")


def official_stylegan2_d(fakes: Fakes, conv_clamp=None):
    """A tiny official 'resnet' Discriminator (random non-zero biases) and its persistent object."""
    torch.manual_seed(1)
    d = Discriminator(img_resolution=32, channel_base=256, channel_max=16, mbstd_group_size=2, conv_clamp=conv_clamp)
    with torch.no_grad():
        for name, p in d.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    meta = fake_from_module(fakes, d, "training.networks_stylegan2.Discriminator")
    meta.__reduce__()[1][0]["state"].update(_init_args=(0, 32, 3), _init_kwargs=fakes.EasyDict(
        architecture="resnet", channel_base=256, channel_max=16, num_fp16_res=4, conv_clamp=conv_clamp,
        cmap_dim=None, block_kwargs=fakes.EasyDict(), mapping_kwargs=fakes.EasyDict(),
        epilogue_kwargs=fakes.EasyDict(mbstd_group_size=2)))
    return d.eval(), meta


def test_stylegan2_official_pickle(fakes, tmp_path):
    g = tiny_g()
    init = fakes.EasyDict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3,
                          mapping_kwargs=fakes.EasyDict(num_layers=2),
                          synthesis_kwargs=fakes.EasyDict(channel_base=256, channel_max=16, num_fp16_res=0))
    meta = fake_from_module(fakes, g, "Generator")
    meta_state = meta.__reduce__()[1][0]["state"]
    meta_state.update(_init_args=(), _init_kwargs=init)
    d, d_meta = official_stylegan2_d(fakes)
    path = write(tmp_path / "network-snapshot.pkl", fakes.dumps({"G_ema": meta, "G": meta, "D": d_meta}))
    ck = load_stylegan2_pickle(path)
    assert ck.init_kwargs == dict(z_dim=16, w_dim=16, c_dim=0, img_resolution=32, img_channels=3,
                                  channel_base=256, channel_max=16, mapping_layers=2, conv_clamp=None)
    g2 = StyleGAN2Generator(**ck.init_kwargs)
    load_into(g2, ck.state_dict)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(g(z, truncation_psi=0.7), g2.eval()(z, truncation_psi=0.7))
    dk = load_stylegan2_pickle(path, which="D")  # the discriminator few-shot transfer fine-tunes
    assert dk.init_kwargs["mbstd_group_size"] == 2 and dk.init_kwargs["c_dim"] == 0
    d2 = Discriminator(**dk.init_kwargs)
    load_into(d2, dk.state_dict)
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(d(img), d2.eval()(img))
    with pytest.raises(CheckpointError, match="expected a StyleGAN2 'Discriminator'"):
        load_stylegan2_pickle(write(tmp_path / "swapped.pkl", fakes.dumps({"D": meta})), which="D")
    init["synthesis_kwargs"]["channel_max"] = 8  # recorded kwargs that do not fit the weights
    path = write(tmp_path / "bad.pkl", fakes.dumps({"G_ema": meta}))
    with pytest.raises(CheckpointError, match="wrong architecture"):
        load_stylegan2_pickle(path)


def test_stylegan2_conv_clamp_is_read(fakes, tmp_path):
    """The official FFHQ models clamp conv outputs (256): the recorded clamp reaches every layer."""
    g = tiny_g()
    clamped = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16,
                                 mapping_layers=2, conv_clamp=0.05)
    clamped.load_state_dict(g.state_dict())
    meta = fake_from_module(fakes, clamped, "Generator")
    meta.__reduce__()[1][0]["state"].update(_init_args=(16, 0, 16, 32, 3), _init_kwargs=fakes.EasyDict(
        mapping_kwargs=fakes.EasyDict(num_layers=2),
        synthesis_kwargs=fakes.EasyDict(channel_base=256, channel_max=16, num_fp16_res=4, conv_clamp=0.05)))
    ck = load_stylegan2_pickle(write(tmp_path / "clamped.pkl", fakes.dumps({"G_ema": meta})))
    assert ck.init_kwargs["conv_clamp"] == 0.05
    g2 = StyleGAN2Generator(**ck.init_kwargs)
    load_into(g2, ck.state_dict)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out, unclamped = g2.eval()(z), g(z)
        assert torch.equal(out, clamped.eval()(z))
    assert (out - unclamped).abs().max() > 1e-3  # the clamp acted


def test_tensorflow_stylegan2_pickle_names_the_pytorch_file(fakes, tmp_path):
    network = type("Network", (), {})
    network.__module__, network.__qualname__ = "dnnlib.tflib.network", "Network"
    fakes.mods["dnnlib.tflib.network"].Network = network
    nets = []
    for name in ("G", "D", "Gs"):
        obj = network.__new__(network)
        obj.__dict__.update(name=name, build_module_src="raise RuntimeError('executed')", variables=[])
        nets.append(obj)
    path = write(tmp_path / "stylegan2-ffhq-config-f.pkl", fakes.dumps(tuple(nets), protocol=3))
    with pytest.raises(CheckpointError, match=r"TensorFlow StyleGAN2 pickle.*stylegan2-ffhq-1024x1024\.pkl"):
        load_stylegan2_pickle(path)


def to_rosinality(g: StyleGAN2Generator) -> dict:
    """Test-side inverse of the conversion: our names -> rosinality stylegan2-pytorch names."""
    sd = g.state_dict()
    out = {}
    fir4 = 4 * g.synthesis.b4.resample_filter

    def conv(dst, src, noise_idx, up=False):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"].unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        res = sd[f"{src}.noise_const"].shape[-1]
        out[f"noises.noise_{noise_idx}"] = sd[f"{src}.noise_const"].reshape(1, 1, res, res)
        if up:
            out[f"{dst}.conv.blur.kernel"] = fir4.clone()

    def rgb(dst, src, up=False):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"].unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)
        if up:
            out[f"{dst}.upsample.kernel"] = fir4.clone()

    for i in range(g.mapping.num_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"].unsqueeze(0)
    conv("conv1", "synthesis.b4.conv1", 0)
    rgb("to_rgb1", "synthesis.b4.torgb")
    for k, res in enumerate(g.synthesis.block_resolutions[1:]):
        conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1, up=True)
        conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2)
        rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb", up=True)
    return out


def test_rosinality_round_trip(tmp_path):
    """Proves the naming / reshaping conversion and the config inference against OUR forward pass.
    It does not prove that rosinality's own forward pass matches ours (that rests on the reading of
    its code documented in convert_rosinality_state, e.g. no kernel flip for the up-sampling convs)."""
    g = tiny_g()
    rsd = to_rosinality(g)
    torch.save({"g_ema": rsd, "latent_avg": g.mapping.w_avg.clone(), "args": argparse.Namespace(size=32)},
               tmp_path / "550000.pt")
    ck = load_stylegan2_rosinality(tmp_path / "550000.pt")
    assert ck.init_kwargs == dict(z_dim=16, w_dim=16, c_dim=0, img_resolution=32, img_channels=3,
                                  channel_base=256, channel_max=16, mapping_layers=2)
    assert ck.state_dict.keys() == g.state_dict().keys()
    g2 = StyleGAN2Generator(**ck.init_kwargs)
    load_into(g2, ck.state_dict)
    assert all(torch.equal(v, g2.state_dict()[k]) for k, v in g.state_dict().items())
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(g(z, truncation_psi=0.5), g2.eval()(z, truncation_psi=0.5))
    rsd["convs.0.conv.blur.kernel"] = torch.ones(4, 4)
    torch.save({"g_ema": rsd}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="blur kernel"):
        load_stylegan2_rosinality(tmp_path / "odd.pt")
    del rsd["convs.0.conv.blur.kernel"]
    rsd["extra.thing"] = torch.ones(1)
    torch.save({"g_ema": rsd}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="extra.thing"):
        load_stylegan2_rosinality(tmp_path / "extra.pt")
    del rsd["extra.thing"]
    torch.save({"g_ema": rsd}, tmp_path / "noavg.pt")
    assert load_stylegan2_rosinality(tmp_path / "noavg.pt").extras["w_avg_missing"]


# ---------------------------------------------------------------------------------------------
# load_into and safetensors.

def test_load_into_reports_mismatches():
    g = tiny_g()
    sd = dict(g.state_dict())
    sd.pop("mapping.fc0.bias")
    sd["mapping.fc9.weight"] = torch.ones(1)
    sd["synthesis.b4.const"] = torch.ones(3, 4, 4)
    sd["dataset_label_std"] = torch.ones(25)  # known extra key: ignored
    with pytest.raises(CheckpointMismatchError) as info:
        load_into(tiny_g(1), sd)
    msg = str(info.value)
    assert "1 missing, 1 unexpected, 1 shape mismatches" in msg
    assert "mapping.fc0.bias" in msg and "mapping.fc9.weight" in msg
    assert "synthesis.b4.const: expected (16, 4, 4) vs got (3, 4, 4)" in msg and "dataset_label_std" not in msg
    assert info.value.missing == ["mapping.fc0.bias"]
    sd["synthesis.b4.const"] = g.synthesis.b4.const.detach()
    report = load_into(tiny_g(1), sd, strict=False)
    assert report.missing == ["mapping.fc0.bias"] and report.unexpected == ["mapping.fc9.weight"]
    many = {f"x{i}": torch.ones(1) for i in range(30)}
    with pytest.raises(CheckpointMismatchError, match=r"and 10 more"):
        load_into(nn.Linear(2, 2), many)


def test_safetensors_round_trip(tmp_path):
    g = tiny_g()
    config = {"kind": "StyleGAN2Generator", "init_kwargs": {"z_dim": 16, "img_resolution": 32}, "step": 3}
    path = save_safetensors(g, tmp_path / "out" / "g.safetensors", config)
    assert path.is_file() and (tmp_path / "out" / "g.json").is_file()
    assert json.loads((tmp_path / "out" / "g.json").read_text()) == config
    sd, cfg = load_safetensors(path)
    assert cfg == config and sd.keys() == g.state_dict().keys()
    assert all(torch.equal(sd[k], v) and sd[k].dtype == v.dtype for k, v in g.state_dict().items())
    assert sd["synthesis.b4.conv1.noise_strength"].shape == ()
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary files left behind
    (tmp_path / "out" / "g.json").unlink()
    assert load_safetensors(path)[1] == config  # falls back on the copy in the metadata
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_safetensors(path)
    with pytest.raises(TypeError):
        save_safetensors(g, tmp_path / "bad.safetensors", {"x": object()})
    assert not (tmp_path / "bad.safetensors").exists()
