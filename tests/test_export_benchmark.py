"""benchmarks/export.py runs end to end on the demo model and reports every variant; no timing is asserted."""

import pytest

from benchmarks import export

VARIANTS = (
    "PyTorch float32",
    "ONNX, legacy exporter",
    "ONNX, dynamo exporter",
    "torch.export (batch 1)",
    "int8 dynamic quantisation",
)


@pytest.mark.slow
def test_every_variant_scores_the_clips_as_the_model_does(capsys):
    pytest.importorskip("onnxruntime")
    export.main(["--num-per-class", "1", "--rounds", "1"])
    rows = {line[:28].strip(): line[28:].split() for line in capsys.readouterr().out.splitlines()}
    for variant in VARIANTS:
        accuracy, difference = float(rows[variant][0]), float(rows[variant][1])
        assert 0 <= accuracy <= 1
        # Float32 variants match PyTorch; int8 weights move the logits a little.
        assert difference < (0.5 if variant.startswith("int8") else 1e-4), variant
