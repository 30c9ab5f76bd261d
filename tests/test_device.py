"""The device and RNG policy: every stage creates its tensors on the chosen device, networks are
built from (seed, stage) whatever ran before, and checkpoints, RNGs and devices are chosen well.

A CPU cannot show a tensor landing on the wrong GPU, so the device spy looks at the cause instead:
every tensor the library creates through a factory (``torch.zeros``, ``randn``, ``tensor``, ...)
must say where (``device=``), or it would land on the CPU during a GPU run. The spy runs the whole
pipeline of notebooks 01-07 at a tiny size and lists every place that does not."""
import ast
import dataclasses
import sys
from pathlib import Path

import pytest
import torch

import portraitlib as pl
from portraitlib import cameras, evaluation, generator3d, metrics, pose, study_data
from portraitlib.agilegan3d import cycle_encoder, guided_transfer, prior_transfer, style_prior
from portraitlib.device import pick_device, seeded_build, stage_seed
from portraitlib.profiles import (EG3DConfig, EncoderConfig, GuidedConfig, StylePriorConfig, TransferConfig,
                                  WorldConfig)
from tests.test_style_prior import FakeIdentity, FakeRegressor

LIBRARY = Path(pl.__file__).resolve().parent
FACTORIES = ("zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange", "linspace", "tensor",
             "as_tensor", "eye")


class ImplicitDeviceSpy:
    """Within ``with spy:``, records ``file:line`` of every factory call made directly by library
    code without ``device=`` (the factories are wrapped for the test; nothing else is slowed).
    Module constructors are exempt: networks are built on the CPU by policy, then moved."""

    def __init__(self):
        self.sites: set[str] = set()
        self._saved = {}

    def _wrap(self, factory):
        def spied(*args, **kwargs):
            if "device" not in kwargs:
                caller = sys._getframe(1)
                path = Path(caller.f_code.co_filename).resolve()
                building = caller.f_code.co_name == "__init__" and isinstance(caller.f_locals.get("self"), torch.nn.Module)
                if path.is_relative_to(LIBRARY) and not building:
                    self.sites.add(f"{path.relative_to(LIBRARY.parent)}:{caller.f_lineno}")
            return factory(*args, **kwargs)
        return spied

    def __enter__(self):
        for name in FACTORIES:
            self._saved[name] = getattr(torch, name)
            setattr(torch, name, self._wrap(self._saved[name]))
        return self

    def __exit__(self, *exc):
        for name, factory in self._saved.items():
            setattr(torch, name, factory)


def tiny_context(root: Path) -> pl.StudyContext:
    profile = dataclasses.replace(
        pl.load_profile("smoke"),
        world=WorldConfig(image_size=32, n_train=6, n_test=4, n_exemplars=4, styles=("cartoon",)),
        style_prior=StylePriorConfig(z_dim=8, w_dim=16, channel_max=16, warm_start_steps=3, adversarial_steps=2,
                                     encoder_steps=2, transfer_steps=2, eval_every=1, batch=2, transfer_batch=2,
                                     unpaired_per_style=3, fake_latents="posterior"),
        eg3d=EG3DConfig(generator="smoke", warm_start_steps=2, adversarial_steps=2, encoder_steps=2, eval_every=1,
                        batch=2, blur_fade_images=4),
        transfer=TransferConfig(steps=2, batch=2, eval_every=1, ablation_style="cartoon", subset_sizes=(2, 4)),
        encoder=EncoderConfig(steps=2, batch=2), guided=GuidedConfig(batch=2))
    return pl.StudyContext(notebook="test", profile=profile, seed=0, device=torch.device("cpu"),
                           cache=pl.ArtifactCache(profile="test", seed=0, root=root))


def tiny_data() -> study_data.StudyImages:
    g = torch.Generator().manual_seed(0)
    labels = cameras.labels_from_angles(torch.linspace(-20, 20, 6), torch.zeros(6))
    return study_data.StudyImages(real_train=torch.rand(6, 3, 32, 32, generator=g), train_labels=labels,
                                   real_test=torch.rand(4, 3, 32, 32, generator=g), test_labels=labels[:4],
                                   exemplars={"cartoon": torch.rand(4, 3, 32, 32, generator=g)},
                                   train_depth=2.5 + 0.5 * torch.rand(6, 1, 32, 32, generator=g))


def pipeline(ctx: pl.StudyContext) -> dict[str, torch.nn.Module]:
    """Notebooks 01-07's stages at a tiny size; returns every network they make."""
    data = tiny_data().to(ctx.device)
    nets = study_data.LossNets.of(perceptual=metrics.LPIPS(random_trunk=True).to(ctx.device),
                                identity=FakeIdentity())
    S, source = style_prior.source_generator(ctx, data, nets, progress=False)
    E_h, e_art = style_prior.inversion_encoder(ctx, data, nets, S, source, kind="hvae", progress=False)
    E_w, _ = style_prior.inversion_encoder(ctx, data, nets, S, source, kind="wplus", progress=False)
    S_t, t_art = style_prior.style_generator(ctx, data, nets, S, source, E_h, style="cartoon", progress=False)
    folder = style_prior.prior_set(ctx, data, S_t, E_h, S, style="cartoon", regressor=FakeRegressor(),
                                   transfer=t_art, encoder_artefact=e_art, zplus_prior=True)
    prior = style_prior.load_prior(folder, device=ctx.device)
    G, D, E_z, g_art = generator3d.pretrained(ctx, data, nets, progress=False)
    E, enc_art = cycle_encoder.wplus_encoder(ctx, data, nets, G, g_art, cycle=True, progress=False)
    codes = cycle_encoder.encode(E, data.real_test)
    cycle_encoder.inversion_scores(codes, G, data.real_test, data.test_labels, nets)
    cycle_encoder.cycle_error(E, G, data.train_labels, n=2)
    cycle_encoder.distance_from_w(codes, G, n=8)
    sets = prior_transfer.training_sets(ctx, prior, exemplars=data.exemplars["cartoon"], regressor=FakeRegressor(),
                                        ablation=True)
    scorer = prior_transfer.StylizationError(codes=prior_transfer.fixed_codes(codes), labels=data.test_labels,
                                             targets={"x_s": data.real_test}, perceptual=nets.perceptual)
    guide = guided_transfer.make_guide(ctx, prior, sets["prior_full"], cycle_encoder.encode(E, data.real_train),
                                       nets=nets, encoder_art=enc_art)
    G_t, _ = prior_transfer.transfer(ctx, G, D, g_art, sets["prior_full"], style="cartoon", prior_key=folder.name,
                                     evaluate=scorer, guide=guide, progress=False)
    toonify, _ = evaluation.optimize_codes(G, data.real_test[:2], data.test_labels[:2], perceptual=nets.perceptual,
                                           steps=1)
    evaluation.score(evaluation.Method("ours", G_t, codes, "test"), labels=data.test_labels, x_s=data.real_test,
                     perceptual=nets.perceptual)
    regressor, _ = pose.train_pose_regressor(data.real_train, torch.zeros(6, 3), epochs=1, seed=0, batch=4,
                                             device=ctx.device)
    regressor.labels(data.real_test)
    return {"S": S, "E_hvae": E_h, "E_wplus_2d": E_w, "S_t": S_t, "G": G, "D": D, "E_z": E_z, "E": E, "G_t": G_t,
            "pose": regressor}


def weights(nets: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v.detach().clone() for name, net in nets.items() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """The pipeline from an empty cache, under the device spy."""
    root = tmp_path_factory.mktemp("cache")
    spy = ImplicitDeviceSpy()
    with spy:
        nets = pipeline(tiny_context(root))
    return {"root": root, "sites": spy.sites, "weights": weights(nets)}


def test_no_stage_creates_a_tensor_without_naming_its_device(clean_run):
    assert not clean_run["sites"], (
        "these library lines create tensors on the default device (the CPU), not the chosen one: "
        + ", ".join(sorted(clean_run["sites"])))


def test_the_spy_sees_an_implicit_tensor():
    spy = ImplicitDeviceSpy()
    with spy:
        cameras.intrinsics(2)  # names its device: not listed
        pl.profiles.__dict__  # no tensor
        exec(compile("import torch\ntorch.zeros(2)\n", str(LIBRARY / "spy_probe.py"), "exec"), {})
    assert spy.sites == {"portraitlib/spy_probe.py:2"}


def test_partly_cached_run_builds_bit_identical_networks(clean_run):
    """One artefact deleted, the global RNG disturbed (as loading another network does): the
    networks that come back, rebuilt or loaded, equal the clean run's bit for bit."""
    encoders = list(clean_run["root"].rglob("style-encoder-hvae-*.pt"))
    assert len(encoders) == 1
    encoders[0].unlink()
    torch.manual_seed(1234)
    torch.randn(1000)
    again = weights(pipeline(tiny_context(clean_run["root"])))
    assert again.keys() == clean_run["weights"].keys()
    different = [k for k, v in again.items() if not torch.equal(v, clean_run["weights"][k])]
    assert not different, f"rebuilt networks differ: {different[:5]}"


def test_networks_depend_on_seed_and_stage_only():
    def build(seed, stage, noise):
        torch.randn(noise)  # whatever the caller did before
        with seeded_build(seed, stage):
            return torch.nn.Linear(4, 4).weight.detach().clone()

    assert torch.equal(build(0, "a", 1), build(0, "a", 100))
    assert not torch.equal(build(0, "a", 1), build(0, "b", 1))
    assert not torch.equal(build(0, "a", 1), build(1, "a", 1))
    assert stage_seed(0, "a") != stage_seed(0, "b")
    state = torch.get_rng_state()
    with seeded_build(3, "x"):
        torch.randn(5)
    assert torch.equal(state, torch.get_rng_state()), "building leaves the caller's RNG as it was"


def test_every_library_generator_names_its_device():
    """``torch.Generator()`` without a device is a CPU generator: drawing with it onto a GPU fails."""
    missing = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Generator"
                    and not node.args and not any(k.arg == "device" for k in node.keywords)):
                missing.append(f"{path.relative_to(LIBRARY.parent)}:{node.lineno}")
    assert not missing, f"torch.Generator() without a device at {missing}"


def test_device_choices():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="valid"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            pick_device("cuda")


def test_the_world_renders_on_the_chosen_device():
    """The world renderer under the device spy: every tensor it makes while rendering every look
    says where; a render on the device is the CPU render (here both are the CPU, bit for bit)."""
    from portraitlib import world
    from portraitlib.world import datasets

    config = WorldConfig(image_size=16, n_train=2, n_test=2, n_exemplars=2, trace_steps=12)
    g = torch.Generator().manual_seed(0)
    latents, angles = world.sample_latents(3, generator=g), torch.zeros(3, 3)
    angles[:, 0] = torch.tensor([-20.0, 0.0, 20.0])
    scene = world.Scene.sample(3, generator=g)
    with ImplicitDeviceSpy() as spy:
        sets = [datasets.render_set(latents, angles, look=look, config=config, device="cpu",
                                    scene=scene if look == "real" else None)
                for look in ("real", *pl.STYLES)]
    world_sites = sorted(site for site in spy.sites if "/world/" in site)
    assert not world_sites, f"tensors made without a device while rendering: {world_sites}"
    again = datasets.render_set(latents, angles, look="real", config=config, scene=scene)
    assert torch.equal(sets[0].images, again.images) and sets[0].images.device.type == "cpu"
