"""AgileGAN3D (few-shot 3D portrait stylization by augmented transfer learning), stage by stage,
where a reader of the paper looks for it:

| paper | module | what |
|---|---|---|
| Sec. 3.1, style prior creation | :mod:`~portraitlib.agilegan3d.style_prior` | S -> S_t on ~20 exemplars; x_s = S_t(E(x)) with x's camera label p |
| Eq. 1, L_prior | :mod:`~portraitlib.agilegan3d.prior_transfer` | G_phi and its dual D fine-tuned adversarially on (x_s, p) |
| Sec. 3.2, Eqs. 2-4 | :mod:`~portraitlib.agilegan3d.cycle_encoder` | the 17-code W+ encoder E_theta with L_rec, L_cyc and L_reg |
| Sec. 3.3, Eq. 5, L_guide | :mod:`~portraitlib.agilegan3d.guided_transfer` | L_prior + L_guide(x_s, G_phi(E_theta(x), p)) |
| Tables 1-3 | :mod:`~portraitlib.agilegan3d.baselines`, :mod:`~portraitlib.agilegan3d.claims` | AgileGAN-EG3D, Toonify-EG3D; the claims the tables test |

The pretrained EG3D G that all of them start from is :mod:`portraitlib.generator3d`; the
photo-to-portrait function is :mod:`portraitlib.portrait`; :class:`portraitlib.Study` builds each
stage once. The neighbouring papers (free-style 3D portraits, 3DAvatarGAN, MMFS) will sit beside
this package, each in its own.
"""
