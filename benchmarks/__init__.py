"""Side-by-side benchmarks of XViT against a per-frame ViT, TimeSformer and ViViT (`python -m benchmarks.run`)."""
