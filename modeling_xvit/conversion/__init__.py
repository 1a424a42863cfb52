"""Conversion to XViT: checkpoints of the original release (key mapping and a reference forward pass) and image ViTs
(the paper's initialisation). The command lines are the scripts in the repository's `conversion/` folder."""
