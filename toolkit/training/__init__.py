"""Training: the one distributed loop, checkpoints, metrics, optimizers, strategies and devices."""
