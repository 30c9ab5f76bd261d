"""3DAvatarGAN (seed 002) on the head world (notebook 10, issue #28).

- :mod:`portraitlib.avatar3d.planes`: which plane holds the head (Sec. 3.4): swap one plane
  between two heads and measure how far the render and its depth move.
- :mod:`portraitlib.avatar3d.alignment`: the camera under which G's heads show their face
  keypoints as a 2D style set does (Sec. 3.1), against a set the world renders with a known shift.
- :mod:`portraitlib.avatar3d.transfer`: G_s adapted to a style's 2D set (Sec. 3.2) with the
  camera sources, the unconditional D and :mod:`portraitlib.avatar3d.regularisers` (R(Delta s),
  R(D)) that Table 3's camera rows vary, and its depth against the truth.
- :mod:`portraitlib.avatar3d.config`: their settings (``Profile.avatar3d``);
  :mod:`portraitlib.avatar3d.claims`: the claims as the report states them.
"""
