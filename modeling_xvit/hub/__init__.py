"""Publishing to the Hub: the folder writer (the one place that writes `auto_map`), the model card, the Inference
Endpoints handler copied into every folder, the upload of exactly the checked files, and the offline verifier."""
