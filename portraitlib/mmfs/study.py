"""MMFS's stages for notebook 11, each a cached artefact keyed by its settings, S and this code:

    styled = style_set(ctx)                                           # the AAHQ stand-in
    net, art = network(ctx, data, nets, S, source, styled)             # Stage I, then Stage II
    M, m_art = clip_mapping(ctx, net, art, clip, data)                 # Eq. (6)
    net_p, codes, g_art = guided(ctx, net, M, clip, nets, data, prompt=Prompt.of_text("..."))  # Eq. (7) or (8)
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from portraitlib import cameras, metrics
from portraitlib.cache import tensor_digest
from portraitlib.mmfs.config import MMFSConfig
from portraitlib.mmfs.losses import SelfSimilarity
from portraitlib.mmfs.mapping import CLIPMapping
from portraitlib.mmfs.model import MMFS
from portraitlib.mmfs.training import Guide, finetune, stage_one, stage_two, train_mapping
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.provenance import module_version
from portraitlib.study_data import LossNets, StudyImages
from portraitlib.training.gan2d import GAN2DConfig, build_2d
from portraitlib.world.datasets import cached_views
from portraitlib.world.identity import sample_latents

STYLE_SET_OFFSET = 9_000
"""Seed offset of the style set's identities (seed * 10000 + 9000: no other split uses it)."""
ANCHOR_TEXT = "a photo of a person"
"""The zero-shot direction's anchor text (Eq. 7): the world CLIP's phrase for the real look."""


NETWORK_FIELDS = ("feature_resolution", "encoder_width", "batch", "stage1_steps", "stage1_lr", "perceptual_weight",
                  "stage2_steps", "structure_weight", "structure_layer", "r1_gamma", "ema_half_life", "style_images",
                  "eval_every")
"""The ``mmfs`` settings Stages I and II depend on (their cache key)."""
MAPPING_FIELDS = ("batch", "perceptual_weight", "ema_half_life", "mapping_steps", "mapping_lr", "mapping_layers",
                  "mapping_heads")
"""The settings the CLIP mapping depends on, beside the network it maps into."""
GUIDED_FIELDS = ("batch", "mapping_lr", "structure_layer", "finetune_steps", "finetune_ema_half_life", "clip_weight",
                 "projection_weight", "token_layer")
"""The settings a guided fine-tuning depends on, beside the network and the mapping."""


def _fields(config: MMFSConfig, names: tuple[str, ...]) -> dict:
    return {name: getattr(config, name) for name in names}


def style_set(ctx, *, styles: tuple[str, ...] | None = None, n: int | None = None) -> torch.Tensor:
    """Stage II's real images (the paper's AAHQ): ``n`` (``mmfs.style_images``) renders of each of
    ``styles`` (the profile's), each of an identity of its own at an FFHQ-like pose; (S * n, 3, R, R)
    in [0, 1] on ``ctx.device``, cached."""
    styles = tuple(ctx.profile.world.styles) if styles is None else styles
    n = ctx.profile.mmfs.style_images if n is None else n
    g = torch.Generator(device="cpu").manual_seed(ctx.seed * 10_000 + STYLE_SET_OFFSET)
    parts = []
    for look in styles:
        latents = sample_latents(n, generator=g)
        angles = cameras.sample_poses(n, generator=g, kind="ffhq")
        parts.append(cached_views(cache=ctx.cache, latents=latents, angles=angles, look=look,
                                  config=ctx.profile.world, device=ctx.device).images)
    return torch.cat(parts).to(ctx.device)


def _source_discriminator(ctx, source_art: dict):
    if "D" not in source_art:
        raise ValueError(f"MMFS needs S's discriminator (Eq. 1's perceptual term, Stage II's D); "
                         f"{source_art.get('source', 'this S')} has none (a rosinality .pt holds only G)")
    d = ctx.build("mmfs-d", lambda: build_2d(GAN2DConfig(**source_art["gan_config"]))[1])
    d.load_state_dict(source_art["D"])
    return d


class HeldOutKID:
    """Stage II's early-stopping score: KID (VGG16 trunk features) between the net's stylizations of
    the held-out photos, one fixed style noise each, and the true renders of those photos in every
    training style, pooled (lower is better)."""

    def __init__(self, *, features, photos: torch.Tensor, truth: torch.Tensor, z_dim: int, seed: int):
        self.features, self.photos, self.seed = features, photos, seed
        self.z = torch.randn(len(photos), z_dim, generator=torch.Generator(device="cpu").manual_seed(seed),
                             device="cpu")
        self.reference = features.features(truth)

    @torch.no_grad()
    def __call__(self, net: MMFS) -> float:
        device = next(net.parameters()).device
        images = torch.cat([((net(self.photos[i:i + 64] * 2 - 1, net.styles(self.z[i:i + 64].to(device))) + 1) / 2)
                            .clamp(0, 1) for i in range(0, len(self.photos), 64)])
        return metrics.kid(self.features.features(images), self.reference, seed=self.seed)


def network(ctx, data: StudyImages, nets: LossNets, source: StyleGAN2Generator, source_art: dict,
            styled: torch.Tensor, *, progress: bool = True) -> tuple[MMFS, MMFS, dict]:
    """E, D and the mapping after Stage I (E against S, Eq. 1) and after Stage II (all three on
    ``styled``, Eqs. 2-5; :class:`HeldOutKID` picks the EMA weights). Returns both nets (frozen)
    and the artefact (weights, Stage II's D, curves, seconds, the structure network's name)."""
    cfg = ctx.profile.mmfs
    key = {"S": tensor_digest(*source.state_dict().values()), "mmfs": _fields(cfg, NETWORK_FIELDS),
           "styled": tensor_digest(styled),
           "photos": tensor_digest(data.real_train[:64]), "structure": nets.kid_features.name,
           "code": module_version(__name__)}

    def make() -> MMFS:
        return MMFS.from_source(source, feature_resolution=cfg.feature_resolution, encoder_width=cfg.encoder_width)

    def build() -> dict:
        d_source = _source_discriminator(ctx, source_art)
        start = time.perf_counter()
        first, log1 = stage_one(ctx.build("mmfs", make), source, d_source, config=cfg, seed=ctx.seed,
                                checkpoint=ctx.cache.resume_path("mmfs-stage1", key),
                                progress="MMFS stage I (E)" if progress else None)
        seconds1 = time.perf_counter() - start
        similarity = SelfSimilarity(nets.kid_features, layer=cfg.structure_layer)
        truth = torch.cat([data.test_styled[s] for s in ctx.profile.world.styles])
        criterion = HeldOutKID(features=nets.kid_features, photos=data.real_test, truth=truth, z_dim=first.z_dim,
                               seed=ctx.seed)
        d = copy.deepcopy(d_source)
        start = time.perf_counter()
        second, log2 = stage_two(copy.deepcopy(first), d, data.real_train, styled, similarity, config=cfg,
                                 seed=ctx.seed, evaluate=criterion if cfg.eval_every else None,
                                 checkpoint=ctx.cache.resume_path("mmfs-stage2", key),
                                 progress="MMFS stage II (E, D, mapping)" if progress else None)
        return {"stage1": first.state_dict(), "stage2": second.state_dict(), "D": d.state_dict(),
                "gan_config": source_art["gan_config"], "log1": log1, "log2": log2, "structure": similarity.name,
                "seconds": {"stage1": seconds1, "stage2": time.perf_counter() - start}}

    art = ctx.cache.get_or_build("mmfs-network", key, build, stages=("mmfs-stage1", "mmfs-stage2"))
    nets_out = []
    for stage in ("stage1", "stage2"):
        net = ctx.build("mmfs", make)
        net.load_state_dict(art[stage])
        nets_out.append(net.eval().requires_grad_(False))
    return nets_out[0], nets_out[1], art


def clip_mapping(ctx, net: MMFS, network_art: dict, clip, data: StudyImages, *, progress: bool = True
                 ) -> tuple[CLIPMapping, dict]:
    """M (Eq. 6) trained on the photos' random stylizations by ``net`` (Stage II's), with Stage
    II's D as the perceptual network; cached. Returns M (frozen) and its artefact."""
    cfg = ctx.profile.mmfs
    key = {"net": tensor_digest(*net.state_dict().values()), "mmfs": _fields(cfg, MAPPING_FIELDS), "clip": clip.weights,
           "clip_name": clip.name, "code": module_version(__name__)}
    with torch.no_grad():
        z = torch.randn(4096, net.z_dim, generator=torch.Generator(device="cpu").manual_seed(ctx.seed), device="cpu")
        w_avg = net.styles(z.to(ctx.device)).mean(0)
    dim = clip.encode_texts([ANCHOR_TEXT]).shape[-1]

    def make() -> CLIPMapping:
        return CLIPMapping(clip_dim=dim, num_ws=net.num_ws, w_dim=net.w_dim, layers=cfg.mapping_layers,
                           heads=cfg.mapping_heads, w_avg=w_avg.cpu())

    def build() -> dict:
        d = _source_discriminator(ctx, network_art)
        start = time.perf_counter()
        mapping, log = train_mapping(ctx.build("mmfs-mapping", make), net, d, data.real_train, clip, config=cfg,
                                     seed=ctx.seed, checkpoint=ctx.cache.resume_path("mmfs-mapping", key),
                                     progress="MMFS CLIP mapping" if progress else None)
        return {"M": mapping.state_dict(), "log": log, "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build("mmfs-mapping", key, build, stages=("mmfs-mapping",))
    mapping = ctx.build("mmfs-mapping", make)
    mapping.load_state_dict(art["M"])
    return mapping.eval().requires_grad_(False), art


@dataclass(frozen=True)
class Prompt:
    """A guided stylization's prompt: a text (zero-shot, Eq. 7) or a reference image (one-shot, Eq. 8)."""

    name: str
    """Its label in tables and cache keys."""
    text: str | None = None
    """The text prompt, or None."""
    image: torch.Tensor | None = None
    """(1, 3, R, R) in [0, 1]: the reference, or None."""

    def __post_init__(self):
        if (self.text is None) == (self.image is None):
            raise ValueError("a prompt is a text or an image, exactly one of them")


def guided(ctx, net: MMFS, mapping: CLIPMapping, clip, nets: LossNets, data: StudyImages, *, prompt: Prompt,
           config: MMFSConfig | None = None, progress: bool = True) -> tuple[MMFS, torch.Tensor, dict]:
    """The decoder fine-tuned to ``prompt`` (Eq. 7 for a text, Eq. 8 for an image) with ``config``
    (default the profile's ``mmfs``; an ablation changes a weight), cached. Returns the net (frozen),
    its codes c_w+ (1, num_ws, w_dim) and the artefact (weights, curves, seconds)."""
    cfg = ctx.profile.mmfs if config is None else config
    key = {"net": tensor_digest(*net.state_dict().values()), "M": tensor_digest(*mapping.state_dict().values()),
           "prompt": prompt.text if prompt.text is not None else tensor_digest(prompt.image),
           "mmfs": _fields(cfg, GUIDED_FIELDS),
           "clip": clip.weights, "structure": nets.kid_features.name, "code": module_version(__name__)}
    stage = f"mmfs-guided-{prompt.name}"
    guide = (Guide.text(clip, prompt.text, anchor=ANCHOR_TEXT) if prompt.text is not None else
             Guide.image(clip, prompt.image.to(ctx.device), data.real_train[:256], layer=cfg.token_layer))

    def build() -> dict:
        similarity = SelfSimilarity(nets.kid_features, layer=cfg.structure_layer)
        start = time.perf_counter()
        tuned, codes, log = finetune(net, mapping, data.real_train, clip, similarity, guide=guide, config=cfg,
                                     seed=ctx.seed, progress=f"MMFS fine-tuning to {prompt.name}" if progress else None)
        return {"net": tuned.state_dict(), "codes": codes, "log": log, "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build(stage, key, build)
    tuned = copy.deepcopy(net)
    tuned.load_state_dict(art["net"])
    return tuned.eval().requires_grad_(False), art["codes"].to(ctx.device), art
