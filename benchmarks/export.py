"""Export and deployment figures of the demo model: ONNX with both of torch's exporters run in onnxruntime,
`torch.export`, and int8 dynamic quantisation, each against the model in PyTorch on new synthetic motion clips.

    python -m benchmarks.export                        # 10 clips per class, the demo model
    python -m benchmarks.export --num-per-class 2 --model examples/xvit-motion-small

It prints, per variant, the top-1 accuracy on the clips, the largest logit difference from PyTorch (float32), the
variant's file size where it has one, and the median time of one clip (batch 1) on this machine's CPU (the variants
take turns, so that drift of a shared machine hits them alike), on
`--threads` threads (1 by default: PyTorch and onnxruntime then compare on equal terms, and other work on a shared
machine disturbs the figures less).
"""

import argparse
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from benchmarks.measure import time_interleaved
from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.demo.motion_data import CLASSES, MotionSettings, generate_clips

DEMO_MODEL = Path(__file__).resolve().parents[1] / "examples" / "xvit-motion-small"
SEED = 2024  # the demo's seed: clips the model never saw (its data set was drawn with seed 0)


def demo_clips(processor: XViTVideoProcessor, labels: Sequence[str], num_per_class: int) -> tuple[torch.Tensor, list]:
    """`(clips, labels)`: the processed pixel values of `num_per_class` new clips of each class, one view each."""
    frames, targets = [], []
    for label in labels:
        for clip in generate_clips(label, num_per_class, SEED, split="test", settings=MotionSettings()):
            frames.append(clip.frames())
            targets.append(label)
    return processor(frames, return_tensors="pt")["pixel_values"], targets


def onnx_runner(
    model: XViTForVideoClassification, example: torch.Tensor, path: Path, dynamo: bool, threads: int
) -> Callable:
    import onnxruntime

    if dynamo:
        batch_size = torch.export.Dim("batch_size", min=1, max=1024)
        torch.onnx.export(
            model,
            (),
            path,
            kwargs={"pixel_values": example},
            dynamo=True,
            input_names=["pixel_values"],
            output_names=["logits"],
            dynamic_shapes={"pixel_values": {0: batch_size}},
            verbose=False,
        )
    else:  # the legacy exporter fixes the batch size it traced: batch 1, and clips are run one by one
        torch.onnx.export(
            model, (example[:1],), path, dynamo=False, input_names=["pixel_values"], output_names=["logits"]
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(clips: torch.Tensor) -> torch.Tensor:
        batches = [clips] if dynamo else clips.split(1)
        return torch.cat([torch.from_numpy(session.run(["logits"], {"pixel_values": b.numpy()})[0]) for b in batches])

    return run


def module_runner(module: torch.nn.Module) -> Callable:
    def run(clips: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(pixel_values=clips).logits

    return run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="an XViT model folder (default: the demo's)")
    parser.add_argument("--num-per-class", type=int, default=10, help="clips of each class (default 10)")
    parser.add_argument("--rounds", type=int, default=50, help="timed single-clip calls per variant (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of PyTorch and onnxruntime (default 1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = XViTForVideoClassification.from_pretrained(args.model).eval()
    processor = XViTVideoProcessor.from_pretrained(args.model)
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    if not set(labels) <= set(CLASSES):
        raise SystemExit(f"{args.model} does not classify the synthetic motion classes {list(CLASSES)}: {labels}.")
    clips, targets = demo_clips(processor, labels, args.num_per_class)
    target_ids = torch.tensor([model.config.label2id[label] for label in targets])
    reference = module_runner(model)(clips)

    with tempfile.TemporaryDirectory() as scratch:
        variants: dict[str, tuple[Callable, Path | None]] = {"PyTorch float32": (module_runner(model), None)}
        for name, dynamo in (("ONNX, legacy exporter", False), ("ONNX, dynamo exporter", True)):
            path = Path(scratch) / f"{'dynamo' if dynamo else 'legacy'}.onnx"
            variants[name] = (onnx_runner(model, clips[:2], path, dynamo, args.threads), path)
        exported = torch.export.export(model, (), kwargs={"pixel_values": clips[:1]}).module()
        variants["torch.export (batch 1)"] = (
            lambda c: torch.cat([module_runner(exported)(b) for b in c.split(1)]),
            None,
        )
        quantised = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        path = Path(scratch) / "int8.pt"
        torch.save(quantised.state_dict(), path)
        variants["int8 dynamic quantisation"] = (module_runner(quantised), path)

        one_clip = clips[:1]
        timings = time_interleaved(
            {name: (lambda run=run: run(one_clip)) for name, (run, _) in variants.items()},
            warmup=2,
            repeats=args.rounds,
            device=torch.device("cpu"),
        )
        clip_count = f"{len(clips)} new clips ({args.num_per_class} per class, seed {SEED})"
        print(f"{args.model}: {clip_count}, {args.threads} CPU thread(s)")
        print(f"{'variant':28} {'top-1':>7} {'max |logit diff|':>17} {'size (MB)':>10} {'ms / clip':>10}")
        for name, (run, path) in variants.items():
            with torch.inference_mode():
                logits = run(clips)
            accuracy = (logits.argmax(-1) == target_ids).float().mean().item()
            difference = (logits - reference).abs().max().item()
            size = f"{path.stat().st_size / 1e6:.2f}" if path else "-"
            milliseconds = 1000 * statistics.median(timings[name])
            print(f"{name:28} {accuracy:7.3f} {difference:17.2e} {size:>10} {milliseconds:10.2f}")


if __name__ == "__main__":
    main()
