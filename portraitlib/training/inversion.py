"""Training image encoders into a 2D StyleGAN2 (AgileGAN's inversion), and the joint warm start.

    enc = HierarchicalVAEEncoder(img_resolution=64, num_ws=G.num_ws, z_dim=G.z_dim)
    enc, log = train_encoder(enc, G, images, settings=InversionSettings(steps=500), seed=0,
                             perceptual=lpips, identity=id_net)
    ws = encode(enc, G, images)          # (N, num_ws, w_dim), deterministic (the posterior mean)

Loss per batch: L1 reconstruction + ``perceptual_weight`` * LPIPS + ``identity_weight`` * identity
distance (on the first ``identity_batch`` images, the identity net being the costly part) +
``kl_weight`` * KL (hierarchical VAE only). With ``generator_lr > 0`` the generator is trained too:
the joint VAE warm start of a source generator on the world.

``synthetic_steps`` > 0 puts a phase before those steps in which the encoder sees the frozen
generator's own samples x = G(z), z from G's prior, and regresses the code it knows
(:func:`latent_loss`). Not AgileGAN's recipe (it trains on photos only): on the mini world's S,
150 photo steps alone lost the identity of held-out photos (issue #26).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib.device import device_of, draw_batch, seeded_generator
from portraitlib.distributed import optimiser_step, shard
from portraitlib.nets.encoders import HierarchicalVAEEncoder, WPlusEncoder, sample_zplus, ws_from_zplus
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.training.checkpoint import TrainingCheckpoint


@dataclass(frozen=True)
class EncoderTrainingSettings:
    """What every encoder training shares (the 2D inversion here, the 3D VAE warm start in
    :mod:`portraitlib.training.warm3d`); each adds its own terms."""

    steps: int
    """Optimiser steps."""
    batch: int = 16
    """Images per step."""
    lr: float = 1e-3
    """Adam learning rate of the encoder."""
    generator_lr: float = 0.0
    """Adam learning rate of the generator; 0 keeps it frozen (the usual inversion)."""
    kl_weight: float = 2e-4
    """Weight of the KL term (summed over layers and dimensions); VAE encoders only."""
    perceptual_weight: float = 0.5
    """Weight of the perceptual (LPIPS) distance, when a perceptual net is given."""
    checkpoint_every: int = 200
    """Steps between resumable checkpoints (when a path is given)."""


@dataclass(frozen=True)
class InversionSettings(EncoderTrainingSettings):
    """How a 2D encoder (and optionally its generator) is trained."""

    identity_weight: float = 0.1
    """Weight of the identity distance, when an identity net is given."""
    identity_batch: int = 4
    """Images per step that the identity loss sees."""
    synthetic_steps: int = 0
    """Steps of :func:`latent_loss` on the frozen generator's own samples before the photo steps."""
    synthetic_batch: int = 64
    """Samples per synthetic step, drawn from a bank made once (S's forward pass is the costly part)."""
    synthetic_bank: int = 4096
    """Samples in that bank (N, 3, R, R; 200 MB at 64 px), at most as many as the phase draws."""
    synthetic_shared: bool = True
    """Synthetic codes draw one z for every layer (StyleGAN2's prior), else one per layer."""


@torch.no_grad()
def synthetic_bank(generator: StyleGAN2Generator, n: int, *, shared: bool, seed: int, batch: int = 64
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of the frozen generator: codes z+ (n, num_ws, z_dim) from its prior (``shared``:
    one z for all layers) drawn from a generator seeded by ``seed`` (so a resumed run remakes the
    same bank), and images x = G(z+) (n, 3, R, R) in [0, 1], on the generator's device."""
    rng = seeded_generator(seed, device_of(generator))
    zplus = sample_zplus(n, num_ws=generator.num_ws, z_dim=generator.z_dim, shared=shared, generator=rng)
    images = [((generator.synthesis(ws_from_zplus(generator.mapping, zplus[i:i + batch])) + 1) / 2).clamp(0, 1)
              for i in range(0, n, batch)]
    return zplus, torch.cat(images)


def latent_loss(encoder: nn.Module, generator: StyleGAN2Generator, zplus: torch.Tensor, images: torch.Tensor
                ) -> torch.Tensor:
    """The encoder's error on samples ``images`` = G(``zplus``) (codes (N, num_ws, z_dim) from G's
    prior): a hierarchical VAE's Gaussian negative log-likelihood of the true z+, mean over layers
    and dimensions,

        0.5 * ((z - mu)^2 / sigma^2 + log sigma^2),

    so mu learns the code and sigma what the image leaves unknown; a W+ encoder's squared error to
    the true w+ = mapping(z+)."""
    if isinstance(encoder, HierarchicalVAEEncoder):
        mu, logvar = encoder(images)
        return 0.5 * ((zplus - mu).square() * (-logvar).exp() + logvar).mean()
    with torch.no_grad():
        ws = ws_from_zplus(generator.mapping, zplus)
    return (encoder(images) - ws).square().mean()


def encode(encoder: nn.Module, generator: StyleGAN2Generator, images: torch.Tensor, *,
           sample: bool = False, generator_rng: torch.Generator | None = None) -> torch.Tensor:
    """w+ codes (N, num_ws, w_dim) of images (N, 3, R, R) in [0, 1]; a hierarchical VAE gives the
    posterior mean, or a posterior sample with ``sample``."""
    if isinstance(encoder, HierarchicalVAEEncoder):
        mu, logvar = encoder(images)
        zplus = HierarchicalVAEEncoder.sample(mu, logvar, generator=generator_rng) if sample else mu
        return ws_from_zplus(generator.mapping, zplus)
    if isinstance(encoder, WPlusEncoder):
        return encoder(images)
    raise TypeError(f"unknown encoder type {type(encoder).__name__}")


@torch.no_grad()
def reconstruct(encoder: nn.Module, generator: StyleGAN2Generator, images: torch.Tensor, *,
                batch: int = 64) -> torch.Tensor:
    """G(E(x)) in [0, 1] for images (N, 3, R, R) in [0, 1], in batches."""
    encoder.eval()
    out = [generator.synthesis(encode(encoder, generator, images[i:i + batch]))
           for i in range(0, len(images), batch)]
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


def encoder_training(encoder: nn.Module, generator: nn.Module, *, lr: float, generator_lr: float,
                     checkpoint: Path | None, seed: int, log_keys: tuple[str, ...]):
    """What every encoder training loop (2D here, 3D in ``warm3d``) starts with: seeded torch and a
    seeded generator ``rng`` on the encoder's device; Adam (betas 0.9, 0.99) on the encoder and, when ``generator_lr`` > 0,
    on the generator too (else the generator is frozen); and the resumable ``state`` (``None``
    without a checkpoint path). Returns ``rng, opt, state, start_step, log``."""
    rng = seeded_generator(seed, device_of(encoder))
    torch.manual_seed(seed)
    train_g = generator_lr > 0
    generator.requires_grad_(train_g)
    groups = [{"params": encoder.parameters(), "lr": lr}]
    if train_g:
        groups.append({"params": generator.parameters(), "lr": generator_lr})
    opt = torch.optim.Adam(groups, betas=(0.9, 0.99))
    modules = {"encoder": encoder, **({"generator": generator} if train_g else {})}
    state = TrainingCheckpoint(checkpoint, modules=modules, optimizers={"opt": opt}) if checkpoint else None
    start, log, _ = state.restore(generator=rng) if state else (0, {}, None)
    return rng, opt, state, start, log or {k: [] for k in log_keys}


def train_encoder(encoder: nn.Module, generator: StyleGAN2Generator, images: torch.Tensor, *,
                  settings: InversionSettings, seed: int, perceptual: nn.Module | None = None,
                  identity: nn.Module | None = None, checkpoint: Path | None = None,
                  progress: str | None = None) -> tuple[nn.Module, dict]:
    """Train ``encoder`` to invert ``generator`` on images (N, 3, R, R) in [0, 1] (any device:
    batches move to the encoder's).

    Returns the encoder (eval mode) and the log: per-step ``loss``, ``l1``, ``perceptual``,
    ``identity``, ``kl`` of the photo steps (zeros where a term is off) and ``latent`` of the
    synthetic ones."""
    if settings.synthetic_steps and settings.generator_lr > 0:
        raise ValueError("synthetic steps regress codes of a frozen generator: use them with generator_lr 0")
    rng, opt, state, start, log = encoder_training(encoder, generator, lr=settings.lr, generator_lr=settings.generator_lr,
                                                   checkpoint=checkpoint, seed=seed,
                                                   log_keys=("loss", "l1", "perceptual", "identity", "kl", "latent"))
    vae = isinstance(encoder, HierarchicalVAEEncoder)
    encoder.train()
    total = settings.synthetic_steps + settings.steps
    banked = min(settings.synthetic_bank, settings.synthetic_steps * settings.synthetic_batch)  # none unused
    if start < settings.synthetic_steps:
        bank = synthetic_bank(generator, banked, shared=settings.synthetic_shared, seed=seed + 1)
    for step in tqdm(range(start, total), desc=progress, disable=progress is None, leave=False, initial=start,
                     total=total):
        if step < settings.synthetic_steps:
            idx = torch.randint(banked, (settings.synthetic_batch,), generator=rng, device=rng.device)
            loss = latent_loss(encoder, generator, *(t[idx.to(t.device)] for t in bank))
            update(opt, loss, log=log, terms={"latent": loss}, step=step, last=total, settings=settings,
                   state=state, rng=rng)
            continue
        x = draw_batch(images, settings.batch, rng)[0]
        flip = shard(torch.rand(settings.batch, generator=rng, device=rng.device)) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if vae:
            mu, logvar = encoder(x)
            ws = ws_from_zplus(generator.mapping, HierarchicalVAEEncoder.sample(mu, logvar, generator=rng))
            kl = HierarchicalVAEEncoder.kl(mu, logvar).mean()
        else:
            ws, kl = encoder(x), x.new_zeros(())
        y = (generator.synthesis(ws) + 1) / 2
        l1 = (y - x).abs().mean()
        lp = perceptual(y, x).mean() if perceptual is not None else x.new_zeros(())
        k = settings.identity_batch
        idl = identity.distance(y[:k], x[:k]).mean() if identity is not None else x.new_zeros(())
        loss = l1 + settings.perceptual_weight * lp + settings.identity_weight * idl + settings.kl_weight * kl
        update(opt, loss, log=log, terms={"loss": loss, "l1": l1, "perceptual": lp, "identity": idl, "kl": kl},
               step=step, last=total, settings=settings, state=state, rng=rng)
    generator.requires_grad_(False)
    return encoder.eval(), log


def update(opt: torch.optim.Optimizer, loss: torch.Tensor, *, log: dict[str, list], terms: dict[str, torch.Tensor],
           step: int, last: int, settings: EncoderTrainingSettings, state: TrainingCheckpoint | None,
           rng: torch.Generator) -> None:
    """One optimiser step on ``loss`` of an encoder training, its ``terms`` appended to ``log``, and
    the resumable checkpoint when one is due (every ``settings.checkpoint_every`` steps, and at the
    ``last`` step of the schedule)."""
    optimiser_step(opt, loss)
    for name, value in terms.items():
        log[name].append(value.item())
    done = step + 1
    if state and (done % settings.checkpoint_every == 0 or done == last):
        state.save(step=done, log=log, generator=rng)
