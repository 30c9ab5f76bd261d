"""Alg. 1, the few-shot set D_s of one style: one identity w of the 3D GAN rendered at i x i views
(P, Y) and each view edited by Ip2p from one fixed noise n, moved towards the view by Eq. (1):

    n* = Add(E(I), n, tau)                      (1)  DDPM noising of the view's latents to tau T
    I_s = T(phi, G(theta, w, v), n*, t*)        (2)

against the editor's own inference (fresh Gaussian noise per view), which varies from view to
view. How consistent a set is: each view's edit warped by the 3D GAN's depth into its neighbours
(``consistency.warping_error``), the same measure as the study's multi-view consistency.
"""
from __future__ import annotations

import torch

from portraitlib import cameras, consistency
from portraitlib.device import device_of
from portraitlib.freestyle3d.editor import LATENT_CHANNELS, edit


def view_grid(i: int, *, extent: float = 30.0) -> torch.Tensor:
    """(P, Y): (i * i, 3) yaw, pitch, roll in degrees, pitch and yaw each at i even steps in +-extent
    (rows of one pitch, yaw increasing along a row)."""
    steps = torch.linspace(-extent, extent, i)
    pitch, yaw = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([yaw.flatten(), pitch.flatten(), torch.zeros(i * i)], 1)


def noise_shape(pipe, resolution: int) -> tuple[int, int, int]:
    """The shape of one n: the editor's latents of a ``resolution`` px image."""
    side = resolution // pipe.vae_scale_factor
    return (LATENT_CHANNELS, side, side)


@torch.no_grad()
def noised_latents(pipe, images: torch.Tensor, noise: torch.Tensor, *, tau: float) -> torch.Tensor:
    """Eq. (1): n* (N, 4, r, r) = the DDPM forward process of the editor's latents of ``images``
    (N, 3, R, R) in [0, 1] to timestep tau * T, with the one noise ``noise`` (4, r, r) for every view."""
    vae = pipe.vae
    latents = vae.encode(images.to(device_of(vae)) * 2 - 1).latent_dist.mode() * vae.config.scaling_factor
    total = pipe.scheduler.config.num_train_timesteps
    t = torch.full((len(images),), min(round(tau * total), total - 1), device=latents.device, dtype=torch.long)
    return pipe.scheduler.add_noise(latents, noise.to(latents).expand_as(latents), t)


def construct(pipe, views: torch.Tensor, *, noise: torch.Tensor, tau: float, prompt: str, negative_prompt: str = "",
              steps: int, text_guidance: float, image_guidance: float) -> torch.Tensor:
    """Alg. 1: D_s (N, 3, R, R), the edits of the renders ``views`` (N, 3, R, R in [0, 1]) of one
    identity, every one from n* of the same n (``noise``, (4, r, r))."""
    start = noised_latents(pipe, views, noise, tau=tau)
    return edit(pipe, views, prompt=prompt, negative_prompt=negative_prompt, steps=steps, text_guidance=text_guidance,
                image_guidance=image_guidance, latents=start)


def edit_with_random_noise(pipe, views: torch.Tensor, *, generator: torch.Generator, prompt: str,
                           negative_prompt: str = "", steps: int, text_guidance: float,
                           image_guidance: float) -> torch.Tensor:
    """The editor's own inference on each view: a fresh Gaussian noise per view (``generator``)."""
    return edit(pipe, views, prompt=prompt, negative_prompt=negative_prompt, steps=steps, text_guidance=text_guidance,
                image_guidance=image_guidance, generator=generator)


def neighbours(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (a, b) of horizontally and vertically adjacent views of :func:`view_grid`."""
    index = torch.arange(i * i).view(i, i)
    a = torch.cat([index[:, :-1].flatten(), index[:-1, :].flatten()])
    b = torch.cat([index[:, 1:].flatten(), index[1:, :].flatten()])
    return a, b


@torch.no_grad()
def set_consistency(edits: torch.Tensor, *, depth: torch.Tensor, mask: torch.Tensor, angles: torch.Tensor,
                    i: int) -> float:
    """Mean photometric warping error (``consistency.warping_error``'s ``warped``, both directions)
    between adjacent views of a set of edits (i * i, 3, R, R) of one identity, through the 3D GAN's
    depth (i * i, 1, r, r) and foreground ``mask`` (or opacity) at the views' ``angles`` (i * i, 3).
    Lower: more consistent."""
    labels = cameras.labels_from_angles(angles[:, 0], angles[:, 1]).to(edits.device)
    mask = mask > 0.5  # opacity or a true mask alike
    a, b = neighbours(i)
    errors = []
    for first, second in ((a, b), (b, a)):
        out = consistency.warping_error(edits[first], depth[first], labels[first], edits[second], labels[second],
                                        mask_a=mask[first], depth_b=depth[second])
        errors.append(out["warped"])
    return torch.cat(errors).mean().item()
