"""Fine-tuning XViT with the Transformers `Trainer`: the arguments (`arguments`), data sources (`data`), the model and
its video processor (`model`), the collator, the trainer, evaluation and predictions (`evaluation`), the output
folder of a run (`run_folder`), the Hub folder and its publication (`output`), the top-k metric, the training card
and curve. `examples/run_video_classification.py` is the command line over these modules."""

from pathlib import Path

# A local `evaluate` module (evaluate.load(str(TOP_K_ACCURACY_METRIC))): the Hub's "accuracy" needs the network.
TOP_K_ACCURACY_METRIC = Path(__file__).resolve().parent / "metrics" / "top_k_accuracy"
