"""The world CLIP: captions true to the factors, a seeded contrastive fit, the CLIP score, the
missing-weights error and the clipscore command."""
import dataclasses
import inspect
import json
import random
from types import SimpleNamespace

import open_clip
import pytest
import torch
from PIL import Image

from portraitlib import profile_loading, profiles
from portraitlib.clip import measures, model, training
from portraitlib.metrics.__main__ import main as metrics_main
from portraitlib.profiles import ClipConfig
from portraitlib.world import captions
from portraitlib.world.identity import ACCESSORIES, LATENT_DIM, RANGES, sample_latents

TINY = ClipConfig(epochs=6, batch=16)
_INDEX = {name: i for i, (name, _, _) in enumerate(RANGES)} | {
    name: len(RANGES) + j for j, (name, _) in enumerate(ACCESSORIES)}


def _latents(n: int, **positions: float) -> torch.Tensor:
    """(n, LATENT_DIM) latents whose named parameters sit at the given positions in [0, 1]
    (accessories: 1 on, 0 off); the rest at the middle of their range."""
    z = torch.zeros(n, LATENT_DIM)
    for name, p in positions.items():
        z[:, _INDEX[name]] = torch.special.ndtri(torch.tensor(min(max(p, 1e-4), 1 - 1e-4)))
    return z


def test_captions_follow_the_factors():
    angles = torch.tensor([[30.0, 15.0, 0.0], [0.0, 0.0, 0.0], [-30.0, -15.0, 0.0], [11.0, 0.0, 0.0]])
    z = _latents(4, glasses=1.0, hair_colour=0.8, hair_length=0.9, gaze_x=0.95)
    real = captions.describe(z, angles, "real")
    assert [d.facing for d in real] == [captions.Facing.LEFT, captions.Facing.FRONT, captions.Facing.RIGHT, None]
    assert [d.elevation for d in real[:3]] == [captions.Elevation.ABOVE, None, captions.Elevation.BELOW]
    d = real[0]
    assert (d.hair_colour, d.hair_length, d.glasses, d.gaze) == ("red", "long", True, captions.Gaze.RIGHT)
    assert captions.full_caption(d) == ("a photo of a person with long red hair, glasses, medium skin and eyes looking "
                                        "to the right, turned to the left, seen from above")
    mirrored = captions.describe(*captions.mirror(z, angles), "real")[0]
    assert (mirrored.facing, mirrored.gaze) == (captions.Facing.RIGHT, captions.Gaze.LEFT)
    statue = captions.describe(z, angles, "sculpture")[0]  # monochrome, no irises: no colours, no gaze
    assert (statue.hair_colour, statue.skin_tone, statue.gaze, statue.hair_length) == (None, None, None, "long")
    bare = captions.describe(_latents(1, glasses=0.0, hair_colour=0.5), angles[:1], "cartoon")[0]
    assert not bare.glasses and bare.hair_colour is None  # halfway between brown and blond: unsaid
    rng = random.Random(0)
    with_glasses = captions.training_captions(d, k=200, rng=rng)
    without = captions.training_captions(bare, k=200, rng=rng)
    assert sum("glasses" in c for c in with_glasses) > 100 and not any("glasses" in c for c in without)
    assert any("red hair" in c for c in with_glasses) and not any("red" in c for c in without)
    assert sum("glasses" in c for c in with_glasses) < 200, "plain captions may leave glasses unsaid"
    named = (captions.Attribute.HAIR_COLOUR, captions.Attribute.GLASSES)
    forced = captions.training_captions(d, k=200, rng=rng, named=named)
    listing = [c for c in forced if " with " in c or " showing " in c]  # the frames that list attributes
    assert len(listing) > 100 and all("glasses" in c and "long red hair" in c for c in listing)
    assert all("glasses" not in c for c in captions.training_captions(bare, k=50, rng=rng, named=named))
    with pytest.raises(ValueError, match="camera phrase"):
        captions.training_captions(d, k=1, rng=rng, named=(captions.Attribute.FACING,))


def test_held_out_style_words_never_appear_in_training_captions():
    tokenizer = open_clip.SimpleTokenizer()
    g = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    seen = set()
    for look in captions.LOOK_WORDS:
        z = sample_latents(60, generator=g)
        angles = torch.stack((torch.linspace(-45, 45, 60), torch.linspace(-20, 20, 60), torch.zeros(60)), -1)
        for d in captions.describe(z, angles, look):
            for text in captions.training_captions(d, k=4, rng=rng):
                assert captions.LOOK_WORDS[d.look][0] in text or captions.LOOK_WORDS[d.look][1] in text \
                    or text.startswith("a person")
                seen.update(tokenizer.encode(text))
    for look, words in captions.HELD_OUT_LOOK_WORDS.items():
        new = set(tokenizer.encode(words.split(" ", 1)[1]))
        assert not new & seen, f"{look}: held-out word {words!r} appears in training captions"
    assert set(tokenizer.encode("cartoon sculpture photo glasses")) <= seen


def _toy_set(n_per_look: int = 16):
    """Renders stand-ins: each look a flat colour (plus noise), with true captions."""
    g = torch.Generator().manual_seed(3)
    looks = ["real", "cartoon", "sculpture"]
    colours = torch.tensor([[0.8, 0.3, 0.2], [0.2, 0.7, 0.3], [0.2, 0.3, 0.8]])
    images = (colours.repeat_interleave(n_per_look, 0)[:, :, None, None]
              + 0.1 * torch.randn(3 * n_per_look, 3, 32, 32, generator=g)).clamp(0, 1)
    latents = sample_latents(3 * n_per_look, generator=g)
    angles = torch.zeros(3 * n_per_look, 3)
    row_looks = [look for look in looks for _ in range(n_per_look)]
    tokens, examples = training.caption_tokens(latents, angles, row_looks, k=2, seed=0,
                                               tokenizer=open_clip.SimpleTokenizer(context_length=TINY.context_length))
    return images, tokens, examples


def test_tiny_training_decreases_the_loss_and_is_seeded():
    images, tokens, examples = _toy_set()
    assert tokens.shape == (48, 2, 2, TINY.context_length) and len(examples) == 4
    clip, curve = training.train_world_clip(images, tokens, config=TINY, seed=0, progress=False)
    again, curve_again = training.train_world_clip(images, tokens, config=TINY, seed=0, progress=False)
    assert curve[-1] < curve[0]
    assert curve == curve_again
    assert all(torch.equal(a, b) for a, b in zip(clip.state_dict().values(), again.state_dict().values()))
    assert isinstance(clip.model, open_clip.CLIP) and clip.name == model.WORLD_CLIP
    assert clip.model.logit_scale.exp().item() <= 100 + 1e-3


def test_mirroring_is_off_by_default_and_swaps_captions_when_on():
    """Off (``ClipConfig.mirror``): the mirrored captions are never read, so replacing them changes
    nothing; on, they are read with the mirrored images."""
    images, tokens, _ = _toy_set()
    garbled = tokens.clone()
    garbled[:, 1] = tokens[:, 1].flip(0)  # the mirror captions of other renders
    assert not TINY.mirror
    plain, _ = training.train_world_clip(images, tokens, config=TINY, seed=0, progress=False)
    same, _ = training.train_world_clip(images, garbled, config=TINY, seed=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), same.state_dict().values()))
    mirrored = dataclasses.replace(TINY, mirror=True)
    a, _ = training.train_world_clip(images, tokens, config=mirrored, seed=0, progress=False)
    b, _ = training.train_world_clip(images, garbled, config=mirrored, seed=0, progress=False)
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_attribute_variants_are_what_the_measure_queries():
    """The held-out variants (one factor changed, hat off) are described, in every look that shows
    the factor, by exactly the value each retrieval candidate stands for."""
    g = torch.Generator().manual_seed(0)
    base = sample_latents(5, generator=g)
    angles = torch.tensor([[3.0, 2.0, 0.0]]).repeat(5, 1)
    for attribute, values in captions.ATTRIBUTE_VALUES.items():
        z, a = measures._variants(attribute, base, angles)
        for look in ("real", "cartoon"):
            d = captions.describe(z, a, look)
            got = {captions.Attribute.HAIR_COLOUR: [x.hair_colour for x in d],
                   captions.Attribute.GLASSES: [x.glasses for x in d],
                   captions.Attribute.FACING: [x.facing for x in d]}[attribute]
            assert got == [v for v in values for _ in range(5)], (attribute, look)
            assert not any(x.hat for x in d)
            if attribute is captions.Attribute.FACING:
                assert [x.elevation for x in d] == [None] * len(d)


def test_clip_score_is_the_unscaled_cosine():
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model.clip_score(x, 2.5 * x), torch.ones(3))
    assert torch.allclose(model.clip_score(x, -x), -torch.ones(3))
    assert abs(model.clip_score(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])).item()) < 1e-6
    with torch.random.fork_rng():
        torch.manual_seed(0)
        clip = model.world_clip(TINY, weights="random")
    images = torch.rand(2, 3, 48, 80)  # any size: resized (shorter side) and centre-cropped to 64
    texts = ["a cartoon of a person", "a photo of a person with glasses"]
    with torch.no_grad():
        score = clip(images, texts)
        direct = (clip.encode_images(images) * clip.encode_texts(texts)).sum(-1)
    assert score.shape == (2,) and torch.allclose(score, direct, atol=1e-6)


def test_missing_weights_name_the_file_and_where_to_get_it(tmp_path):
    missing = tmp_path / "clip-vit-b-32-openai.pt"
    with pytest.raises(FileNotFoundError) as error:
        model.load_pretrained("ViT-B-32-quickgelu", missing)
    text = str(error.value)
    assert str(missing) in text and "openaipublic.azureedge.net/clip/models/" in text
    assert "huggingface.co/timm/vit_base_patch32_clip_224.openai" in text
    image = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (200, 120, 90)).save(image)
    assert metrics_main(["clipscore", str(image), "--text", "a photo", "--weights", str(missing)]) == 2


def test_clipscore_command_loads_open_clip_weights_by_path(tmp_path, capsys):
    """The paper-scale path: a registered open_clip config and a weights file, through
    create_model_and_transforms and the command line."""
    arch = model.architecture(TINY)
    (tmp_path / "world-tiny-test.json").write_text(json.dumps(arch))
    open_clip.add_model_config(tmp_path)
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("world-tiny-test").state_dict(), weights)
    image = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (200, 120, 90)).save(image)
    assert metrics_main(["clipscore", str(image), "--text", "a photo", "--weights", str(weights),
                         "--model", "world-tiny-test"]) == 0
    value, label = capsys.readouterr().out.split("  ", 1)
    assert -1 <= float(value) <= 1 and label.strip() == "(clip_world-tiny-test: tiny.pt)"


def test_evaluate_reports_every_measure_with_its_chance_level():
    g = torch.Generator().manual_seed(0)
    looks = ("real", "cartoon", "sculpture")
    latents, angles = sample_latents(4, generator=g), torch.zeros(4, 3)
    attributes = {a: {look: torch.rand(len(captions.ATTRIBUTE_VALUES[a]), 2, 3, 64, 64, generator=g)
                      for look in looks} for a in captions.Attribute}
    held = measures.HeldOut(looks=looks, images=torch.rand(3, 4, 3, 64, 64, generator=g),
                            descriptions=[captions.describe(latents, angles, look) for look in looks],
                            attributes=attributes)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        clip = model.world_clip(TINY, weights="random")
    out = measures.evaluate(clip.eval(), held)
    assert out["chance"] == {"look": 1 / 3, "hair_colour": 1 / 6, "glasses": 1 / 2, "facing": 1 / 3}
    assert set(out["attribute_top1"]) == {"hair_colour", "glasses", "facing"}
    assert torch.tensor(out["confusion"]).sum() == 12 and (out["n_test"], out["n_attribute"]) == (4, 2)
    assert abs(out["score_gap"] - (out["score_own"] - out["score_other_looks"])) < 1e-6
    assert all(0 <= out[k] <= 1 for k in ("look_top1", "look_classification", "zero_shot_top1"))
    same = torch.eye(3)
    assert measures.retrieval(same, same[:, None, :].expand(3, 5, 3)).all()


def test_clip_config_is_documented_and_validated():
    source = inspect.getsource(ClipConfig)
    for f in dataclasses.fields(ClipConfig):
        after = source.split(f"    {f.name}:", 1)[1].splitlines()[1].strip()
        assert after.startswith('"""'), f"ClipConfig.{f.name} has no docstring"
    with pytest.raises(profiles.ProfileError, match="clip.batch must be positive"):
        ClipConfig(batch=0)
    with pytest.raises(profiles.ProfileError, match="go together"):
        ClipConfig(pretrained_model="ViT-B-32-quickgelu")
    assert profile_loading.load_profile("mini").clip.n_per_look > profile_loading.load_profile("smoke").clip.n_per_look


def test_counterfactuals_change_one_factor_and_nothing_else():
    g = torch.Generator().manual_seed(1)
    z = sample_latents(64, generator=g)
    angles = torch.zeros(64, 3)
    before = captions.describe(z, angles, "real")
    for change in training.Counterfactual:
        edited = change.edit(z, torch.Generator().manual_seed(2))
        after = captions.describe(edited, angles, "real")
        kept = {f.name for f in dataclasses.fields(captions.Description)} - {
            "glasses" if change is training.Counterfactual.GLASSES else "hair_colour"}
        assert all(getattr(a, name) == getattr(b, name) for a, b in zip(after, before) for name in kept), change
        if change is training.Counterfactual.GLASSES:
            assert [a.glasses for a in after] == [not b.glasses for b in before]
        else:
            assert all(a.hair_colour != b.hair_colour and a.hair_colour is not None for a, b in zip(after, before))
            assert len({a.hair_colour for a in after}) == len(captions.HAIR_COLOURS), "every colour is a target"


def test_grouped_training_keeps_each_render_with_its_counterfactuals():
    """One render per group is plain training; groups of three fit and are seeded too."""
    images, tokens, _ = _toy_set()
    plain, curve = training.train_world_clip(images, tokens, config=TINY, seed=0, progress=False)
    grouped, curve_one = training.train_world_clip(images[:, None], tokens[:, None], config=TINY, seed=0,
                                                   progress=False)
    assert curve == curve_one
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), grouped.state_dict().values()))
    triples = torch.stack([images, images.flip(-1), 1 - images], 1)
    three = torch.stack([tokens, tokens.roll(1, 0), tokens.roll(2, 0)], 1)
    _, curve3 = training.train_world_clip(triples, three, config=TINY, seed=0, progress=False)
    _, again = training.train_world_clip(triples, three, config=TINY, seed=0, progress=False)
    assert curve3 == again and curve3[-1] < curve3[0]


def test_counterfactual_renders_share_cameras_and_light(tmp_path):
    from portraitlib.cache import ArtifactCache
    from portraitlib.world import datasets

    world = profiles.WorldConfig(image_size=16, trace_steps=24)
    cache = ArtifactCache(profile="test", seed=0, root=tmp_path)
    looks = ("real", "cartoon")
    latents, images = training.counterfactual_renders(cache=cache, world=world, n_per_look=3, looks=looks, seed=0)
    plain = datasets.make_pose_set(3, looks=looks, split="train", seed=0, config=world)
    assert latents.shape == (2, 6, LATENT_DIM) and images.shape == (2, 6, 3, 16, 16)
    (_, _, _, scene), _ = datasets.pose_set_draws(3, looks=looks, split="train", seed=0)
    for c, z in enumerate(latents):
        assert ((z != plain.latents).sum(1) == 1).all(), "one factor of each identity changed"
        assert not torch.equal(images[c], plain.images)
        real = datasets.render_set(z[:3], plain.angles[:3], look="real", config=world, scene=scene)
        cartoon = datasets.render_set(z[3:], plain.angles[3:], look="cartoon", config=world)
        assert torch.equal(images[c], torch.cat([real.images, cartoon.images])), "same cameras and light"



def test_released_world_clip_is_the_study_one_and_refuses_other_settings(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from portraitlib.cache import ArtifactCache
    from portraitlib.clip.release import load_released
    from portraitlib.pretrain.card import Kind, markdown
    from portraitlib.pretrain.world_clip import release_world_clip

    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path / "cache"))
    smoke = profile_loading.load_profile("smoke")
    tiny = dataclasses.replace(smoke, world=dataclasses.replace(smoke.world, image_size=32, trace_steps=12,
                                                                styles=("cartoon",)),
                               clip=dataclasses.replace(TINY, n_per_look=8, epochs=2, n_test=2, n_attribute=1))
    card = release_world_clip(profile=tiny, seed=0, device=torch.device("cpu"), out=tmp_path / "out", command="test")
    path = tmp_path / "out" / "world_clip.safetensors"
    released, info = load_released(path, world=tiny.world, config=tiny.clip)
    trained, trained_info = training.study_world_clip(cache=ArtifactCache(profile="smoke", seed=0), world=tiny.world,
                                                      config=tiny.clip, seed=0, progress=False)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(released.encode_images(images), trained.encode_images(images))
    assert info["curve"] == trained_info["curve"] and info["n_images"] == trained_info["n_images"]
    assert released.weights == "released out/world_clip.safetensors"
    releasing = dataclasses.replace(tiny, clip=dataclasses.replace(tiny.clip, source_checkpoint=str(path)))
    ctx = SimpleNamespace(profile=releasing, device=torch.device("cpu"), cache=None, seed=1)
    studied, studied_info = training.study_clip(ctx)
    assert studied.weights == released.weights and studied_info["curve"] == info["curve"]
    assert torch.equal(studied.encode_images(images), released.encode_images(images)), "the study reads the release"
    assert 0 <= card["quality"]["look_top1"] <= 1 and "| epoch | loss |" in markdown(card)
    with pytest.raises(ValueError, match=r"clip\.embed_dim"):
        load_released(path, world=tiny.world, config=dataclasses.replace(tiny.clip, embed_dim=64))
    with pytest.raises(ValueError, match=r"world\.image_size"):
        load_released(path, world=dataclasses.replace(tiny.world, image_size=64), config=tiny.clip)
    other = tmp_path / "G_world.safetensors"
    save_file({"x": torch.zeros(1)}, str(other), metadata={"format": Kind.G_WORLD.format, "config": "{}"})
    with pytest.raises(ValueError, match="not 'portraitlib world CLIP"):
        load_released(other, world=tiny.world, config=tiny.clip)
