"""Turn a stylized 3D portrait with sliders (ipywidgets), or, headless, as a static grid.

    explorer = Explorer(stylizer=stylizer, photos=photos, names=["test 0", "astronaut"])
    display(explorer.widget())          # in Jupyter: yaw, pitch, style, photo
    grid = explorer.grid(photo=0, style="anime", yaws=[-30, 0, 30], pitches=[-15, 0, 15])

While a slider is dragged the view is rendered with a quarter of the rays (a preview); a moment
after the last change it is rendered again at full quality.
"""
from __future__ import annotations

import io
import threading

import torch
from PIL import Image

from portraitlib import cameras, generator3d, viz
from portraitlib.portrait import Stylizer

SETTLE_SECONDS = 0.3
"""Quiet time after the last slider change before the full-quality render."""


class Explorer:
    """Photos' codes held once; renders of any style from any yaw and pitch."""

    def __init__(self, *, stylizer: Stylizer, photos: torch.Tensor, names: list[str]):
        if len(names) != len(photos):
            raise ValueError(f"{len(photos)} photos but {len(names)} names")
        self.stylizer, self.names = stylizer, list(names)
        self.codes = stylizer.codes(photos)

    @torch.no_grad()
    def render(self, *, photo: int, style: str, yaw: float, pitch: float, preview: bool = False) -> torch.Tensor:
        """One view (3, R, R) in [0, 1]; ``preview`` halves the neural rendering resolution."""
        if style not in self.stylizer.generators:
            raise ValueError(f"unknown style {style!r}; trained: {sorted(self.stylizer.generators)}")
        generator = self.stylizer.generators[style]
        labels = cameras.labels_from_angles(float(yaw), float(pitch))
        r = generator.config.neural_rendering_resolution
        return generator3d.render(generator, self.codes[photo:photo + 1], labels,
                                  neural_rendering_resolution=max(r // 2, 8) if preview else None)["image"][0]

    def grid(self, *, photo: int, style: str, yaws: list[float], pitches: list[float]) -> torch.Tensor:
        """Views (len(pitches), len(yaws), 3, R, R): the static stand-in for the widget."""
        labels = torch.cat([cameras.labels_from_angles(list(map(float, yaws)), float(p)) for p in pitches])
        ws = self.codes[photo:photo + 1].expand(len(labels), -1, -1)
        images = generator3d.render(self.stylizer.generators[style], ws, labels)["image"]
        return images.unflatten(0, (len(pitches), len(yaws)))

    def widget(self, *, display_size: int = 256):
        """An ipywidgets box: yaw and pitch sliders, style and photo menus, the rendered view."""
        import ipywidgets as w  # only the interactive path needs it

        yaw = w.FloatSlider(value=0, min=-60, max=60, step=1, description="yaw")
        pitch = w.FloatSlider(value=0, min=-30, max=30, step=1, description="pitch")
        style = w.Dropdown(options=sorted(self.stylizer.generators), description="style")
        photo = w.Dropdown(options=[(n, i) for i, n in enumerate(self.names)], value=0, description="photo")
        view = w.Image(format="png", width=display_size, height=display_size)
        timer: list[threading.Timer] = []

        def show(preview: bool) -> None:
            image = self.render(photo=photo.value, style=style.value, yaw=yaw.value, pitch=pitch.value,
                                preview=preview)
            view.value = png_bytes(image, size=display_size)

        def changed(_change) -> None:
            show(preview=True)
            for t in timer:
                t.cancel()
            timer[:] = [threading.Timer(SETTLE_SECONDS, show, kwargs={"preview": False})]
            timer[0].start()

        for control in (yaw, pitch, style, photo):
            control.observe(changed, names="value")
        show(preview=False)
        return w.VBox([w.HBox([photo, style]), w.HBox([yaw, pitch]), view])


def png_bytes(image: torch.Tensor, *, size: int | None = None) -> bytes:
    """PNG file bytes of an image (3, R, R) in [0, 1], upscaled (nearest) to ``size``."""
    pil = viz.to_pil(image)
    if size is not None:
        pil = pil.resize((size, size), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()
