"""Training the world CLIP: open_clip's ``CLIP`` and ``ClipLoss`` on the world's captioned renders.

The renders are the pose regressor's (every look, new identities, yaw +-45 and pitch +-20, varied
light for the real look; ``datasets.cached_pose_set``); each gets ``captions_per_image`` captions
of its true factors (``world.captions``) and as many of its mirror image. Every step degrades the
batch like the look classifier's (blur, noise, colour jitter: generated images are not crisp
renders), mirrors half of it with the mirrored captions when ``config.mirror`` (off by default: see
``ClipConfig.mirror``), and reads one caption per image. The
recipe is open_clip's: AdamW (betas 0.9, 0.98, eps 1e-6; no decay on gains, biases and the
temperature), linear warm-up then cosine decay, the temperature clamped at 100.

    clip, info = study_world_clip(cache=ctx.cache, world=cfg.world, config=cfg.clip, seed=ctx.seed)
"""
from __future__ import annotations

import dataclasses
import math
import random
import time

import open_clip
import torch
from tqdm.auto import tqdm

from portraitlib.clip.model import Clip, load_pretrained, world_clip
from portraitlib.device import seeded_build, seeded_generator
from portraitlib.look import degrade
from portraitlib.paths import weights_path
from portraitlib.profiles import ClipConfig, WorldConfig, settings_key
from portraitlib.provenance import module_version
from portraitlib.world.captions import Description, describe, mirror, training_captions

STAGE = "world-clip"
"""Name of the world CLIP's artefact and of its seeded build."""
MAX_LOGIT_SCALE = math.log(100)
"""open_clip's clamp of the learnt temperature (logit scale at most 100)."""


def caption_tokens(latents: torch.Tensor, angles: torch.Tensor, looks: list[str], *, k: int, seed: int,
                   tokenizer) -> tuple[torch.Tensor, list[str]]:
    """Tokens (N, 2, k, L) of ``k`` captions of each render (row 0) and of its mirror image (row 1),
    for renders of identities (N, D) at angles (N, 3) in ``looks`` (N names); drawn from a
    ``random.Random(seed)``. Also returns the captions of the first render, as examples."""
    rng = random.Random(seed)
    views = [_describe_rows(latents, angles, looks), _describe_rows(*mirror(latents, angles), looks)]
    texts = [text for i in range(len(looks)) for view in views for text in training_captions(view[i], k=k, rng=rng)]
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
    the mean ClipLoss of each epoch."""
    with seeded_build(seed, STAGE):
        clip = world_clip(config, weights=weights)
    clip = clip.to(device)
    n, k = len(images), tokens.shape[2]
    steps_per_epoch = -(-n // config.batch)
    opt, sched = _optimiser(clip, config, config.epochs * steps_per_epoch)
    loss_fn = open_clip.ClipLoss()
    g = seeded_generator(seed, device)
    curve = []
    bar = tqdm(total=config.epochs * steps_per_epoch, desc="world CLIP", leave=False, disable=not progress)
    for _ in range(config.epochs):
        clip.train()
        order = torch.randperm(n, generator=g, device=g.device).cpu()
        total = 0.0
        for start in range(0, n, config.batch):
            idx = order[start:start + config.batch]
            x = degrade(images[idx].to(device), g)
            flip = (torch.rand(len(idx), generator=g, device=g.device) < 0.5) & config.mirror
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            pick = torch.randint(k, (len(idx),), generator=g, device=g.device)
            text = tokens[idx, flip.long().cpu(), pick.cpu()].to(device)
            image_features = clip.model.encode_image(clip.preprocess(x), normalize=True)
            text_features = clip.model.encode_text(text, normalize=True)
            loss = loss_fn(image_features, text_features, clip.model.logit_scale.exp())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                clip.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            total += loss.item() * len(idx)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        curve.append(total / n)
    bar.close()
    return clip.eval(), curve


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
        start = time.perf_counter()
        row_looks = [look for look in looks for _ in range(config.n_per_look)]
        tokens, examples = caption_tokens(data.latents, data.angles, row_looks, k=config.captions_per_image,
                                          seed=seed, tokenizer=open_clip.SimpleTokenizer(context_length=config.context_length))
        clip, curve = train_world_clip(data.images, tokens, config=config, seed=seed, device=device, weights=label,
                                       progress=progress)
        return {"state_dict": {k: v.cpu() for k, v in clip.model.state_dict().items()},
                "curve": torch.tensor(curve, device="cpu"), "seconds": time.perf_counter() - start,
                "n_images": len(data.images), "example_captions": examples}

    stored = cache.get_or_build(STAGE, key, build)
    with seeded_build(seed, STAGE):
        clip = world_clip(config, weights=label)
    clip.model.load_state_dict(stored["state_dict"])
    return clip.to(device).eval(), {"looks": list(looks), "curve": stored["curve"].tolist(),
                                    "seconds": stored["seconds"], "n_images": stored["n_images"],
                                    "example_captions": stored["example_captions"]}


def study_clip(ctx, *, progress: bool = True) -> tuple[Clip, dict]:
    """The CLIP of a study's CLIP scores: real weights when the profile names them
    (``clip.pretrained_model`` and ``clip.pretrained_weights``, under the cache's ``weights/``),
    else the world CLIP (:func:`study_world_clip`); with its training info (empty for real weights)."""
    config = ctx.profile.clip
    if config.pretrained_weights:
        return load_pretrained(config.pretrained_model, weights_path(config.pretrained_weights), device=ctx.device), {}
    return study_world_clip(cache=ctx.cache, world=ctx.profile.world, config=config, seed=ctx.seed,
                            device=ctx.device, progress=progress)
