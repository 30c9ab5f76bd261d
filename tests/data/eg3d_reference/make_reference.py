"""Writes this folder's fixture with the OFFICIAL EG3D code (not part of portraitlib; see README.md).

Run from the ``eg3d/`` folder of a checkout of github.com/NVlabs/eg3d (commit in README.md), on the
CPU, with a python that has torch and numpy:

    python make_reference.py OUT_DIR [SCRATCH_DIR]

It builds the official TriPlaneGenerator (super-resolution SuperresolutionHybrid8XDC) at a small
backbone, perturbs its weights (seeded), makes every value exact in fp16, renders 2 (z, camera)
pairs with deterministic sampling, and writes G_ema.pkl and reference.npz (plus the fp32 outputs
to SCRATCH_DIR/full_fp32_outputs.pt if given).
"""
import copy
import math
import pickle
import sys

import numpy as np
import torch

sys.path.insert(0, ".")
import dnnlib  # noqa: E402  (the official repo's own modules)
from camera_utils import LookAtPoseSampler  # noqa: E402
from torch_utils import persistence  # noqa: E402
from training.triplane import TriPlaneGenerator  # noqa: E402
from training.volumetric_rendering.renderer import ImportanceRenderer  # noqa: E402

OUT = sys.argv[1]
RENDERING = dict(
    image_resolution=512, disparity_space_sampling=False, clamp_mode="softplus",
    superresolution_module="training.superresolution.SuperresolutionHybrid8XDC",
    c_gen_conditioning_zero=False, gpc_reg_prob=0.5, c_scale=1.0, superresolution_noise_mode="none",
    density_reg=0.25, density_reg_p_dist=0.004, reg_type="l1", decoder_lr_mul=1.0, sr_antialias=True,
    depth_resolution=48, depth_resolution_importance=48, ray_start=2.25, ray_end=3.3, box_warp=1,
    avg_camera_radius=2.7, avg_camera_pivot=[0, 0, 0.2])

torch.manual_seed(17)
G = TriPlaneGenerator(
    z_dim=32, c_dim=25, w_dim=512, img_resolution=512, img_channels=3, sr_num_fp16_res=4,
    mapping_kwargs=dnnlib.EasyDict(num_layers=2), rendering_kwargs=RENDERING,
    sr_kwargs=dnnlib.EasyDict(channel_base=32768, channel_max=512, fused_modconv_default="inference_only"),
    channel_base=4096, channel_max=16, fused_modconv_default="inference_only", num_fp16_res=0, conv_clamp=None,
).eval().requires_grad_(False)
G.neural_rendering_resolution = 128

# Perturb what the init leaves constant: biases, noise strengths, w_avg.
gen = torch.Generator().manual_seed(1717)
for m in G.modules():
    kind = type(m).__name__
    if kind == "FullyConnectedLayer":
        m.bias += torch.randn(m.bias.shape, generator=gen) * (0.2 / m.bias_gain)
    if kind in ("SynthesisLayer", "ToRGBLayer"):
        m.bias += torch.randn(m.bias.shape, generator=gen) * 0.2
    if kind == "SynthesisLayer":
        m.noise_strength += torch.randn([], generator=gen) * 0.2
    if kind == "MappingNetwork":
        m.w_avg += torch.randn(m.w_avg.shape, generator=gen) * 0.5
G.decoder.net[2].bias[0] += 2.0  # a denser field: opaque surfaces, a meaningful depth
# A few super-resolution channels driven past the +-256 conv clamp (after bias, lrelu and gain),
# their weights downstream scaled by 1/256 so that the image stays in the usual range.
sr = G.superresolution
sr.block0.conv0.bias[8:12] = -1000.0  # 0.2 * sqrt(2) * -1000 = -283 -> -256
sr.block0.conv1.weight[:, 8:12] /= 256
sr.block0.conv1.bias[:8] = 190.0  # sqrt(2) * 190 = 269 -> 256
sr.block1.conv0.weight[:, :8] /= 256
sr.block0.torgb.weight[:, :8] /= 256
sr.block1.conv0.bias[:4] = 190.0
sr.block1.conv1.weight[:, :4] /= 256
sr.block1.torgb.weight[:, :4] /= 256


def zero_sr_noise(g, dtype):
    """The super-resolution noise buffers are unused (noise mode 'none'): zeros with stride 0."""
    for block in (g.superresolution.block0, g.superresolution.block1):
        for conv in (block.conv0, block.conv1):
            conv.noise_const = torch.zeros(1, dtype=dtype).expand(conv.noise_const.shape)


zero_sr_noise(G, torch.float32)
for t in [*G.parameters(), *G.buffers()]:  # every value exact in fp16: the fp16 file is exact
    if t.stride() != (0, 0):
        t.copy_(t.half().float())

z = torch.randn(2, 32, generator=torch.Generator().manual_seed(2017)).half().float()
c2w0 = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]])
c2w1 = LookAtPoseSampler.sample(math.pi / 2 + 0.3, math.pi / 2 - 0.15, torch.tensor([0, 0, 0.2]), radius=2.7)[0]
k0 = torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1]])
k1 = torch.tensor([[4.0, 0.03, 0.47], [0, 4.1, 0.53], [0, 0, 1]])  # other focals, skew, off-centre
c = torch.stack([torch.cat([c2w0.flatten(), k0.flatten()]), torch.cat([c2w1.flatten(), k1.flatten()])])

# Deterministic sampling: stratified depths at mid-bin, importance draws evenly spaced (det=True).
rand_like, sample_pdf = torch.rand_like, ImportanceRenderer.sample_pdf
torch.rand_like = lambda x, **kwargs: torch.full_like(x, 0.5)
ImportanceRenderer.sample_pdf = lambda self, bins, w, n, det=False, eps=1e-5: sample_pdf(self, bins, w, n, True, eps)
with torch.no_grad():
    out = G(z, c, truncation_psi=0.7, noise_mode="const")
torch.rand_like, ImportanceRenderer.sample_pdf = rand_like, sample_pdf

# {'G_ema': G} pickled by the official persistence, module sources replaced by a placeholder.
G_file = copy.deepcopy(G).half()
zero_sr_noise(G_file, torch.float16)
for m in G_file.modules():
    if persistence.is_persistent(m):
        type(m)._orig_module_src = "# source omitted: see tests/data/eg3d_reference/README.md\n"
with open(f"{OUT}/G_ema.pkl", "wb") as f:
    pickle.dump({"G_ema": G_file}, f, protocol=4)
np.savez_compressed(f"{OUT}/reference.npz", z=z.numpy(), c=c.numpy(), truncation_psi=np.float32(0.7),
                    image=out["image"].half().numpy(), image_raw=out["image_raw"].numpy(),
                    image_depth=out["image_depth"].numpy())
if len(sys.argv) > 2:
    torch.save(out, f"{sys.argv[2]}/full_fp32_outputs.pt")
for k, v in out.items():
    print(k, tuple(v.shape), f"min {v.min():.4f} max {v.max():.4f} std {v.std():.4f}")
