"""Training: augmentation for small data sets, resumable checkpoints, GAN training loops."""
