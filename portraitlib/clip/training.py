"""Training the world CLIP: open_clip's ``CLIP`` and ``ClipLoss`` on the world's captioned renders.

The renders are the pose regressor's (every look, new identities, yaw +-45 and pitch +-20, varied
light for the real look; ``datasets.cached_pose_set``); each gets ``captions_per_image`` captions
of its true factors (``world.captions``) and as many of its mirror image. Every step degrades the
batch like the look classifier's (blur, noise, colour jitter: generated images are not crisp
renders), mirrors half of it with the mirrored captions when ``config.mirror`` (off by default: see
``ClipConfig.mirror``), and reads one caption per image. With ``config.counterfactuals`` each
render comes with its :class:`Counterfactual` renders (glasses toggled, hair recoloured) in the
same batch, and every caption that lists attributes names the hair and the glasses. The
recipe is open_clip's: AdamW (betas 0.9, 0.98, eps 1e-6; no decay on gains, biases and the
temperature), linear warm-up then cosine decay, the temperature clamped at 100.

    clip, info = study_world_clip(cache=ctx.cache, world=cfg.world, config=cfg.clip, seed=ctx.seed)
"""
from __future__ import annotations

import dataclasses
import math
import random
import time
from enum import Enum

import open_clip
import torch
from tqdm.auto import tqdm

from portraitlib.clip.model import Clip, load_pretrained, world_clip
from portraitlib.clip.release import load_released
from portraitlib.device import seeded_build, seeded_generator
from portraitlib.look import degrade
from portraitlib.paths import weights_path
from portraitlib.profiles import ClipConfig, WorldConfig
from portraitlib.settings import settings_key
from portraitlib.provenance import module_version
from portraitlib.world.captions import Attribute, Description, describe, mirror, training_captions
from portraitlib.world.identity import (HAIR_PALETTE, hair_colour_entry, params_from_latent, with_accessory,
                                        with_hair_colour)

STAGE = "world-clip"
"""Name of the world CLIP's artefact and of its seeded build."""
MAX_LOGIT_SCALE = math.log(100)
"""open_clip's clamp of the learnt temperature (logit scale at most 100)."""
COUNTERFACTUAL_OFFSET = 9_000
"""Seed offset (seed * 10000 + 9000) of the counterfactuals' new hair colours."""


class Counterfactual(Enum):
    """A training render again with one factor changed (same identity, camera, look and light)."""

    GLASSES = "glasses toggled"
    HAIR_COLOUR = "hair recoloured"

    @property
    def attribute(self) -> Attribute:
        """The attribute this change is about; counterfactual training's captions that list attributes name it."""
        return Attribute.GLASSES if self is Counterfactual.GLASSES else Attribute.HAIR_COLOUR

    def edit(self, latents: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Identities (N, D) with this factor changed: glasses off where on and on where off; hair
        moved to another ``HAIR_PALETTE`` entry, drawn uniformly from ``generator``."""
        if self is Counterfactual.GLASSES:
            return with_accessory(latents, "glasses", params_from_latent(latents).glasses == 0)
        shift = torch.randint(1, len(HAIR_PALETTE), (len(latents),), generator=generator, device=generator.device)
        return with_hair_colour(latents, (hair_colour_entry(latents) + shift.to(latents.device)) % len(HAIR_PALETTE))


def caption_tokens(latents: torch.Tensor, angles: torch.Tensor, looks: list[str], *, k: int, seed: int,
                   tokenizer, named: tuple[Attribute, ...] = ()) -> tuple[torch.Tensor, list[str]]:
    """Tokens (N, 2, k, L) of ``k`` captions of each render (row 0) and of its mirror image (row 1),
    for renders of identities (N, D) at angles (N, 3) in ``looks`` (N names); drawn from a
    ``random.Random(seed)``; ``named``: attributes that every caption listing attributes names (``training_captions``).
    Also returns the captions of the first render, as examples."""
    rng = random.Random(seed)
    views = [_describe_rows(latents, angles, looks), _describe_rows(*mirror(latents, angles), looks)]
    texts = [text for i in range(len(looks)) for view in views
             for text in training_captions(view[i], k=k, rng=rng, named=named)]
    return tokenizer(texts).reshape(len(looks), 2, k, -1), texts[:2 * k]


def _describe_rows(latents: torch.Tensor, angles: torch.Tensor, looks: list[str]) -> list[Description]:
    """``describe`` of renders (N rows) whose looks differ row by row."""
    out: list[Description | None] = [None] * len(looks)
    for look in dict.fromkeys(looks):
        rows = [i for i, name in enumerate(looks) if name == look]
        for i, description in zip(rows, describe(latents[rows], angles[rows], look)):
            out[i] = description
    return out


def _optimiser(clip: Clip, config: ClipConfig, steps: int):
    """open_clip's AdamW split (no decay on 1-d gains and biases or the logit scale) and a schedule of
    a linear warm-up over the first tenth of ``steps``, then cosine decay to 0."""
    decay, rest = [], []
    for name, p in clip.model.named_parameters():
        (rest if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, steps // 10)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_world_clip(images: torch.Tensor, tokens: torch.Tensor, *, config: ClipConfig, seed: int,
                     device: torch.device | str = "cpu", weights: str = "world captions",
                     progress: bool = True) -> tuple[Clip, list[float]]:
    """A world CLIP of ``config`` fit to images (N, 3, R, R) in [0, 1] and caption tokens
    (N, 2, k, L) (:func:`caption_tokens`) on ``device``, built from the seeded RNG of (``seed``,
    ``STAGE``); batches drawn from a generator seeded with ``seed``. Returns it (eval mode) and
    the mean ClipLoss of each epoch.

    Groups: images (N, V, 3, R, R) and tokens (N, V, 2, k, L) hold each render with its V - 1
    counterfactuals (:class:`Counterfactual`); a step takes ``config.batch // V`` whole groups, so
    a render and its counterfactuals are each other's negatives."""
    if images.ndim == 4:
        images, tokens = images[:, None], tokens[:, None]
    with seeded_build(seed, STAGE):
        clip = world_clip(config, weights=weights)
    clip = clip.to(device)
    n, v, k = images.shape[0], images.shape[1], tokens.shape[3]
    groups = max(1, config.batch // v)
    steps_per_epoch = -(-n // groups)
    opt, sched = _optimiser(clip, config, config.epochs * steps_per_epoch)
    loss_fn = open_clip.ClipLoss()
    g = seeded_generator(seed, device)
    curve = []
    bar = tqdm(total=config.epochs * steps_per_epoch, desc="world CLIP", leave=False, disable=not progress)
    for _ in range(config.epochs):
        clip.train()
        order = torch.randperm(n, generator=g, device=g.device).cpu()
        total = 0.0
        for start in range(0, n, groups):
            idx = order[start:start + groups]
            x = degrade(images[idx].flatten(0, 1).to(device), g)
            m = len(x)
            flip = (torch.rand(m, generator=g, device=g.device) < 0.5) & config.mirror
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            pick = torch.randint(k, (m,), generator=g, device=g.device)
            rows = torch.arange(m, device="cpu")
            text = tokens[idx].flatten(0, 1)[rows, flip.long().cpu(), pick.cpu()].to(device)
            image_features = clip.model.encode_image(clip.preprocess(x), normalize=True)
            text_features = clip.model.encode_text(text, normalize=True)
            loss = loss_fn(image_features, text_features, clip.model.logit_scale.exp())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                clip.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            total += loss.item() * m
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        curve.append(total / (n * v))
    bar.close()
    return clip.eval(), curve


def counterfactual_renders(*, cache, world: WorldConfig, n_per_look: int, looks: tuple[str, ...], seed: int,
                           device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The training renders (``datasets.cached_pose_set``, split ``train``) again, once per
    :class:`Counterfactual`: identities (C, N, D) and images (C, N, 3, R, R) with the same cameras,
    looks and light; through the artefact cache."""
    from portraitlib.world.datasets import pose_set_draws, pose_set_world, render_set

    def build() -> dict:
        g = torch.Generator(device="cpu").manual_seed(seed * 10_000 + COUNTERFACTUAL_OFFSET)
        draws = pose_set_draws(n_per_look, looks=looks, split="train", seed=seed)
        config = pose_set_world(world)
        latents, images = [], []
        for change in Counterfactual:
            edited = [(look, change.edit(z, g), angles, scene) for look, z, angles, scene in draws]
            latents.append(torch.cat([z for _, z, _, _ in edited]))
            images.append(torch.cat([render_set(z, angles, look=look, config=config, scene=scene,
                                                progress=f"world CLIP counterfactuals/{change.name.lower()}/{look}",
                                                device=device).images
                                     for look, z, angles, scene in edited]))
        return {"latents": torch.stack(latents), "images": torch.stack(images)}

    key = {"world": dataclasses.asdict(world), "looks": list(looks), "n_per_look": n_per_look,
           "changes": [c.value for c in Counterfactual], "code": module_version(__name__)}
    stored = cache.get_or_build(f"{STAGE}-counterfactuals", key, build)
    return stored["latents"], stored["images"]


def study_world_clip(*, cache, world: WorldConfig, config: ClipConfig, seed: int,
                     device: torch.device | str = "cpu", progress: bool = True) -> tuple[Clip, dict]:
    """The study's world CLIP, trained on first use and cached (keyed on the world, the CLIP's
    settings and this code); on ``device``. Returns it and ``curve`` (mean loss per epoch),
    ``seconds`` (training wall time), ``n_images``, ``looks`` and ``example_captions``."""
    from portraitlib.world.datasets import cached_pose_set

    looks = ("real", *world.styles)
    key = {"world": dataclasses.asdict(world), "clip": settings_key(config), "code": module_version(__name__)}
    label = f"world captions, profile {cache.profile} seed {seed} ({cache.path(STAGE, key).name})"

    def build():
        data = cached_pose_set(cache=cache, n_per_look=config.n_per_look, looks=looks, split="train", seed=seed,
                               config=world)
        latents, images = data.latents[None], data.images[None]
        if config.counterfactuals:
            more_latents, more_images = counterfactual_renders(cache=cache, world=world, n_per_look=config.n_per_look,
                                                               looks=looks, seed=seed, device=device)
            latents, images = torch.cat([latents, more_latents]), torch.cat([images, more_images])
        start = time.perf_counter()
        row_looks = [look for look in looks for _ in range(config.n_per_look)]
        tokenizer = open_clip.SimpleTokenizer(context_length=config.context_length)
        named = tuple(change.attribute for change in Counterfactual) if config.counterfactuals else ()
        tokens = [caption_tokens(z, data.angles, row_looks, k=config.captions_per_image, seed=seed + v,
                                 tokenizer=tokenizer, named=named) for v, z in enumerate(latents)]
        clip, curve = train_world_clip(images.transpose(0, 1), torch.stack([t for t, _ in tokens], 1), config=config,
                                       seed=seed, device=device, weights=label, progress=progress)
        return {"state_dict": {k: v.cpu() for k, v in clip.model.state_dict().items()},
                "curve": torch.tensor(curve, device="cpu"), "seconds": time.perf_counter() - start,
                "n_images": images.shape[0] * images.shape[1], "example_captions": tokens[0][1]}

    stored = cache.get_or_build(STAGE, key, build)
    with seeded_build(seed, STAGE):
        clip = world_clip(config, weights=label)
    clip.model.load_state_dict(stored["state_dict"])
    return clip.to(device).eval(), {"looks": list(looks), "curve": stored["curve"].tolist(),
                                    "seconds": stored["seconds"], "n_images": stored["n_images"],
                                    "example_captions": stored["example_captions"]}


def study_clip(ctx, *, progress: bool = True) -> tuple[Clip, dict]:
    """The CLIP of a study's CLIP scores: real weights when the profile names them
    (``clip.pretrained_model`` and ``clip.pretrained_weights``, under the cache's ``weights/``), the
    released world CLIP when it names one (``clip.source_checkpoint``, its settings checked), else the
    world CLIP trained here (:func:`study_world_clip`); with its training info (empty for real weights)."""
    config = ctx.profile.clip
    if config.pretrained_weights:
        return load_pretrained(config.pretrained_model, weights_path(config.pretrained_weights), device=ctx.device), {}
    if config.source_checkpoint:
        return load_released(weights_path(config.source_checkpoint), world=ctx.profile.world, config=config,
                             device=ctx.device)
    return study_world_clip(cache=ctx.cache, world=ctx.profile.world, config=config, seed=ctx.seed,
                            device=ctx.device, progress=progress)
