"""The text-guided image editor of Eq. (2), T(phi, I, n, c): InstructPix2Pix run through diffusers'
own ``StableDiffusionInstructPix2PixPipeline``.

On the world (mini, smoke) it is a small Ip2p built from diffusers' and transformers' classes
(``AutoencoderKL``, ``UNet2DConditionModel``, ``CLIPTextModel``, ``DDIMScheduler``) and trained in
two stages on the world's pairs (:mod:`portraitlib.freestyle3d.pairs`):

1. the autoencoder, on every render: L1 + perceptual + 1e-6 KL, then its latent scale set to
   1 / std of the latents (as Stable Diffusion's 0.18215 was chosen);
2. the UNet and the text encoder with the autoencoder frozen, by Ip2p's objective

       L = E || eps - eps_theta(concat(z_t, E(I)), t, c_T(c)) ||^2,   z_t = DDPM noise of E(I_s) at t

   with the instruction, the input image and both dropped (each with ``drop``) so that both
   guidance weights of the pipeline act (classifier-free guidance).

The paper profile loads the real ``timbrooks/instruct-pix2pix`` from a folder instead.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInstructPix2PixPipeline,
                       UNet2DConditionModel)
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from portraitlib.device import device_of
from portraitlib.freestyle3d.config import PIX2PIX_HINT, EditorConfig
from portraitlib.pretrain.loop import fit

LATENT_CHANNELS = 4
"""Stable Diffusion's latent channels; the UNet reads twice as many (noisy latents + image latents)."""


def build_editor(config: EditorConfig, *, resolution: int, tokenizer) -> StableDiffusionInstructPix2PixPipeline:
    """A randomly initialised small Ip2p (build it inside ``ctx.build`` for seeded weights) for
    images of ``resolution`` px; ``tokenizer``: :func:`portraitlib.freestyle3d.tokenizer.clip_tokenizer`."""
    halvings = len(config.vae_channels) - 1
    if resolution % 2 ** (halvings + len(config.unet_channels) - 1):
        raise ValueError(f"{resolution} px does not halve {halvings} times in the autoencoder and "
                         f"{len(config.unet_channels) - 1} times in the UNet")
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS,
                        down_block_types=("DownEncoderBlock2D",) * len(config.vae_channels),
                        up_block_types=("UpDecoderBlock2D",) * len(config.vae_channels),
                        block_out_channels=config.vae_channels, layers_per_block=1, norm_num_groups=16,
                        sample_size=resolution)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=config.text_width, intermediate_size=2 * config.text_width,
        num_hidden_layers=config.text_layers, num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    blocks = len(config.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=resolution // 2 ** halvings, in_channels=2 * LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        layers_per_block=1, block_out_channels=config.unet_channels, norm_num_groups=16,
        down_block_types=("CrossAttnDownBlock2D",) * (blocks - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (blocks - 1),
        cross_attention_dim=config.text_width, attention_head_dim=8)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)  # Stable Diffusion's schedule
    pipe = StableDiffusionInstructPix2PixPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                                  scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pretrained(folder: Path, *, device: torch.device) -> StableDiffusionInstructPix2PixPipeline:
    """Ip2p from a diffusers folder (``model_index.json`` and its parts; safetensors only): the real
    ``timbrooks/instruct-pix2pix``, or a small one saved by ``save_pretrained``."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"InstructPix2Pix folder {folder} not found (no model_index.json): {PIX2PIX_HINT}")
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(folder, safety_checker=None,
                                                                  requires_safety_checker=False, use_safetensors=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)  # the paper edits with DDIM
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def train_autoencoder(vae: AutoencoderKL, images: torch.Tensor, *, config: EditorConfig, perceptual, seed: int,
                      checkpoint: Path, minutes: float | None = None, progress: str | None = None) -> dict:
    """Stage 1 on ``images`` (N, 3, R, R) in [0, 1], resumable from ``checkpoint`` (``pretrain.loop.fit``);
    when the schedule is done, sets ``vae.config.scaling_factor``. Returns the loop's log (with
    ``latent_std`` when done)."""
    device = device_of(vae)

    def loss(step: int, idx: torch.Tensor, rng: torch.Generator):
        x = images[idx].to(device)
        posterior = vae.encode(x * 2 - 1).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=rng).to(device)
        rec = vae.decode(posterior.mean + posterior.std * noise).sample
        l1, lp = F.l1_loss(rec, x * 2 - 1), perceptual(((rec + 1) / 2).clamp(0, 1), x).mean()
        return l1 + lp + 1e-6 * posterior.kl().mean(), {"l1": l1.item(), "perceptual": lp.item()}

    vae, log = fit(vae, loss=loss, measure=lambda net: {}, steps=config.vae_steps, pool_size=len(images),
                   batch=config.batch, lr=config.lr, seed=seed, checkpoint=checkpoint,
                   eval_every=max(1, config.vae_steps // 20), minutes=minutes, progress=progress, betas=(0.9, 0.999))
    if log["done"]:
        with torch.no_grad():
            pick = torch.randperm(len(images), generator=torch.Generator(device="cpu").manual_seed(seed))[:256]
            log["latent_std"] = vae.encode(images[pick].to(device) * 2 - 1).latent_dist.mean.std().item()
        vae.register_to_config(scaling_factor=1.0 / log["latent_std"])
    return log


def _encoded(vae: AutoencoderKL, images: torch.Tensor, *, batch: int = 256) -> list:
    """The autoencoder's posteriors of ``images`` (N, 3, R, R) in [0, 1], in chunks."""
    device = device_of(vae)
    return [vae.encode(images[i:i + batch].to(device) * 2 - 1).latent_dist for i in range(0, len(images), batch)]


def _embed(pipe, prompts: list[str]) -> torch.Tensor:
    ids = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    return pipe.text_encoder(ids.to(device_of(pipe.text_encoder)))[0]


def train_editor(pipe: StableDiffusionInstructPix2PixPipeline, sources: torch.Tensor, targets: torch.Tensor,
                 prompts: list[str], *, config: EditorConfig, seed: int, checkpoint: Path,
                 minutes: float | None = None, progress: str | None = None) -> dict:
    """Stage 2: the UNet and the text encoder on pairs ``sources`` -> ``targets`` (N, 3, R, R) in
    [0, 1] under ``prompts`` (N instructions), the autoencoder frozen; resumable from ``checkpoint``.
    Returns the loop's log."""
    vae, unet, text = pipe.vae, pipe.unet, pipe.text_encoder
    device = device_of(unet)
    with torch.no_grad():  # the frozen autoencoder's latents, once
        image_latents = torch.cat([d.mode() for d in _encoded(vae, sources)])  # unscaled, as the pipeline uses them
        encoded = _encoded(vae, targets)
        target_mean, target_std = torch.cat([d.mean for d in encoded]), torch.cat([d.std for d in encoded])
    unique = sorted(set(prompts))
    prompt_index = torch.tensor([unique.index(p) for p in prompts])
    scale, steps_total = vae.config.scaling_factor, pipe.scheduler.config.num_train_timesteps

    def loss(step: int, idx: torch.Tensor, rng: torch.Generator):
        b = len(idx)
        z0 = (target_mean[idx] + target_std[idx] * torch.randn(target_mean[idx].shape, generator=rng).to(device)) * scale
        noise = torch.randn(z0.shape, generator=rng).to(device)
        t = torch.randint(steps_total, (b,), generator=rng).to(device)
        noisy = pipe.scheduler.add_noise(z0, noise, t)
        embeds = _embed(pipe, unique + [""])  # (P + 1, 77, width): every instruction and the empty one
        r = torch.rand(b, generator=rng)  # on the CPU, as the indices
        drop_text = r < 2 * config.drop  # the instruction alone, or both
        drop_image = (r >= config.drop) & (r < 3 * config.drop)  # both, or the image alone
        cond = embeds[torch.where(drop_text, len(unique), prompt_index[idx])]
        image = image_latents[idx] * (~drop_image).float().view(b, 1, 1, 1).to(device)
        value = F.mse_loss(unet(torch.cat([noisy, image], 1), t, encoder_hidden_states=cond).sample, noise)
        return value, {"mse": value.item()}

    _, log = fit(nn.ModuleDict({"unet": unet, "text": text}), loss=loss, measure=lambda net: {}, steps=config.steps,
                 pool_size=len(sources), batch=config.batch, lr=config.lr, seed=seed, checkpoint=checkpoint,
                 eval_every=max(1, config.steps // 20), minutes=minutes, progress=progress, betas=(0.9, 0.999),
                 weight_decay=1e-2)
    return log


@torch.no_grad()
def edit(pipe: StableDiffusionInstructPix2PixPipeline, images: torch.Tensor, *, prompt: str, negative_prompt: str = "",
         steps: int, text_guidance: float, image_guidance: float, latents: torch.Tensor | None = None,
         generator: torch.Generator | None = None, batch: int = 32) -> torch.Tensor:
    """I_s = T(phi, I, n, c): the pipeline on ``images`` (N, 3, R, R) in [0, 1], from ``latents``
    (N, 4, r, r: the initial noise, n or Eq. (1)'s n*) or fresh noise of ``generator``; (N, 3, R, R) in [0, 1]."""
    out = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        result = pipe(prompt=[prompt] * len(chunk), image=chunk, num_inference_steps=steps,
                      guidance_scale=text_guidance, image_guidance_scale=image_guidance,
                      negative_prompt=[negative_prompt] * len(chunk) if negative_prompt else None,
                      latents=None if latents is None else latents[i:i + batch], generator=generator,
                      output_type="pt")
        out.append(result.images.clamp(0, 1))
    return torch.cat(out)
