"""The CLIP tokenizer offline: transformers' ``CLIPTokenizer`` over the CLIP BPE merges that
open_clip ships (``bpe_simple_vocab_16e6.txt.gz``), the same vocabulary of 49,408 tokens as
openai's CLIP."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from open_clip.tokenizer import bytes_to_unicode, default_bpe
from transformers import CLIPTokenizer

N_MERGES = 49152 - 256 - 2
"""CLIP keeps this many merges of the file (after its header line)."""


def clip_tokenizer(folder: Path) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` whose ``vocab.json`` and ``merges.txt`` are written to ``folder`` (once)
    from open_clip's BPE file: byte tokens, their end-of-word forms, one token per merge, then
    ``<|startoftext|>`` and ``<|endoftext|>``."""
    folder = Path(folder)
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    if not (vocab_file.exists() and merges_file.exists()):
        lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
        merges = lines[1:N_MERGES + 1]
        units = list(bytes_to_unicode().values())
        tokens = units + [u + "</w>" for u in units] + ["".join(m.split()) for m in merges]
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        folder.mkdir(parents=True, exist_ok=True)
        vocab_file.write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        merges_file.write_text("\n".join(["#version: 0.2", *merges]) + "\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)  # transformers 4 and 5 alike
