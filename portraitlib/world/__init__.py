"""The synthetic 3D head world: identities, looks (real and five styles) and a renderer."""
from portraitlib.world.head import MATERIALS, head_sdf
from portraitlib.world.identity import LATENT_DIM, HeadParams, params_from_latent, sample_latents
from portraitlib.world.renderer import FAR, NEAR, Render, Scene, render
from portraitlib.world.styles import HELD_OUT_STYLES, REAL, STYLE_SPECS, StyleSpec, get_style

__all__ = ["FAR", "HELD_OUT_STYLES", "LATENT_DIM", "MATERIALS", "NEAR", "REAL", "STYLE_SPECS", "HeadParams", "Render",
           "Scene", "StyleSpec", "get_style", "head_sdf", "params_from_latent", "render", "sample_latents"]
