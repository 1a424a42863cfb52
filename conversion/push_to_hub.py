#!/usr/bin/env python
"""Upload exactly the checked files of a model folder to a Hub repository.

    python conversion/push_to_hub.py --help        (installed: `xvit-push-to-hub --help`)

The work is done by `modeling_xvit.hub.upload.main`; this file is its command line.
"""

import sys

from modeling_xvit.hub.upload import main

if __name__ == "__main__":
    sys.exit(main())
