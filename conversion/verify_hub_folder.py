#!/usr/bin/env python
"""Check offline that a model folder loads and runs from its own remote code, as a Hub user's machine would.

    python conversion/verify_hub_folder.py --help        (installed: `xvit-verify-hub-folder --help`)

The work is done by `modeling_xvit.hub.verify.main`; this file is its command line.
"""

import sys

from modeling_xvit.hub.verify import main

if __name__ == "__main__":
    sys.exit(main())
