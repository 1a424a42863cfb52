"""ONNX export with both of torch's exporters, run in onnxruntime: the scores are the model's."""

import pytest
import torch

from modeling_xvit import XViTForVideoClassification

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_and_mixing_effect(tiny_config) -> tuple[XViTForVideoClassification, float]:
    """A tiny classifier whose space-time mixing changes the scores plainly (random tiny weights barely mix, larger
    ones do), and how much: an export that dropped the mixing could not pass for the model."""
    options = dict(initializer_range=0.3, summary_token_layers=[1])
    torch.manual_seed(0)
    model = XViTForVideoClassification(tiny_config(**options)).eval()
    without_mixing = XViTForVideoClassification(tiny_config(**options, space_time_mixing_layers=[]))
    without_mixing.load_state_dict(model.state_dict())
    pixel_values = clip_batch(2)
    with torch.no_grad():
        effect = (without_mixing.eval()(pixel_values).logits - model(pixel_values).logits).abs().max().item()
    return model, effect


def clip_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 4, 3, 32, 32, generator=torch.Generator().manual_seed(batch_size))


def onnx_logits(path: str, pixel_values: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"pixel_values": pixel_values.numpy()})
    return torch.from_numpy(logits)


def expected_logits(model: XViTForVideoClassification, pixel_values: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values).logits


@pytest.mark.slow
def test_legacy_exporter_keeps_space_time_mixing(model_and_mixing_effect, tmp_path):
    # The legacy exporter traces one batch size (its graph fixes the CLS tokens' batch dimension); the dynamo
    # exporter below leaves it free.
    model, mixing_effect = model_and_mixing_effect
    assert mixing_effect > 0.1
    path = str(tmp_path / "xvit.onnx")
    pixel_values = clip_batch(2)
    torch.onnx.export(
        model, (pixel_values,), path, dynamo=False, input_names=["pixel_values"], output_names=["logits"]
    )
    torch.testing.assert_close(
        onnx_logits(path, pixel_values), expected_logits(model, pixel_values), rtol=0, atol=1e-4
    )


@pytest.mark.slow
def test_dynamo_exporter_matches_the_model(model_and_mixing_effect, tmp_path):
    pytest.importorskip("onnxscript")
    model, mixing_effect = model_and_mixing_effect
    assert mixing_effect > 0.1
    path = str(tmp_path / "xvit.onnx")
    batch_size = torch.export.Dim("batch_size", min=1, max=64)
    torch.onnx.export(
        model,
        (),
        path,
        kwargs={"pixel_values": clip_batch(2)},
        dynamo=True,
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_shapes={"pixel_values": {0: batch_size}},
        optimize=True,
        verbose=False,
    )
    for batch_size in (2, 3):
        pixel_values = clip_batch(batch_size)
        torch.testing.assert_close(
            onnx_logits(path, pixel_values), expected_logits(model, pixel_values), rtol=0, atol=1e-4
        )
