#!/usr/bin/env python
"""Convert a checkpoint of the original XViT release to a complete Transformers model folder for the Hub.

    python conversion/convert_original_xvit.py --help        (installed: `xvit-convert-original --help`)

The work is done by `modeling_xvit.conversion.original.main`; this file is its command line.
"""

import sys

from modeling_xvit.conversion.original import main

if __name__ == "__main__":
    sys.exit(main())
