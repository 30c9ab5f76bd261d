"""Networks: StyleGAN2 blocks, the 2D generator, the EG3D tri-plane generator, discriminators,
the volume renderer and checkpoint loaders."""
