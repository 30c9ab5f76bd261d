"""The pretrained 3D generator G (AgileGAN3D Sec. 3: EG3D) that the later notebooks fine-tune and invert.

    data = generator3d.at_resolution(study_data.load_images(ctx), generator3d.generator_config(ctx).img_resolution)
    G, D, E, art = generator3d.pretrained(ctx, data, nets)
    ws = encode_3d(E, G, photos)          # the z-space codes of photos, through G's mapping

Paper profile: the official ffhq512-128 G_ema and D, and a z-space encoder trained on the frozen G.
Mini profile: the released G_world and its D (``weights/G_world-mini``, ``python -m portraitlib.pretrain``)
the same way.
World profiles: G learns the world's real photos in three cached stages - a supervised warm start
(z-space VAE with G: L1 to the photo and to its true depth, KL), the EG3D recipe (dual
discrimination, pose-conditioning swap, R1 on both images, density regulariser, blur fade, EMA)
keeping the step with the best KID to training photos, then the encoder refined on the frozen G.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from portraitlib import metrics
from portraitlib.device import device_of, seeded_generator
from portraitlib.nets import configs
from portraitlib.nets.checkpoints import load_eg3d_pickle, load_into
from portraitlib.world.folder_images import FolderImages
from portraitlib.nets.discriminators import DiscriminatorConfig, DualDiscriminator, eg3d_paper_config
from portraitlib.nets.encoders import HierarchicalVAEEncoder
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.paths import weights_path
from portraitlib.pretrain.card import load_generator_3d
from portraitlib.settings import settings_key
from portraitlib.provenance import module_version
from portraitlib.study_data import LossNets, StudyImages
from portraitlib.training.eg3d import Train3DSettings, train_3d
from portraitlib.training.warm3d import VAE3DSettings, train_vae_3d


def generator_config(ctx) -> configs.TriPlaneConfig:
    """G's sizes for the profile (``eg3d.generator``)."""
    return configs.named(ctx.profile.eg3d.generator)


def discriminator_config(cfg: configs.TriPlaneConfig) -> DiscriminatorConfig:
    """The dual discriminator that goes with G: the official one for the paper's G, else one at
    G's resolution with G's channel cap."""
    if cfg == configs.PAPER:
        return eg3d_paper_config()
    return DiscriminatorConfig(img_resolution=cfg.img_resolution, channel_base=32 * cfg.img_resolution,
                               channel_max=cfg.channel_max)


def resize(images: torch.Tensor | FolderImages | None, size: int) -> torch.Tensor | FolderImages | None:
    """Images (N, C, R, R) resized (antialiased) to size x size; unchanged when already that size
    (a folder read on demand resizes each batch as it reads it)."""
    if images is None or images.shape[-1] == size:
        return images
    if isinstance(images, FolderImages):
        return images.resized(size)
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def at_resolution(data: StudyImages, size: int) -> StudyImages:
    """The study's images (and true depth) resized to G's output resolution where they differ."""
    return dataclasses.replace(
        data, real_train=resize(data.real_train, size), real_test=resize(data.real_test, size),
        exemplars={s: resize(x, size) for s, x in data.exemplars.items()},
        train_depth=resize(data.train_depth, size), test_depth=resize(data.test_depth, size),
        test_mask=resize(data.test_mask, size),
        test_styled=None if data.test_styled is None else {s: resize(x, size) for s, x in data.test_styled.items()})


@torch.no_grad()
def render(generator: TriPlaneGenerator, ws: torch.Tensor, labels: torch.Tensor, *, batch: int = 32,
           weights: bool = False, neural_rendering_resolution: int | None = None,
           ray_bounds: tuple[float, float] | None = None) -> dict[str, torch.Tensor]:
    """Deterministic renders of codes ws (N, num_ws, w_dim) at cameras (N, 25), in batches:
    ``image`` in [0, 1] (N, 3, R, R), ``image_raw``, ``image_depth`` and, with ``weights``, the
    ``opacity`` (N, 1, r, r); r is G's neural rendering resolution unless given, the rays' (near,
    far) G's config's unless ``ray_bounds`` (cameras at another distance). On G's device."""
    device = device_of(generator)
    ws, labels = ws.to(device), labels.to(device)
    parts = []
    for i in range(0, len(ws), batch):
        out = generator.synthesis(ws[i:i + batch], labels[i:i + batch], deterministic=True, return_weights=weights,
                                  neural_rendering_resolution=neural_rendering_resolution, ray_bounds=ray_bounds)
        part = {"image": ((out["image"] + 1) / 2).clamp(0, 1), "image_raw": ((out["image_raw"] + 1) / 2).clamp(0, 1),
                "image_depth": out["image_depth"]}
        if weights:
            r = out["image_depth"].shape[-1]
            part["opacity"] = out["weights"].sum(-2).reshape(len(out["weights"]), 1, r, r)
        parts.append(part)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


class RenderKID:
    """KID (on ``features``'s trunk, VGG16 in the study: :func:`metrics.kid_name`) between reference
    images and G's renders of fixed z at fixed cameras (the mapping conditioned on the same camera,
    as EG3D's FID does); lower is better."""

    def __init__(self, *, features: metrics.LPIPS, reference: torch.Tensor, labels: torch.Tensor, z_dim: int,
                 seed: int):
        self.features, self.labels, self.seed = features, labels, seed
        self.z = torch.randn(len(labels), z_dim, generator=seeded_generator(seed, labels.device), device=labels.device)
        self.reference = features.features(reference)
        self.name = metrics.kid_name(features)

    @torch.no_grad()
    def images(self, generator: TriPlaneGenerator) -> torch.Tensor:
        return render(generator, generator.mapping(self.z, self.labels), self.labels)["image"]

    def __call__(self, generator: TriPlaneGenerator) -> float:
        return metrics.kid(self.reference, self.features.features(self.images(generator)), seed=self.seed)


def _criterion(ctx, data: StudyImages, nets: LossNets, z_dim: int, n: int = 128) -> RenderKID:
    """Early stopping scores against training photos, so the held-out ones stay for reporting."""
    g = ctx.generator()
    ref = data.real_train[torch.randperm(len(data.real_train), generator=g, device=g.device)[:2 * n]]
    labels = data.train_labels[torch.randperm(len(data.train_labels), generator=g, device=g.device)[:n]]
    return RenderKID(features=nets.kid_features, reference=ref, labels=labels, z_dim=z_dim, seed=ctx.seed)


def _key(ctx, nets: LossNets, **extra) -> dict:
    return {"world": dataclasses.asdict(ctx.profile.world), "eg3d": settings_key(ctx.profile.eg3d), "nets": nets.names(),
            "code": module_version(__name__), **extra}


def _encoder(cfg: configs.TriPlaneConfig) -> HierarchicalVAEEncoder:
    return HierarchicalVAEEncoder(img_resolution=cfg.img_resolution, num_ws=1, z_dim=cfg.z_dim)


def build_networks(ctx, cfg: configs.TriPlaneConfig, art: dict | None = None, *, stage: str = "eg3d"
                   ) -> tuple[TriPlaneGenerator, DualDiscriminator, HierarchicalVAEEncoder]:
    """G, D and E at ``cfg`` on ``ctx.device`` (built in the RNG of ``stage``), holding an
    artefact's weights when one is given (G and E frozen)."""
    g, d, e = ctx.build(stage, lambda: (TriPlaneGenerator(config=cfg), discriminator_config(cfg).build(), _encoder(cfg)))
    if art is not None:
        g.load_state_dict(art["G"])
        d.load_state_dict(art["D"])
        e.load_state_dict(art["E"])
        g.eval().requires_grad_(False)
        e.eval().requires_grad_(False)
    return g, d, e


def pretrained(ctx, data: StudyImages, nets: LossNets, *, progress: bool = True
               ) -> tuple[TriPlaneGenerator, DualDiscriminator, HierarchicalVAEEncoder, dict]:
    """G (frozen), its D, the z-space encoder E of photos, and the cached artefact (curves, seconds,
    ``source``). ``data`` must be at G's resolution (:func:`at_resolution`)."""
    prof, cfg = ctx.profile.eg3d, generator_config(ctx)
    if data.real_train.shape[-1] != cfg.img_resolution:
        raise ValueError(f"images are {data.real_train.shape[-1]} px but G renders {cfg.img_resolution} px: "
                         "pass generator3d.at_resolution(data, G's resolution)")
    official = _official_path(prof.source_checkpoint) if prof.source_checkpoint else None
    key = _key(ctx, nets)
    vae = VAE3DSettings(steps=prof.encoder_steps, batch=prof.batch, depth_weight=prof.depth_weight,
                        kl_weight=prof.kl_weight, perceptual_weight=0.5)

    def build() -> dict:
        g, d, enc = build_networks(ctx, cfg)
        seconds, logs = {}, {}
        if official is not None and official.suffix == ".safetensors":
            released, d_state = load_generator_3d(official, config=cfg)
            g.load_state_dict(released.state_dict())
            if d_state is not None:
                d.load_state_dict(d_state)
            source = f"released {prof.source_checkpoint} (model card beside it)"
        elif official is not None:
            _load_official(g, d, official)
            source = f"official {prof.source_checkpoint}"
        else:
            source = "trained on the world's real photos"
            start = time.perf_counter()
            enc, logs["warm"] = train_vae_3d(
                enc, g, data.real_train, data.train_labels, depth=data.train_depth, perceptual=nets.perceptual,
                seed=ctx.seed, settings=dataclasses.replace(vae, steps=prof.warm_start_steps, generator_lr=1e-3),
                checkpoint=ctx.cache.resume_path("eg3d-warm", key), progress="G warm start" if progress else None)
            seconds["warm_start"] = time.perf_counter() - start
            g.requires_grad_(True)
            start = time.perf_counter()
            g, logs["gan"] = train_3d(
                g, d, data.real_train, data.train_labels, seed=ctx.seed, evaluate=_criterion(ctx, data, nets, cfg.z_dim),
                latents=PosteriorZ(enc, data.real_train) if prof.fake_latents == "posterior" else None,
                settings=Train3DSettings(steps=prof.adversarial_steps, batch=prof.batch, eval_every=prof.eval_every,
                                         blur_fade_images=prof.blur_fade_images, bf16=ctx.bf16),
                checkpoint=ctx.cache.resume_path("eg3d-gan", key), progress="G adversarial" if progress else None)
            seconds["adversarial"] = time.perf_counter() - start
        start = time.perf_counter()
        enc, logs["encoder"] = train_vae_3d(
            enc, g, data.real_train, data.train_labels, depth=data.train_depth, perceptual=nets.perceptual,
            seed=ctx.seed + 1, settings=vae, checkpoint=ctx.cache.resume_path("eg3d-encoder", key),
            progress="E on frozen G" if progress else None)
        seconds["encoder"] = time.perf_counter() - start
        return {"G": g.state_dict(), "D": d.state_dict(), "E": enc.state_dict(), "logs": logs, "seconds": seconds,
                "source": source, "criterion": _criterion(ctx, data, nets, cfg.z_dim).name}

    art = ctx.cache.get_or_build("eg3d-pretrained", key, build, stages=("eg3d-warm", "eg3d-gan", "eg3d-encoder"))
    return (*build_networks(ctx, cfg, art), art)


class PosteriorZ:
    """Draws z (n, z_dim) from the z-space VAE's posterior of random real photos."""

    def __init__(self, encoder: HierarchicalVAEEncoder, images: torch.Tensor, *, batch: int = 128):
        with torch.no_grad():
            encoder.eval()
            parts = [encoder(images[i:i + batch]) for i in range(0, len(images), batch)]
        self.mu = torch.cat([m[:, 0] for m, _ in parts])
        self.sigma = torch.cat([(0.5 * lv[:, 0]).exp() for _, lv in parts])

    def __call__(self, n: int, rng: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.mu), (n,), generator=rng, device=rng.device).to(self.mu.device)
        return self.mu[idx] + self.sigma[idx] * torch.randn(self.mu[idx].shape, generator=rng, device=rng.device)


def _official_path(name: str) -> Path:
    path = weights_path(name)
    if path.suffix == ".safetensors" and not path.is_file():
        raise FileNotFoundError(f"G_world weights {path} not found: `make pretrain` makes them "
                                "(python -m portraitlib.pretrain --profile mini --model G_world)")
    if not path.is_file():
        raise FileNotFoundError(
            f"EG3D checkpoint {path} not found. Download NVIDIA's ffhq512-128.pkl (EG3D release on NGC) "
            "and put it there, or set eg3d.source_checkpoint to its path.")
    return path


def _load_official(g: TriPlaneGenerator, d: DualDiscriminator, path: Path) -> None:
    load_into(g, load_eg3d_pickle(path, which="G_ema").state_dict)
    load_into(d, load_eg3d_pickle(path, which="D").state_dict)


def pure_adversarial(ctx, data: StudyImages, nets: LossNets, *, steps: int, progress: bool = True) -> dict:
    """G trained by the EG3D recipe alone from scratch for ``steps`` (no warm start), scored by the
    same criterion: what the warm start buys. Cached; returns its curves, seconds and samples."""
    cfg = generator_config(ctx)
    key = _key(ctx, nets, steps=steps)

    def build() -> dict:
        g, d, _ = build_networks(ctx, cfg, stage="eg3d-baseline")
        criterion = _criterion(ctx, data, nets, cfg.z_dim)
        start = time.perf_counter()
        g_ema, log = train_3d(g, d, data.real_train, data.train_labels, seed=ctx.seed, evaluate=criterion,
                              settings=Train3DSettings(steps=steps, batch=ctx.profile.eg3d.batch,
                                                       eval_every=ctx.profile.eg3d.eval_every,
                                                       blur_fade_images=ctx.profile.eg3d.blur_fade_images, bf16=ctx.bf16),
                              progress="G pure adversarial" if progress else None)
        return {"G": g_ema.state_dict(), "log": log, "seconds": time.perf_counter() - start}

    return ctx.cache.get_or_build("eg3d-baseline", key, build)

