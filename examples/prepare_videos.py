#!/usr/bin/env python
"""Prepare training videos once: any source the training script reads, as shards whose clips decode cheaply.

    python examples/prepare_videos.py --data_dir videos/ --output_dir videos-prepared --num_workers 16
    python examples/run_video_classification.py --prepared_dir videos-prepared --augment_on_device ...

The work is done by `modeling_xvit.training.prepare.main`; this file is its command line. A killed run started again
with the same options keeps the finished shards; `index.json` in the output folder lists what was written and the
unreadable videos. `--keyint`, `--bframes` and `--crf` set the encoding (the defaults: docs/training.md).
"""

import sys

from modeling_xvit.training.prepare import main

if __name__ == "__main__":
    sys.exit(main())
