"""CLIP for the study's CLIP scores (free-style 3D portraits, MMFS) without downloading weights.

No CLIP weights exist offline, but the world captions every render exactly. A small CLIP of
open_clip's own classes (tokenizer, ``CLIP``, ``ClipLoss``) trained on those captions is a real
contrastive model whose text-image space is checked against the truth; at paper scale the same
interface loads OpenAI/LAION weights by path.

- :mod:`portraitlib.clip.model`: :class:`Clip` (images and texts -> embeddings, CLIP score),
  the world CLIP's architecture, :func:`load_pretrained`;
- :mod:`portraitlib.clip.training`: training and caching the world CLIP (:func:`study_clip`);
- :mod:`portraitlib.clip.measures`: retrieval of looks and attributes, zero-shot, the score gap;
- :mod:`portraitlib.clip.study`: the notebook section (:func:`clip_study`: results and a figure).
"""
from portraitlib.clip.model import WORLD_CLIP, Clip, clip_score, load_pretrained
from portraitlib.clip.training import study_clip, study_world_clip

__all__ = ["WORLD_CLIP", "Clip", "clip_score", "load_pretrained", "study_clip", "study_world_clip"]
