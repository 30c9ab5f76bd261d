"""portraitlib: a reproducible study of few-shot 3D portrait stylization.

Every notebook imports it the same way, ``import portraitlib as pl``, and opens with
``ctx = pl.setup("NN_name", profile=profile, seed=seed)``.
"""
from portraitlib.cache import ArtifactCache
from portraitlib.profile_loading import available_profiles, load_profile
from portraitlib.profiles import STYLES, Profile, ProfileError
from portraitlib.device import pick_device
from portraitlib.pipeline import Study
from portraitlib.study import StudyContext, seed_everything, setup

__version__ = "0.1.0"

__all__ = [
    "STYLES", "ArtifactCache", "Profile", "ProfileError", "Study", "StudyContext", "available_profiles",
    "load_profile", "pick_device", "seed_everything", "setup",
]
