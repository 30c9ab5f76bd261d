"""The 2D style prior (AgileGAN3D Sec. 3.1, AgileGAN): source S, inversion E, few-shot S -> S_t and
the prior sets that carry the real photo's camera label p:

    x_s = S_t(E(x)),   with p estimated from the real photo x, not from the stylized x_s

Those pairs (x_s, p) are L_prior's real samples (Eq. 1, ``prior_transfer``) and, with x, the
targets of L_guide (Eq. 5, ``guided_transfer``).

Every stage is a cached artefact keyed by its settings, so notebooks 01 to 08 share them:

    S, source = style_prior.source_generator(ctx, data, nets)
    E, _ = style_prior.inversion_encoder(ctx, data, nets, S, source, kind="hvae")
    S_t, transfer = style_prior.style_generator(ctx, data, nets, S, source, E, style="cartoon")
    folder = style_prior.prior_set(ctx, data, S_t, E, S, style="cartoon", regressor=regressor)
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from portraitlib import metrics
from portraitlib.cache import atomic_torch_save, safe_torch_load
from portraitlib.device import device_of
from portraitlib.nets.checkpoints import load_into
from portraitlib.nets.encoders import (HierarchicalVAEEncoder, WPlusEncoder, layer_groups, mean_w, sample_zplus,
                                       ws_from_zplus)
from portraitlib.nets.rosinality import load_stylegan2_rosinality
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.stylegan2_official import STYLEGAN2_HINT, load_stylegan2_pickle
from portraitlib.paths import weights_path
from portraitlib.pretrain.card import load_generator_2d
from portraitlib.settings import settings_key
from portraitlib.provenance import module_version
from portraitlib.study_data import LossNets, StudyImages
from portraitlib.training.gan2d import GAN2DConfig, TrainSettings, build_2d, train_2d
from portraitlib.training.inversion import InversionSettings, encode, train_encoder
from portraitlib.world import datasets


def gan_config(profile) -> GAN2DConfig:
    """The sizes of a world-trained S (and of S_world, ``python -m portraitlib.pretrain --model S_world``).

    With ``style_prior.world_code`` (mini), S is S_world, which differs from the official network:
    z is the head world's image code (``pretrain.world.IMAGE_CODE_DIM`` numbers, not normalised),
    the mapping learns at the full rate, and a direct linear path from w adds to the 16 x 16
    features (issue #26's probes on two CPU cores)."""
    sp, side = profile.style_prior, profile.world.image_size
    world = {"direct_resolution": 16, "mapping_lr_multiplier": 1.0, "normalize_z": False} if sp.world_code else {}
    return GAN2DConfig(resolution=side, z_dim=sp.z_dim, w_dim=sp.w_dim, mapping_layers=sp.mapping_layers,
                       channel_base=32 * side, channel_max=sp.channel_max, **world)


def _key(ctx, stage: str, **extra) -> dict:
    """The cache key of a style-prior stage: the world, the settings of this stage and the earlier
    ones (``settings.settings_key``; changing the transfer steps does not retrain S) and the code."""
    return {"world": dataclasses.asdict(ctx.profile.world),
            "style_prior": settings_key(ctx.profile.style_prior, stage=stage), "code": module_version(__name__), **extra}


class KIDCriterion:
    """Early-stopping score of a generator: KID (``features``'s trunk, VGG16 in the study) between reference images and
    the generator's images of fixed z+ codes (N, num_ws, z_dim), mapped by the generator's own
    mapping network at each call; lower is better."""

    def __init__(self, *, features: metrics.LPIPS, reference: torch.Tensor, codes: torch.Tensor, seed: int):
        self.features, self.codes, self.seed = features, codes, seed
        self.reference = features.features(reference)
        self.name = metrics.kid_name(features)

    @torch.no_grad()
    def images(self, generator: StyleGAN2Generator) -> torch.Tensor:
        return ((generator.synthesis(ws_from_zplus(generator.mapping, self.codes)) + 1) / 2).clamp(0, 1)

    def __call__(self, generator: StyleGAN2Generator) -> float:
        return metrics.kid(self.reference, self.features.features(self.images(generator)), seed=self.seed)


class PosteriorLatents:
    """Draws z+ codes (n, num_ws, z_dim) from a hierarchical VAE's posterior of real photos:
    mu + sigma * eps of random photos; ``mixed`` takes the coarse layers from one photo and the
    others from a second (new combinations, as style mixing makes)."""

    def __init__(self, encoder: HierarchicalVAEEncoder, images: torch.Tensor, *, batch: int = 256):
        with torch.no_grad():
            encoder.eval()
            parts = [encoder(images[i:i + batch]) for i in range(0, len(images), batch)]
        self.mu = torch.cat([m for m, _ in parts])
        self.sigma = torch.cat([(0.5 * lv).exp() for _, lv in parts])

    def _draw(self, idx: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        idx = idx.to(self.mu.device)
        return self.mu[idx] + self.sigma[idx] * torch.randn(self.mu[idx].shape, generator=rng, device=rng.device)

    def __call__(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return self._draw(torch.randint(len(self.mu), (n,), generator=rng, device=rng.device), rng)

    def mixed(self, n: int, rng: torch.Generator) -> torch.Tensor:
        first, second = self(n, rng), self(n, rng)
        coarse = layer_groups(self.mu.shape[1])[0]
        second[:, coarse] = first[:, coarse]
        return second


def source_generator(ctx, data: StudyImages, nets: LossNets, *, progress: bool = True
                     ) -> tuple[StyleGAN2Generator, dict]:
    """S: the official FFHQ checkpoint (``style_prior.source_checkpoint``), or a StyleGAN2 trained on
    the world's real photos: a joint hierarchical-VAE warm start (reconstruction, perceptual and
    KL losses) followed by the StyleGAN2 recipe (non-saturating loss, lazy R1, EMA), keeping the
    step with the best KID to held-out photos. Returns S (eval) and its artefact (``D``, the
    warm-start encoder, curves, seconds)."""
    sp = ctx.profile.style_prior
    if sp.source_checkpoint:
        return _official_source(ctx, weights_path(sp.source_checkpoint))
    cfg = gan_config(ctx.profile)
    key = _key(ctx, "source", nets=nets.names())

    def build() -> dict:
        def make():
            g, d = build_2d(cfg)
            return g, d, HierarchicalVAEEncoder(img_resolution=cfg.resolution, num_ws=g.num_ws, z_dim=cfg.z_dim)

        g, d, enc = ctx.build("style-source", make)
        start = time.perf_counter()
        enc, warm_log = train_encoder(
            enc, g, data.real_train, seed=ctx.seed, perceptual=nets.perceptual,
            settings=InversionSettings(steps=sp.warm_start_steps, batch=sp.batch, lr=2e-3, generator_lr=2e-3),
            checkpoint=ctx.cache.resume_path("style-source-warm", key), progress="S warm start" if progress else None)
        warm_seconds = time.perf_counter() - start
        g.requires_grad_(True)
        posterior = sp.fake_latents == "posterior"
        with torch.no_grad():
            codes = (enc(data.real_test)[0] if posterior else
                     sample_zplus(256, num_ws=g.num_ws, z_dim=cfg.z_dim, shared=False, generator=ctx.generator()))
            criterion = KIDCriterion(features=nets.kid_features, reference=data.real_test, seed=ctx.seed,
                                     codes=codes)
        start = time.perf_counter()
        g_ema, gan_log = train_2d(
            g, d, data.real_train, seed=ctx.seed, evaluate=criterion,
            latents=PosteriorLatents(enc, data.real_train) if posterior else None,
            settings=TrainSettings(steps=sp.adversarial_steps, batch=sp.batch, eval_every=sp.eval_every,
                                   zplus_prior=True, bf16=ctx.bf16),
            checkpoint=ctx.cache.resume_path("style-source-gan", key), progress="S adversarial" if progress else None)
        return {"G": g_ema.state_dict(), "D": d.state_dict(), "warm_encoder": enc.state_dict(),
                "gan_config": dataclasses.asdict(cfg), "warm_log": warm_log, "gan_log": gan_log,
                "seconds": {"warm_start": warm_seconds, "adversarial": time.perf_counter() - start},
                "criterion": criterion.name, "zplus_prior": True}

    art = ctx.cache.get_or_build("style-source", key, build, stages=("style-source-warm", "style-source-gan"))
    return _generator(ctx, cfg, art["G"]), art


def _generator(ctx, cfg: GAN2DConfig, state: dict) -> StyleGAN2Generator:
    g, _ = ctx.build("style-load", lambda: build_2d(cfg))
    g.load_state_dict(state)
    return g.eval().requires_grad_(False)


def _official_source(ctx, path: Path) -> tuple[StyleGAN2Generator, dict]:
    """S from an official file: an NVlabs pickle gives G_ema and D (which few-shot transfer fine-tunes),
    a rosinality ``.pt`` only its generator, the study's S_world release (``.safetensors``, made by
    ``python -m portraitlib.pretrain --model S_world``) G and its D."""
    if path.suffix == ".safetensors":
        released, recorded, d_state = load_generator_2d(path)
        cfg = GAN2DConfig(**recorded)
        if cfg != gan_config(ctx.profile):
            raise ValueError(f"{path} holds S at {cfg}, but the {ctx.profile.name} profile's style_prior section "
                             f"asks for {gan_config(ctx.profile)}: retrain it (make pretrain) or fix the profile")
        source = {"source": f"released {path.parent.name}/{path.name}", "zplus_prior": False,
                  "gan_config": dataclasses.asdict(cfg)}
        return released.to(ctx.device), source | ({"D": d_state} if d_state is not None else {})
    if not path.is_file():
        raise FileNotFoundError(
            f"StyleGAN2 FFHQ checkpoint {path} not found. {STYLEGAN2_HINT} (Or rosinality's "
            "stylegan2-ffhq-config-f.pt, which holds no discriminator for few-shot transfer.) "
            "`python -m portraitlib.run --profile paper --check` lists every missing file.")
    if path.suffix == ".pt":
        ckpt = load_stylegan2_rosinality(path)
        cfg, d_state = GAN2DConfig(**_gan2d_fields(ckpt.init_kwargs)), None
    else:
        ckpt, d_ckpt = load_stylegan2_pickle(path), load_stylegan2_pickle(path, which="D")
        if d_ckpt.init_kwargs["c_dim"] or ckpt.init_kwargs["c_dim"]:
            raise ValueError(f"{path.name} is a class-conditional StyleGAN2; the style prior needs an unconditional one")
        cfg = GAN2DConfig(**_gan2d_fields(ckpt.init_kwargs), mbstd_group_size=d_ckpt.init_kwargs["mbstd_group_size"])
        d_state = d_ckpt.state_dict
    g = ctx.build("style-load", lambda: build_2d(cfg)[0])
    load_into(g, ckpt.state_dict)
    source = {"source": path.name, "zplus_prior": False, "gan_config": dataclasses.asdict(cfg)}
    return g.eval().requires_grad_(False), source | ({"D": d_state} if d_state is not None else {})


def _gan2d_fields(init_kwargs: dict) -> dict:
    """GAN2DConfig fields of StyleGAN2Generator kwargs (3-channel, unconditional)."""
    return dict(resolution=init_kwargs["img_resolution"], z_dim=init_kwargs["z_dim"], w_dim=init_kwargs["w_dim"],
                mapping_layers=init_kwargs["mapping_layers"], channel_base=init_kwargs["channel_base"],
                channel_max=init_kwargs["channel_max"], conv_clamp=init_kwargs.get("conv_clamp"))


def pure_adversarial_baseline(ctx, data: StudyImages, nets: LossNets, *, steps: int, progress: bool = True) -> dict:
    """The same S trained by the StyleGAN2 recipe alone from scratch (no warm start), scored by the
    same criterion: what the warm start buys. Cached; returns its curves and seconds."""
    cfg = gan_config(ctx.profile)
    key = _key(ctx, "source", nets=nets.names(), steps=steps)

    def build() -> dict:
        g, d = ctx.build("style-source-baseline", lambda: build_2d(cfg))
        codes = sample_zplus(256, num_ws=g.num_ws, z_dim=cfg.z_dim, shared=True, generator=ctx.generator())
        criterion = KIDCriterion(features=nets.kid_features, reference=data.real_test, seed=ctx.seed, codes=codes)
        start = time.perf_counter()
        g_ema, log = train_2d(g, d, data.real_train, seed=ctx.seed, evaluate=criterion,
                              settings=TrainSettings(steps=steps, batch=ctx.profile.style_prior.batch,
                                                     eval_every=ctx.profile.style_prior.eval_every, bf16=ctx.bf16),
                              progress="S pure adversarial" if progress else None)
        samples = criterion.images(g_ema)[:16].clone()  # not a view: the file keeps only these
        return {"log": log, "seconds": time.perf_counter() - start, "samples": samples}

    return ctx.cache.get_or_build("style-source-baseline", key, build)


def inversion_encoder(ctx, data: StudyImages, nets: LossNets, generator: StyleGAN2Generator, source: dict, *,
                      kind: str, progress: bool = True) -> tuple[nn.Module, dict]:
    """An encoder into S trained on the real photos with S frozen: ``hvae`` (AgileGAN's hierarchical
    VAE into z+, from the warm-start encoder when there is one) or ``wplus`` (a plain W+ encoder).
    Losses: L1, perceptual, identity, and KL for ``hvae``; first, ``style_prior.encoder_synthetic_steps``
    on S's own samples (``training.inversion.latent_loss``). Returns it (eval) and its artefact."""
    if kind not in ("hvae", "wplus"):
        raise ValueError(f"kind must be 'hvae' or 'wplus', not {kind!r}")
    sp = ctx.profile.style_prior
    res = generator.img_resolution
    if data.real_train.shape[-1] != res:
        raise ValueError(f"the photos are {data.real_train.shape[-1]} px but S renders {res} px: the 2D stages work at "
                         f"S's resolution (world.image_size: {res}; `python -m portraitlib.prepare` aligns at it)")
    key = _key(ctx, "encoder", nets=nets.names(), kind=kind)

    def make() -> nn.Module:
        if kind == "hvae":
            return HierarchicalVAEEncoder(img_resolution=res, num_ws=generator.num_ws, z_dim=generator.z_dim)
        return WPlusEncoder(img_resolution=res, num_ws=generator.num_ws, w_dim=generator.w_dim,
                            w_avg=mean_w(generator))

    def build() -> dict:
        enc = ctx.build(f"style-encoder-{kind}", make)
        if kind == "hvae" and "warm_encoder" in source:
            enc.load_state_dict(source["warm_encoder"])
        start = time.perf_counter()
        enc, log = train_encoder(enc, generator, data.real_train, seed=ctx.seed, perceptual=nets.perceptual,
                                 identity=nets.identity,
                                 settings=InversionSettings(steps=sp.encoder_steps, batch=sp.batch,
                                                            synthetic_steps=sp.encoder_synthetic_steps,
                                                            synthetic_shared=not source["zplus_prior"]),
                                 checkpoint=ctx.cache.resume_path(f"style-encoder-{kind}", key),
                                 progress=f"encoder {kind}" if progress else None)
        return {"state": enc.state_dict(), "log": log, "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build(f"style-encoder-{kind}", key, build, stages=(f"style-encoder-{kind}",))
    enc = ctx.build(f"style-encoder-{kind}", make)
    enc.load_state_dict(art["state"])
    return enc.eval().requires_grad_(False), art


def style_generator(ctx, data: StudyImages, nets: LossNets, generator: StyleGAN2Generator, source: dict,
                    encoder: nn.Module, *, style: str, progress: bool = True,
                    diagnose=None) -> tuple[StyleGAN2Generator, dict]:
    """S_t: S and its discriminator fine-tuned adversarially on the style's exemplars with
    DiffAugment, the mapping network frozen (codes of E keep their meaning), and, as the profile
    says, the noise strengths too. Early stopping: every
    ``eval_every`` steps, KID between the exemplars and S_t(E(held-out photos)); the best step
    from ``transfer_select_from`` on is kept. ``diagnose(images) -> dict``, if given, is also called at each evaluation on those
    stylized photos (the world's ground-truth error; never used to choose). Cached per style."""
    sp = ctx.profile.style_prior
    key = _key(ctx, "transfer", nets=nets.names(), style=style)
    if "D" not in source:
        raise ValueError(f"few-shot transfer fine-tunes the source discriminator, and {source.get('source', 'this source')} "
                         "holds none (a rosinality .pt keeps only G): use NVIDIA's PyTorch pickle, which holds G and D")
    cfg = GAN2DConfig(**source["gan_config"])

    def build() -> dict:
        g, d = ctx.build("style-load", lambda: build_2d(cfg))
        g.load_state_dict(generator.state_dict())
        d.load_state_dict(source["D"])
        if not isinstance(encoder, HierarchicalVAEEncoder):
            raise ValueError("S -> S_t is scored through the hierarchical VAE encoder's codes of held-out photos")
        with torch.no_grad():
            codes = encoder(data.real_test)[0]
        criterion = KIDCriterion(features=nets.kid_features, reference=data.exemplars[style], codes=codes,
                                 seed=ctx.seed)
        def evaluate(g_ema):
            score = criterion(g_ema)
            return {"score": score, "diagnostics": diagnose(criterion.images(g_ema))} if diagnose else score

        latents = PosteriorLatents(encoder, data.real_train) if sp.fake_latents == "posterior" else None
        start = time.perf_counter()
        g_t, log = train_2d(g, d, data.exemplars[style], seed=ctx.seed, evaluate=evaluate, latents=latents,
                            settings=TrainSettings(steps=sp.transfer_steps, batch=sp.transfer_batch, augment=True,
                                                   lr=sp.transfer_lr, ema_half_life=sp.transfer_ema_half_life,
                                                   freeze_noise=sp.transfer_freeze_noise,
                                                   eval_every=sp.eval_every, select_from=sp.transfer_select_from,
                                                   freeze_mapping=True,
                                                   zplus_prior=source.get("zplus_prior", False), bf16=ctx.bf16),
                            checkpoint=ctx.cache.resume_path(f"style-transfer-{style}", key),
                            progress=f"S -> S_t {style}" if progress else None)
        diagnostics = [row["diagnostics"] for row in log.pop("evaluations", [])]
        return {"G": g_t.state_dict(), "log": log, "diagnostics": diagnostics, "criterion": criterion.name,
                "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build(f"style-transfer-{style}", key, build, stages=(f"style-transfer-{style}",))
    return _generator(ctx, cfg, art["G"]), art


def unpaired_codes(ctx, data: StudyImages, encoder: nn.Module, generator: StyleGAN2Generator, n: int, *,
                   generator_rng: torch.Generator, zplus_prior: bool) -> torch.Tensor:
    """z+ codes (n, num_ws, z_dim) of unpaired samples: mixed posterior codes of two real photos
    (``fake_latents: posterior``) or prior draws (one z for all layers unless ``zplus_prior``)."""
    if ctx.profile.style_prior.fake_latents == "posterior":
        return PosteriorLatents(encoder, data.real_train).mixed(n, generator_rng)
    return sample_zplus(n, num_ws=generator.num_ws, z_dim=generator.z_dim, shared=not zplus_prior,
                        generator=generator_rng)


@torch.no_grad()
def stylize(encoder: nn.Module, source: StyleGAN2Generator, styled: StyleGAN2Generator, images: torch.Tensor, *,
            batch: int = 64) -> torch.Tensor:
    """x_s = S_t(E(x)) in [0, 1] for real photos (N, 3, R, R) in [0, 1] (codes through S's mapping,
    which S_t shares)."""
    out = []
    for i in range(0, len(images), batch):
        ws = encode(encoder, source, images[i:i + batch])
        out.append(((styled.synthesis(ws) + 1) / 2).clamp(0, 1))
    return torch.cat(out)


def prior_set(ctx, data: StudyImages, styled: StyleGAN2Generator, encoder: nn.Module, source: StyleGAN2Generator,
              *, style: str, regressor, transfer: dict, encoder_artefact: dict, zplus_prior: bool) -> Path:
    """The style prior of one style as a cached EG3D-layout folder: first the paired samples
    x_s = S_t(E(x)) of every training photo with x's camera label, then ``unpaired_per_style``
    samples S_t(z) (codes as ``style_prior.fake_latents`` says) labelled by the pose regressor.
    ``prior.pt`` beside it holds ``pair_index``
    (the photo of each row, -1 for unpaired) and ``estimated_labels`` (every row's label estimated
    from the stylized image itself: the pose ablation's input). ``transfer`` and ``encoder_artefact``
    (the artefacts of S_t and E) key the cache."""
    sp = ctx.profile.style_prior
    key = {"transfer": transfer["config"], "encoder": encoder_artefact["config"],
           "unpaired_per_style": sp.unpaired_per_style}

    def build(folder: Path) -> None:
        paired = stylize(encoder, source, styled, data.real_train)
        g = ctx.generator(1 + ctx.profile.world.styles.index(style))
        zplus = unpaired_codes(ctx, data, encoder, styled, sp.unpaired_per_style, generator_rng=g,
                               zplus_prior=zplus_prior)
        with torch.no_grad():
            unpaired = ((styled.synthesis(ws_from_zplus(styled.mapping, zplus)) + 1) / 2).clamp(0, 1)
        images = torch.cat([paired, unpaired])
        estimated = regressor.labels(images)
        labels = torch.cat([data.train_labels, estimated[len(paired):]])
        datasets.write_eg3d(images.cpu(), labels.cpu(), folder)
        pair_index = torch.cat([torch.arange(len(paired), device="cpu"), torch.full((len(unpaired),), -1, device="cpu")])
        atomic_torch_save({"style": style, "pair_index": pair_index, "estimated_labels": estimated.cpu()},
                          folder / "prior.pt")

    return ctx.cache.folder(f"style-prior-{style}", key, build)


def load_prior(folder: Path, *, device: torch.device | str = "cpu") -> dict:
    """A prior set on ``device``: ``images``, ``labels`` (paired rows: the photo's),
    ``estimated_labels``, ``pair_index``."""
    images, labels, _ = datasets.load_eg3d(folder)
    extra = safe_torch_load(Path(folder) / "prior.pt")
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v
            for k, v in {"images": images, "labels": labels, **extra}.items()}


@dataclass
class StylePriors:
    """Notebook 01's cached results, as the later notebooks use them."""

    source: StyleGAN2Generator
    """S (frozen)."""
    encoder: nn.Module
    """AgileGAN's hierarchical VAE encoder into S (frozen)."""
    styled: dict[str, StyleGAN2Generator]
    """Per style, S_t (frozen)."""
    folders: dict[str, Path]
    """Per style, the prior set's folder (EG3D layout; its name is its version)."""

    def stylize(self, style: str, images: torch.Tensor) -> torch.Tensor:
        """x_s = S_t(E(x)) in [0, 1] for photos (N, 3, R, R) in [0, 1]."""
        return stylize(self.encoder, self.source, self.styled[style], images)

    def prior(self, style: str) -> dict:
        """The style's prior set (see :func:`load_prior`), on the networks' device."""
        return load_prior(self.folders[style], device=device_of(self.source))


def study_priors(ctx, data: StudyImages, nets: LossNets, *, regressor, styles: list[str] | None = None,
                 progress: bool = True) -> StylePriors:
    """S, E (hVAE), and the S_t and prior set of each of ``styles`` (default: the profile's), from the
    cache (built if absent, without notebook 01's diagnostics). ``data`` at the world's resolution,
    as notebook 01 uses it."""
    source_g, source = source_generator(ctx, data, nets, progress=progress)
    encoder, encoder_art = inversion_encoder(ctx, data, nets, source_g, source, kind="hvae", progress=progress)
    styled, folders = {}, {}
    for style in ctx.profile.world.styles if styles is None else styles:
        styled[style], transfer_art = style_generator(ctx, data, nets, source_g, source, encoder, style=style,
                                                      progress=progress)
        folders[style] = prior_set(ctx, data, styled[style], encoder, source_g, style=style, regressor=regressor,
                                   transfer=transfer_art, encoder_artefact=encoder_art,
                                   zplus_prior=source["zplus_prior"])
    return StylePriors(source=source_g, encoder=encoder, styled=styled, folders=folders)
