"""CLIP models behind one interface: the world CLIP (open_clip's own ``CLIP`` class, small, trained
on the world's captions) and real OpenAI/LAION weights loaded by path at paper scale.

    clip = load_pretrained("ViT-B-32-quickgelu", ".cache/weights/clip-vit-b-32-openai.pt")
    clip(images, ["a cartoon of a person"] * len(images))   # CLIP scores (N,)

The CLIP score is the one of seed 001 (free-style 3D portraits, Table 1: 0.229-0.332): the cosine
between the text's and the image's embeddings, reported as it is - not Hessel et al.'s
2.5 max(cos, 0), nor torchmetrics' 100 max(cos, 0).
"""
from __future__ import annotations

from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import get_model_preprocess_cfg, set_model_preprocess_cfg
from open_clip.pretrained import get_pretrained_cfg
from torch import nn

WORLD_CLIP = "clip_world"
"""``name`` of the world CLIP: never reported as CLIP."""
VOCAB_SIZE = 49408
"""Size of open_clip's BPE vocabulary (shipped in its wheel), that of every OpenAI/LAION text tower."""


class Clip(nn.Module):
    """An open_clip model with its tokenizer and image preprocessing.

    ``encode_images``: images (N, 3, H, W) in [0, 1] -> unit embeddings (N, D), resized (shorter
    side, bicubic, centre crop) and normalised as the model was trained; ``encode_texts``: N
    strings -> (N, D); calling it on both gives the CLIP score (N,). ``name`` says which CLIP
    produced a number (``clip_world``, or the open_clip architecture) and ``weights`` where its
    weights came from, as the LPIPS objects do. Differentiable (for CLIP-guided losses)."""

    def __init__(self, *, model: open_clip.CLIP, tokenizer, name: str, weights: str):
        super().__init__()
        self.model, self.tokenizer, self.name, self.weights = model, tokenizer, name, weights
        cfg = get_model_preprocess_cfg(model)
        size = cfg["size"]
        self.size = size if isinstance(size, int) else int(size[0])
        self.register_buffer("mean", torch.tensor(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", open_clip.OPENAI_DATASET_STD)).view(1, 3, 1, 1),
                             persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [0, 1] -> the model's normalised input (N, 3, S, S)."""
        h, w = images.shape[-2:]
        if (h, w) != (self.size, self.size):
            scale = self.size / min(h, w)
            images = F.interpolate(images, size=(max(self.size, round(h * scale)), max(self.size, round(w * scale))),
                                   mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
            top, left = (images.shape[-2] - self.size) // 2, (images.shape[-1] - self.size) // 2
            images = images[..., top:top + self.size, left:left + self.size]
        return (images - self.mean) / self.std

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings (N, D) of images (N, 3, H, W) in [0, 1]."""
        return self.model.encode_image(self.preprocess(images), normalize=True)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (N, context length) of ``texts``, on the model's device."""
        return self.tokenizer(list(texts)).to(self.mean.device)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Unit text embeddings (N, D) of N strings."""
        return self.model.encode_text(self.tokenize(texts), normalize=True)

    def forward(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """CLIP scores (N,): the cosine between each image (N, 3, H, W) and its text."""
        if len(images) != len(texts):
            raise ValueError(f"one text per image: got {len(images)} images and {len(texts)} texts")
        return clip_score(self.encode_images(images), self.encode_texts(texts))


def clip_score(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Seed 001's CLIP score (N,) of paired embeddings (N, D) and (N, D): their cosine similarity,
    unscaled and unclipped (identical directions score 1, opposite ones -1)."""
    return F.cosine_similarity(image_embeddings, text_embeddings, dim=-1)


def architecture(config) -> dict:
    """open_clip's model config (``embed_dim``, ``vision_cfg``, ``text_cfg``) of a world CLIP of
    ``config`` (a ``ClipConfig``): a ModifiedResNet (``vision = "resnet"``, one block per stage) or a
    ViT image tower at ``image_size``, and a small causal text transformer over open_clip's BPE
    vocabulary. ``open_clip.CLIP(**architecture(config))`` builds it."""
    if config.vision == "resnet":
        vision = {"layers": (config.vision_layers,) * 4, "width": config.vision_width}
    else:
        vision = {"layers": config.vision_layers, "width": config.vision_width, "patch_size": config.patch_size,
                  "head_width": config.vision_width // config.vision_heads}
    return {"embed_dim": config.embed_dim,
            "vision_cfg": {"image_size": config.image_size, **vision},
            "text_cfg": {"context_length": config.context_length, "vocab_size": VOCAB_SIZE,
                         "width": config.text_width, "heads": config.text_heads, "layers": config.text_layers}}


def world_clip(config, *, weights: str) -> Clip:
    """A world CLIP of ``config`` (``ClipConfig``), freshly initialised from torch's RNG (build it
    inside ``device.seeded_build``); ``weights`` says where its weights come from."""
    model = open_clip.CLIP(**architecture(config))
    set_model_preprocess_cfg(model, {"size": config.image_size, "mode": "RGB", "mean": open_clip.OPENAI_DATASET_MEAN,
                                     "std": open_clip.OPENAI_DATASET_STD, "interpolation": "bicubic",
                                     "resize_mode": "shortest"})
    return Clip(model=model, tokenizer=open_clip.SimpleTokenizer(context_length=config.context_length),
                name=WORLD_CLIP, weights=weights)


def load_pretrained(model_name: str, weights: str | Path, *, tag: str = "openai",
                    device: torch.device | str = "cpu") -> Clip:
    """Real CLIP weights by path: ``open_clip.create_model_and_transforms(model_name, pretrained=weights)``.
    A missing file is a ``FileNotFoundError`` naming it and where ``tag``'s release of
    ``model_name`` can be downloaded (nothing is downloaded here)."""
    path = Path(weights)
    if not path.is_file():
        source = get_pretrained_cfg(model_name, tag)
        where = (f"download {source['url']} (or open_clip_model.safetensors from https://huggingface.co/"
                 f"{source['hf_hub'].rstrip('/')})" if source else
                 f"see open_clip.list_pretrained() for the releases of {model_name!r}")
        raise FileNotFoundError(f"CLIP weights {path} not found: the {tag} {model_name} checkpoint is needed for CLIP "
                                f"scores with real CLIP; {where} and save it as {path}, or leave the weights out "
                                f"to use the world CLIP")
    model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=str(path), device=device)
    clip = Clip(model=model, tokenizer=open_clip.get_tokenizer(model_name), name=f"clip_{model_name}",
                weights=path.name)
    return clip.to(device).eval()
