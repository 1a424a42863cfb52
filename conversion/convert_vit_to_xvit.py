#!/usr/bin/env python
"""Initialise XViT from an image ViT (a Transformers ViTModel folder or a timm state dict), as the paper does.

    python conversion/convert_vit_to_xvit.py --help        (installed: `xvit-convert-vit --help`)

The work is done by `modeling_xvit.conversion.vit.main`; this file is its command line.
"""

import sys

from modeling_xvit.conversion.vit import main

if __name__ == "__main__":
    sys.exit(main())
