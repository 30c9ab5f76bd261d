"""G_world's pretraining: optional 3D distillation of the world, then depth-guided rendered regression
(L1 on image and raw image, L1 on the true depth, LPIPS-alex on the image).

    pool = make_pool(n=4096, z_dim=31, config=world, seed=0)           # photos + truth (CPU)
    held_out = make_eval_set(n=32, z_dim=31, config=world, seed=0)     # new identities, yaw -30..30
    G, log = pretrain(G, pool=pool, held_out=held_out, settings=SETTINGS["mini"], seed=0,
                      checkpoint=Path("out/checkpoint.pt"), judge=Measures(lpips_vgg, identity_net),
                      perceptual=load_lpips("alex"))

The data stay on the CPU (the world renders and its SDF run there); each batch, its point targets
and every random draw come from one CPU generator, so a run resumed from its checkpoint is
bit-identical to an uninterrupted one on the same device. G trains on its own device.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from portraitlib.cameras import angles_from_labels
from portraitlib.device import device_of, seeded_generator
from portraitlib.generator3d import render
from portraitlib.nets.triplane import TriPlaneGenerator, swap_conditioning
from portraitlib.pretrain.loop import fit
from portraitlib.pretrain.steps import distill_loss, guided_synthesis, render_loss
from portraitlib.pretrain.world import POOL_PITCH, POOL_YAW, Views, WorldCodes, point_targets, random_angles, render_views
from portraitlib.profiles import WorldConfig
from portraitlib.quality import face_detection_rate, gate_labels, identification
from portraitlib.world.identity import LATENT_DIM


@dataclass(frozen=True)
class PretrainSettings:
    """How G_world is pretrained (the schedule is in steps; a time budget may stop it earlier)."""

    distill_steps: int
    """Steps of 3D distillation (density + colour at points; no rendering)."""
    render_steps: int
    """Steps of depth-guided rendered regression after it (trains super-resolution and background)."""
    pool: int
    """Photos in the training pool: each a new identity, scene and camera."""
    pool_supersample: int = 1
    """Anti-aliasing of the pool's renders (the world's sphere tracer runs on the CPU: 2 costs 4x)."""
    batch: int = 8
    """Photos per step."""
    lr: float = 2e-3
    """Adam learning rate (``loop.fit``): constant (a decaying one stalled the probes) until the cooldown."""
    cooldowns: tuple[tuple[int, int], ...] = ()
    """Windows (start step, end step) over which the rate falls linearly towards 0 (``loop.learning_rate``)."""
    points: int = 2048
    """Points per photo in a distillation step."""
    swap_probability: float = 0.5
    """EG3D's pose-conditioning swap of the mapping's camera."""
    stratified: int = 8
    """Samples per ray over the whole ray in a rendered step ..."""
    guided: int = 8
    """... and around the true depth."""
    depth_weight: float = 1.0
    """Weight of the L1 to the true depth in a rendered step."""
    distill_weight: float = 1.0
    """Weight of the distillation loss kept beside the rendered loss after the distillation phase."""
    perceptual_weight: float = 1.0
    """Weight of LPIPS-alex on the image in a rendered step (0: none). The held-out measure is
    LPIPS-VGG, another trunk than the loss's."""
    critic_steps: int = 300
    """Steps of the released discriminator against the finished G (``pretrain.critic``)."""
    eval_every: int = 250
    """Steps between held-out measures."""
    checkpoint_every: int = 100
    """Steps between checkpoints."""


SETTINGS = {
    "smoke": PretrainSettings(distill_steps=4, render_steps=4, pool=8, batch=2, points=256, eval_every=4,
                              checkpoint_every=2, critic_steps=2),
    "mini": PretrainSettings(distill_steps=0, render_steps=40000,
                             cooldowns=((20000, 24000), (24000, 32000), (32000, 40000)),
                             pool=4096, distill_weight=0.0, eval_every=1000),
}
"""Settings per profile. mini: depth-guided rendering from the start, since on the 16-identity
overfit probe a 3D-distillation phase first was no faster per second of training; the first 16K
steps (constant rate) took 83 minutes on one core; trained on to 24K, the last 4K cooled: held-out
LPIPS-VGG 0.198 -> 0.172, identification 0.41 -> 0.66 (71 minutes on one core); then from the full
rate again, cooled over 8K more steps to 32K (issue #26: identification 0.66 is short of its 0.70 gate):
LPIPS-VGG 0.172 -> 0.158, identification 0.69 (22 of 32; 53 minutes); and once more over 32K-40K: LPIPS
0.149, identification 0.66 (21 of 32; 0.53-0.66 along the window; 50 minutes): identification has
stayed at 0.53-0.69 since 29K while LPIPS kept falling (hats and glasses are still faint)."""


def cooled(cooldowns: tuple[tuple[int, int], ...]) -> str:
    """The cooldowns of a schedule, in words (empty without one)."""
    if not cooldowns:
        return ""
    windows = " and again ".join(f"steps {start}-{end}" for start, end in cooldowns)
    return f"; learning rate cooled linearly from its full value to 0 over {windows}"


def route(settings: PretrainSettings) -> str:
    """What a schedule does, in words (for the model card)."""
    rendered = (f"{settings.render_steps} steps of depth-guided rendered regression ({settings.stratified} + "
                f"{settings.guided} samples per ray{cooled(settings.cooldowns)})")
    if settings.distill_steps == 0:
        return rendered
    kept = f", distillation kept at weight {settings.distill_weight}" if settings.distill_weight > 0 else ""
    return f"{settings.distill_steps} steps of 3D distillation of density + colour, then {rendered}{kept}"


def make_pool(*, n: int, z_dim: int, config: WorldConfig, resolution: int, supersample: int, seed: int,
              max_yaw: float = POOL_YAW, max_pitch: float = POOL_PITCH, batch: int = 64, progress: str | None = None
              ) -> dict[str, torch.Tensor]:
    """n training photos of new identities in random scenes at random cameras, rendered at G's
    ``resolution`` R: ``z`` (n, z_dim), ``images`` (n, 3, R, R), ``labels`` (n, 25), ``depth``
    (n, 1, R, R); CPU tensors."""
    g = seeded_generator(seed * 10_000 + 9_001)
    codes = WorldCodes.sample(n, z_dim=z_dim, generator=g)
    angles = random_angles(n, max_yaw=max_yaw, max_pitch=max_pitch, generator=g)
    parts = [render_views(codes.index(slice(i, i + batch)), angles[i:i + batch], config=config,
                                resolution=resolution, supersample=supersample)
             for i in tqdm(range(0, n, batch), desc=progress, disable=progress is None, leave=False)]
    return {"z": codes.z, "images": torch.cat([p.images for p in parts]),
            "labels": torch.cat([p.labels for p in parts]), "depth": torch.cat([p.depth for p in parts])}


def make_eval_set(*, n: int, z_dim: int, config: WorldConfig, resolution: int, seed: int) -> dict[str, torch.Tensor]:
    """n held-out photos (identities and scenes from another stream than the pool) at yaws spread
    over the quality gate's -30..30, frontal pitch, with their true renders."""
    codes = WorldCodes.sample(n, z_dim=z_dim, generator=seeded_generator(seed * 10_000 + 9_002))
    labels = gate_labels(n)
    views = render_views(codes, angles_from_labels(labels), config=config, resolution=resolution)
    return {"z": codes.z, "images": views.images, "labels": views.labels, "depth": views.depth}


@dataclass(frozen=True)
class Measures:
    """What judges a base model on held-out identities: a perceptual distance to the truth (LPIPS-VGG
    in the study) and, when given, an identity network for identification among them."""

    lpips: object
    identity_net: object | None = None

    def __call__(self, images: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
        """Measures of images (N, 3, R, R) in [0, 1] against the true renders (N, 3, R, R)."""
        truth = truth.to(images.device)
        out = {"face_detection": face_detection_rate(images), "l1_to_truth": (images - truth).abs().mean().item(),
               f"{self.lpips.name}_to_truth": self.lpips(images, truth).mean().item()}
        if self.identity_net is not None:
            out["identification"] = identification(images, truth, self.identity_net)["accuracy"]
        return out


@torch.no_grad()
def held_out_renders(generator: TriPlaneGenerator, held_out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """G's renders (``render``'s dict: ``image`` (N, 3, R, R) in [0, 1], ``image_depth``...) of the
    held-out codes at their cameras (standard sampler, mapping at the same camera)."""
    z, labels = (held_out[k].to(device_of(generator)) for k in ("z", "labels"))
    return render(generator, generator.mapping(z, labels), labels)


@torch.no_grad()
def measure(generator: TriPlaneGenerator, held_out: dict[str, torch.Tensor], *, judge: Measures) -> dict[str, float]:
    """:func:`held_out_renders` against the world's truth: ``judge``'s measures and the depth L1
    (rays' resolution)."""
    out = held_out_renders(generator, held_out)
    depth = torch.nn.functional.interpolate(held_out["depth"].to(out["image"].device), size=out["image_depth"].shape[-2:],
                                            mode="area")
    return judge(out["image"], held_out["images"]) | {"depth_l1_to_truth": (out["image_depth"] - depth).abs().mean().item()}


def train_step(generator: TriPlaneGenerator, pool: dict[str, torch.Tensor], idx: torch.Tensor, *, distill: bool,
               rendered: bool, settings: PretrainSettings, rng: torch.Generator, perceptual=None
               ) -> tuple[torch.Tensor, dict]:
    """The loss of one batch ``idx`` of the pool: distillation and/or depth-guided rendering."""
    device = device_of(generator)
    c = pool["labels"][idx]
    c_cond = swap_conditioning(c, probability=settings.swap_probability, generator=rng).to(device)
    z, c = pool["z"][idx].to(device), c.to(device)
    loss, parts = torch.zeros((), device=device), {}
    if distill:
        views = Views(images=pool["images"][idx], labels=pool["labels"][idx], depth=pool["depth"][idx])
        targets = point_targets(pool["z"][idx, :LATENT_DIM], views, points=settings.points, generator=rng)
        d_loss, parts = distill_loss(generator, z, c_cond, targets)
        loss = loss + (settings.distill_weight if rendered else 1.0) * d_loss
    if rendered:
        out = guided_synthesis(generator, generator.mapping(z, c_cond), c, pool["depth"][idx],
                               stratified=settings.stratified, guided=settings.guided, generator_rng=rng)
        r_loss, r_parts = render_loss(out, pool["images"][idx], pool["depth"][idx], depth_weight=settings.depth_weight,
                                      perceptual=perceptual if settings.perceptual_weight > 0 else None,
                                      perceptual_weight=settings.perceptual_weight)
        loss, parts = loss + r_loss, parts | r_parts
    return loss, parts


def pretrain(generator: TriPlaneGenerator, *, pool: dict[str, torch.Tensor], held_out: dict[str, torch.Tensor],
             settings: PretrainSettings, seed: int, checkpoint: Path, judge: Measures, perceptual=None,
             minutes: float | None = None, progress: str | None = None) -> tuple[TriPlaneGenerator, dict]:
    """Train ``generator`` (on its device) by ``settings``' schedule with :func:`loop.fit` (resumable
    from ``checkpoint``, bounded by ``minutes``); ``perceptual`` is the LPIPS of the rendered loss.
    Returns G (eval) and the log (``step``, ``seconds``, ``curve``, ``done``)."""
    if settings.perceptual_weight > 0 and settings.render_steps > 0 and perceptual is None:
        raise ValueError("these settings weigh LPIPS in the rendered loss: pass perceptual=load_lpips('alex')")

    def loss(step: int, idx: torch.Tensor, rng: torch.Generator):
        rendering = step >= settings.distill_steps
        return train_step(generator, pool, idx, distill=not rendering or settings.distill_weight > 0,
                          rendered=rendering, settings=settings, rng=rng, perceptual=perceptual)

    return fit(generator, loss=loss, measure=lambda g: measure(g, held_out, judge=judge),
               steps=settings.distill_steps + settings.render_steps, pool_size=len(pool["z"]), batch=settings.batch,
               lr=settings.lr, cooldowns=settings.cooldowns, seed=seed, checkpoint=checkpoint,
               eval_every=settings.eval_every, checkpoint_every=settings.checkpoint_every, minutes=minutes,
               progress=progress,
               phase=lambda step: "render" if step >= settings.distill_steps else "distill")
