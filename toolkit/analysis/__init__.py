"""Analyses of trained models: how a latent space organises its examples."""
