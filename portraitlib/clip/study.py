"""The world CLIP for a notebook: build or load it, measure it, draw what it retrieves and misses.

    results, fig = clip_study(ctx)     # results["clip"]: the measures; fig: the figure
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from portraitlib.clip.measures import HeldOut, embed_images, embed_texts, evaluate, held_out_set
from portraitlib.clip.model import Clip
from portraitlib.clip.training import study_clip
from portraitlib.world.captions import ATTRIBUTE_QUERIES, Attribute, attribute_prompt, look_prompt


def _show(ax, image: torch.Tensor, title: str, *, ok: bool | None = None) -> None:
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=6)
    if ok is not None:
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:green" if ok else "tab:red")
            spine.set_linewidth(2.5)


def _misses(clip: Clip, held: HeldOut, limit: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Up to ``limit`` text-to-image misses, the first of each query (looks first, then each
    attribute in each look): (query, retrieved image, true image)."""
    out: dict[str, tuple[str, torch.Tensor, torch.Tensor]] = {}
    images = embed_images(clip, held.images)
    prompts = [look_prompt(look) for look in held.looks]
    best = torch.einsum("qd,lnd->qln", embed_texts(clip, prompts), images).argmax(1)  # (L, N)
    for q, n in (best != torch.arange(len(held.looks))[:, None]).nonzero().tolist():
        out.setdefault(prompts[q], (prompts[q], held.images[best[q, n], n], held.images[q, n]))
    for attribute, renders in held.attributes.items():
        queries = [attribute_prompt(attribute, v) for v in ATTRIBUTE_QUERIES[attribute]]
        for look, x in renders.items():
            best = torch.einsum("qd,vmd->qvm", embed_texts(clip, queries), embed_images(clip, x)).argmax(1)
            for q, m in (best != torch.arange(len(queries))[:, None]).nonzero().tolist():
                text = f"{queries[q]} ({look})"
                out.setdefault(text, (text, x[best[q, m], m], x[q, m]))
    return list(out.values())[:limit]


def figure(clip: Clip, held: HeldOut, measures: dict, *, examples: int = 5):
    """Left, one row per query: the top ``examples`` of all held-out look renders for each look
    prompt, "a person with glasses" and a zero-shot look word (green frame: the query is true of the
    render); right, the look confusion matrix; bottom, what the CLIP gets wrong (the first miss of
    each query: the retrieved render, then the true one)."""
    looks = list(held.looks)
    pool = held.images.reshape(-1, *held.images.shape[2:])
    truth = torch.arange(len(looks)).repeat_interleave(held.images.shape[1])
    queries = [(look_prompt(look), truth == i) for i, look in enumerate(looks)]
    glasses = torch.tensor([d.glasses for row in held.descriptions for d in row])
    queries += [(attribute_prompt(Attribute.GLASSES, True), glasses)]
    if "cartoon" in looks:
        queries.append((look_prompt("cartoon", held_out=True) + " (zero-shot)", truth == looks.index("cartoon")))
    sims = embed_texts(clip, [q for q, _ in queries]) @ embed_images(clip, pool).T
    columns = examples + 5
    wrong = _misses(clip, held, columns // 2)
    fig = plt.figure(figsize=(1.3 * columns, 1.3 * (len(queries) + 1)), layout="constrained")
    grid = fig.add_gridspec(len(queries) + 1, columns)
    for r, (text, correct) in enumerate(queries):
        for c, idx in enumerate(sims[r].topk(examples).indices.tolist()):
            _show(fig.add_subplot(grid[r, c]), pool[idx], text if c == 0 else "", ok=bool(correct[idx]))
    ax = fig.add_subplot(grid[:len(queries), examples + 1:])
    table = torch.tensor(measures["confusion"], dtype=torch.float32)
    ax.imshow(table / table.sum(1, keepdim=True), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(looks)), looks, rotation=45, fontsize=7, ha="right")
    ax.set_yticks(range(len(looks)), looks, fontsize=7)
    ax.set_xlabel("best-matching look prompt", fontsize=7)
    ax.set_title(f"look confusion (held out), look_top1 {measures['look_top1']:.3f}", fontsize=8)
    for (i, j), v in zip(torch.cartesian_prod(torch.arange(len(looks)), torch.arange(len(looks))).tolist(),
                         table.flatten().int().tolist()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
    for k, (text, got, want) in enumerate(wrong):
        _show(fig.add_subplot(grid[len(queries), 2 * k]), got, f"miss: {text}", ok=False)
        _show(fig.add_subplot(grid[len(queries), 2 * k + 1]), want, "truth", ok=True)
    fig.suptitle(f"{measures['name']} ({measures['weights']}): text-to-image retrieval, held-out identities",
                 fontsize=8)
    return fig


def clip_study(ctx, *, progress: bool = True) -> tuple[dict, object]:
    """The study's CLIP (``training.study_clip``: the world CLIP, built on first use, or real weights)
    measured on the world's held-out renders; returns ``{"clip": measures, "clip_training": info}``
    (curve, training seconds, example captions) and the figure."""
    clip, info = study_clip(ctx, progress=progress)
    held = held_out_set(cache=ctx.cache, world=ctx.profile.world, config=ctx.profile.clip, seed=ctx.seed)
    measures = evaluate(clip, held)
    return {"clip": measures, "clip_training": info}, figure(clip, held, measures)
