"""Conversion of the original XViT checkpoints and of image ViT weights to Transformers XViT models."""
