"""AgileGAN3D's W+ encoder of a frozen tri-plane generator (Sec. 3.2, Eqs. 2-4).

    enc = WPlusEncoder(img_resolution=64, num_ws=G.num_ws_plus, w_dim=G.config.w_dim, w_avg=mean_w_3d(G))
    enc, log = train_wplus_3d(enc, G, photos, labels, settings=EncoderConfig(steps=500), seed=0,
                              perceptual=lpips, identity=id_net)

One step on photos x with cameras p (G frozen):
- L_rec (Eq. 3) = L2(x, x^) + LPIPS(x, x^) + identity(x, x^), with x^ = G(E(x), p);
- L_cyc (Eq. 2): w = G.mapping(z, frontal camera) for z ~ N(0, I), written as W+ (the three
  super-resolution codes repeat the last), rendered at ``cycle_views`` cameras drawn from the
  data's labels; E must return w from each render: mean squared error to w;
- L_reg (Eq. 4): the spread of E(x)'s 17 codes around their mean, keeping W+ codes near W;
loss = L_rec + ``cycle_weight`` L_cyc + ``reg_weight`` L_reg (the paper: 1 and 0.001), RAdam.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib.device import device_of, draw_batch, seeded_generator
from portraitlib.distributed import optimiser_step, shard
from portraitlib.nets.encoders import WPlusEncoder
from portraitlib.profiles import EncoderConfig
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.checkpoint import TrainingCheckpoint
from portraitlib.training.warm3d import frontal_labels


@torch.no_grad()
def mean_w_3d(generator: TriPlaneGenerator, *, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """The mean w (w_dim,) of G's mapping over n prior draws, conditioned on the frontal camera."""
    device = device_of(generator)
    z = torch.randn(n, generator.config.z_dim, generator=seeded_generator(seed, device), device=device)
    return generator.mapping(z, frontal_labels(n, device))[:, 0].mean(0)


def as_wplus(generator: TriPlaneGenerator, ws: torch.Tensor) -> torch.Tensor:
    """Mapping codes (N, 14, w_dim) as W+ (N, 17, w_dim): the super-resolution codes repeat the last."""
    return torch.cat([ws, generator.sr_codes(ws)], dim=1)


def cycle_loss(encoder: nn.Module, generator: TriPlaneGenerator, labels: torch.Tensor, *, n: int, views: int,
               generator_rng: torch.Generator) -> torch.Tensor:
    """Eq. (2): codes of prior samples, rendered at ``views`` cameras drawn from ``labels``, must come
    back through the encoder. Drawn on ``generator_rng``'s device."""
    device = generator_rng.device
    z = shard(torch.randn(n, generator.config.z_dim, generator=generator_rng, device=device))  # this rank's samples
    with torch.no_grad():
        w = as_wplus(generator, generator.mapping(z, frontal_labels(len(z), device)))
    w_views = w.repeat(views, 1, 1)  # (views * n_rank, 17, w_dim), view-major
    c = labels[torch.randint(len(labels), (views, n), generator=generator_rng, device=device).to(labels.device)]
    c = shard(c.transpose(0, 1)).transpose(0, 1).reshape(-1, labels.shape[1]).to(device)  # each view, these samples
    with torch.no_grad():
        images = (generator.synthesis(w_views, c)["image"] + 1) / 2
    return (encoder(images.clamp(0, 1)) - w_views).square().mean()


def code_spread(codes: torch.Tensor) -> torch.Tensor:
    """Eq. (4): mean squared distance of each photo's codes (N, K, w_dim) from their mean code."""
    return (codes - codes.mean(1, keepdim=True)).square().sum(-1).mean()


def train_wplus_3d(encoder: WPlusEncoder, generator: TriPlaneGenerator, images: torch.Tensor, labels: torch.Tensor,
                   *, settings: EncoderConfig, seed: int, perceptual: nn.Module | None = None,
                   identity: nn.Module | None = None, checkpoint: Path | None = None,
                   progress: str | None = None) -> tuple[WPlusEncoder, dict]:
    """Train ``encoder`` into the frozen ``generator`` on photos (N, 3, R, R) in [0, 1] with labels
    (N, 25). Returns the encoder (eval) and the log: per-step ``loss``, ``l2``, ``perceptual``,
    ``identity``, ``cycle``, ``reg``."""
    if encoder.num_ws != generator.num_ws_plus:
        raise ValueError(f"the encoder gives {encoder.num_ws} codes, G's W+ has {generator.num_ws_plus}")
    rng = seeded_generator(seed, device_of(encoder))
    torch.manual_seed(seed)
    generator.requires_grad_(False)
    opt = torch.optim.RAdam(encoder.parameters(), lr=settings.lr)
    state = TrainingCheckpoint(checkpoint, modules={"encoder": encoder}, optimizers={"opt": opt}) if checkpoint else None
    start, log, _ = state.restore(generator=rng) if state else (0, {}, None)
    log = log or {k: [] for k in ("loss", "l2", "perceptual", "identity", "cycle", "reg")}
    encoder.train()
    zero = torch.zeros((), device=rng.device)
    for step in tqdm(range(start, settings.steps), desc=progress, disable=progress is None, leave=False,
                     initial=start, total=settings.steps):
        x, idx = draw_batch(images, settings.batch, rng)
        c = labels[idx.to(labels.device)].to(x.device)
        codes = encoder(x)
        y = (generator.synthesis(codes, c)["image"] + 1) / 2
        l2 = (y - x).square().mean()
        lp = perceptual(y, x).mean() if perceptual is not None else zero
        k = settings.identity_batch
        idl = identity.distance(y[:k], x[:k]).mean() if identity is not None else zero
        cyc = (cycle_loss(encoder, generator, labels, n=settings.batch, views=settings.cycle_views, generator_rng=rng)
               if settings.cycle_weight > 0 else zero)
        reg = code_spread(codes)
        loss = (l2 + settings.perceptual_weight * lp + settings.identity_weight * idl + settings.cycle_weight * cyc
                + settings.reg_weight * reg)
        optimiser_step(opt, loss)
        for name, value in (("loss", loss), ("l2", l2), ("perceptual", lp), ("identity", idl), ("cycle", cyc),
                            ("reg", reg)):
            log[name].append(value.item())
        done = step + 1
        if state and (done % settings.checkpoint_every == 0 or done == settings.steps):
            state.save(step=done, log=log, generator=rng)
    return encoder.eval(), log
