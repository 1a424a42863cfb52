"""Entry point: `python -m benchmarks.run --preset small|full` (or `python benchmarks/run.py ...`, from the repository
root) measures every model in one process, side by side.

Writes `<preset>-<device>.{json,md,png}` to `benchmarks/runs/` (ignored by git) or to `--output-dir`;
`--update-committed-results` writes them to `benchmarks/results/` instead, the committed figures README quotes.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run by path (`python benchmarks/run.py`): import this repository's packages by name
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402
from torch import nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.measure import (  # noqa: E402
    fit_scaling,
    forward_flops,
    machine_info,
    peak_memory_increase,
    progress_bar,
    retain_freed_cpu_memory,
    summarize,
    tensor_bytes,
    time_interleaved,
)
from benchmarks.models import (  # noqa: E402
    FAMILIES,
    SCALING_FAMILIES,
    VIT,
    XVIT,
    XVIT_MEAN,
    Family,
    eager_attention_bytes,
    training_loss,
)
from benchmarks.presets import PRESETS, Preset  # noqa: E402
from benchmarks.report import add_output_arguments, reports_dir, write_reports  # noqa: E402
from benchmarks.targets import check_targets, compute_ratios, time_ratio_spreads  # noqa: E402

# Skip a model when its materialised attention alone would take more than this share of the free memory.
ATTENTION_MEMORY_SHARE = 0.5
# Families given torch.compile rows: the two whose ratio is the claim.
COMPILED_FAMILIES = (XVIT, VIT)


def log(message: str) -> None:
    """A line on stderr that leaves an active progress bar intact."""
    tqdm.write(f"[benchmarks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


class Candidate:
    """One row of the table: a model, its optimiser and its two timed calls on the shared input."""

    def __init__(
        self, label: str, family: Family, attention: str, compiled: bool, model: nn.Module, device: torch.device
    ):
        self.label, self.family, self.attention, self.compiled = label, family, attention, compiled
        self.model = model.to(device)
        self.forward = torch.compile(self.model) if compiled else self.model
        # The original recipe's optimiser (SGD with momentum 0.9); its state is one buffer per parameter.
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9)
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
        )

    def infer(self, pixel_values: torch.Tensor) -> None:
        with torch.no_grad(), self.autocast:
            self.forward(pixel_values=pixel_values)

    def train_step(self, pixel_values: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            loss = training_loss(self.forward(pixel_values=pixel_values))
        loss.backward()
        self.optimizer.step()

    def static_bytes(self) -> int:
        """Parameters plus optimiser state: what stays allocated between steps (gradients are freed)."""
        state = [t for s in self.optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
        return tensor_bytes(self.model.parameters()) + tensor_bytes(state)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def skip_reason(preset: Preset, family: Family, attention: str, num_frames: int, device: torch.device) -> str | None:
    """Why a model would not fit, judged before building it; only eager attention materialises the score matrices."""
    if attention != "eager":
        return None
    element_size = 2 if device.type == "cuda" else 4
    needed = eager_attention_bytes(preset, family, num_frames, element_size)
    free = free_memory_bytes(device)
    if needed > ATTENTION_MEMORY_SHARE * free:
        return (
            f"eager attention would hold about {needed / 2**30:.1f} GiB of score matrices for training, more than "
            f"{ATTENTION_MEMORY_SHARE:.0%} of the {free / 2**30:.1f} GiB free"
        )
    return None


def build_candidates(preset: Preset, device: torch.device, notes: list[str]) -> list[Candidate]:
    """Default-attention rows of every family, then eager rows, then compiled rows of XViT and ViT."""
    plans = [(family, family.attentions[0], False) for family in FAMILIES.values()]
    plans += [(family, "eager", False) for family in FAMILIES.values() if "eager" in family.attentions[1:]]
    if preset.compile:
        plans += [(FAMILIES[name], FAMILIES[name].attentions[0], True) for name in COMPILED_FAMILIES]
    candidates = []
    for family, attention, compiled in plans:
        label = family.name + ("" if attention == family.attentions[0] else f" [{attention}]")
        label += " [compiled]" if compiled else ""
        reason = skip_reason(preset, family, attention, preset.num_frames, device)
        if reason:
            notes.append(f"{label} skipped: {reason}.")
            continue
        torch.manual_seed(0)
        model = family.build(preset, preset.num_frames, attention)
        candidates.append(Candidate(label, family, attention, compiled, model, device))
    return candidates


def prepare(candidates: list[Candidate], pixel_values: torch.Tensor, notes: list[str]) -> dict[str, dict]:
    """Run every candidate once in each mode (this is when torch.compile compiles) and return the seconds taken.

    A compiled candidate that fails (e.g. no C++ compiler) is dropped with the reason in `notes`; others must work.
    """
    seconds = {}
    with progress_bar(2 * len(candidates), "first calls (torch.compile compiles here)") as bar:
        for candidate in list(candidates):
            seconds[candidate.label] = {}
            try:
                for mode, call in (("inference", candidate.infer), ("training", candidate.train_step)):
                    candidate.model.train(mode == "training")
                    start = time.perf_counter()
                    call(pixel_values)
                    seconds[candidate.label][mode] = time.perf_counter() - start
                    bar.update()
            except Exception as error:  # torch.compile fails in platform-specific ways: report it and go on
                if not candidate.compiled:
                    raise
                first_line = (str(error).strip().splitlines() or [""])[0][:300]
                error_text = f"{type(error).__name__}: {first_line}"
                notes.append(f"{candidate.label} skipped: torch.compile failed with {error_text}")
                candidates.remove(candidate)
                del seconds[candidate.label]
                log(notes[-1])
                continue
            first = seconds[candidate.label]
            log(f"{candidate.label}: first inference {first['inference']:.1f} s, first step {first['training']:.1f} s")
    return seconds


def timed(
    candidates: list[Candidate], mode: str, pixel_values: torch.Tensor, warmup: int, repeats: int
) -> dict[str, list]:
    """Interleaved timing of one mode ("inference" or "training") of all candidates."""
    runs = {}
    for candidate in candidates:
        candidate.model.train(mode == "training")
        runs[candidate.label] = candidate.train_step if mode == "training" else candidate.infer
    calls = {label: lambda run=run: run(pixel_values) for label, run in runs.items()}
    progress = f"{mode}: {repeats} rounds (+{warmup} warm-up) x {len(calls)} models"
    return time_interleaved(calls, warmup, repeats, pixel_values.device, progress)


def memory_and_flops(candidate: Candidate, pixel_values: torch.Tensor) -> dict:
    """Peak memory of a training step and of inference (resident weights and optimiser state included), and FLOPs."""
    device = pixel_values.device
    candidate.model.train()
    candidate.optimizer.zero_grad(set_to_none=True)
    static = candidate.static_bytes()
    training = static + peak_memory_increase(lambda: candidate.train_step(pixel_values), device)
    candidate.optimizer.zero_grad(set_to_none=True)
    candidate.model.eval()
    inference = tensor_bytes(candidate.model.parameters())
    inference += peak_memory_increase(lambda: candidate.infer(pixel_values), device)
    # FLOPs are a property of the model, so they are counted once, on the uncompiled rows.
    flops = None if candidate.compiled else forward_flops(lambda: candidate.infer(pixel_values)) / len(pixel_values)
    return {
        # "weights_and_optimizer_state": the part of the training peak held between steps.
        "peak_memory_bytes": {"inference": inference, "training": training, "weights_and_optimizer_state": static},
        "gflops_per_clip": None if flops is None else flops / 1e9,
    }


def measure_candidates(preset: Preset, pixel_values: torch.Tensor, notes: list[str]) -> list[dict]:
    candidates = build_candidates(preset, pixel_values.device, notes)
    first_call_s = prepare(candidates, pixel_values, notes)
    inference = timed(candidates, "inference", pixel_values, preset.warmup, preset.repeats)
    training = timed(candidates, "training", pixel_values, preset.warmup, preset.repeats)
    rows = []
    for candidate in tqdm(candidates, desc="peak memory and FLOPs", unit="model", file=sys.stderr):
        latency = summarize(inference[candidate.label])
        rows.append(
            {
                "label": candidate.label,
                "family": candidate.family.name,
                "attention": candidate.attention,
                "compiled": candidate.compiled,
                "parameters": sum(p.numel() for p in candidate.model.parameters()),
                "first_call_s": first_call_s[candidate.label],
                "inference": latency | {"clips_per_s": preset.batch_size / latency["median_s"]},
                "training_step": summarize(training[candidate.label]),
            }
            | memory_and_flops(candidate, pixel_values)
        )
    return rows


def measure_scaling(preset: Preset, device: torch.device, notes: list[str]) -> dict:
    """Inference time of every family (default attention) at each frame count of the sweep, and the fitted growth.

    All models of all frame counts are timed in one interleaved loop, so the points of a curve share the machine's
    conditions. The per-frame ViT is linear in frames by construction: its curve shows what linear looks like here.
    """
    frames = list(preset.scaling_frames)
    inputs = {num_frames: clip_batch(preset, num_frames, device) for num_frames in frames}
    calls = {}
    for family in (FAMILIES[name] for name in SCALING_FAMILIES):
        reasons = [skip_reason(preset, family, family.attentions[0], n, device) for n in frames]
        if any(reasons):
            notes.append(f"{family.name} left out of the scaling sweep: {next(r for r in reasons if r)}.")
            continue
        for num_frames in frames:
            torch.manual_seed(0)
            model = family.build(preset, num_frames, family.attentions[0]).eval()
            candidate = Candidate(family.name, family, family.attentions[0], False, model, device)
            calls[family.name, num_frames] = lambda c=candidate, x=inputs[num_frames]: c.infer(x)
    progress = f"scaling sweep: {preset.scaling_repeats} rounds (+{preset.warmup} warm-up) x {len(calls)} models"
    samples = time_interleaved(calls, preset.warmup, preset.scaling_repeats, device, progress)
    times = {}
    for (name, _), values in samples.items():
        times.setdefault(name, []).append(statistics.median(values))
    models = {name: {"median_s": t, "fit": fit_scaling(frames, t)} for name, t in times.items()}
    if VIT in times:
        for entry in models.values():
            entry["over_vit"] = [t / v for t, v in zip(entry["median_s"], times[VIT], strict=True)]
    return {"frames": frames, "models": models}


def clip_batch(preset: Preset, num_frames: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    shape = (preset.batch_size, num_frames, 3, preset.image_size, preset.image_size)
    return torch.randn(shape, generator=generator).to(device)


def run_benchmarks(preset: Preset, device: torch.device, output_dir: Path) -> dict:
    """Measure everything for one preset on one device and write the JSON, markdown and PNG reports."""
    notes = []
    started = time.perf_counter()
    cpu_malloc = retain_freed_cpu_memory()
    default_threads = torch.get_num_threads()
    if device.type == "cpu" and preset.cpu_threads:
        torch.set_num_threads(preset.cpu_threads)
    try:
        rows = measure_candidates(preset, clip_batch(preset, preset.num_frames, device), notes)
        scaling = measure_scaling(preset, device, notes)
        machine = machine_info(device) | {"cpu_malloc": cpu_malloc or "default"}
    finally:
        torch.set_num_threads(default_threads)
    spreads = time_ratio_spreads(rows)
    ratios = compute_ratios(rows, spreads)
    results = {
        "preset": preset.to_dict(),
        "machine": machine,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "models": rows,
        "ratios": ratios,
        # Quartiles and interquartile range of the per-round values of every time ratio.
        "ratio_spreads": spreads,
        "targets": check_targets(ratios, spreads),
        "scaling": scaling,
        "notes": notes,
        "wall_time_s": time.perf_counter() - started,
    }
    write_reports(results, output_dir / f"{preset.name}-{device.type}")
    return results


def measure_memory_only(preset: Preset, device: torch.device, output_dir: Path) -> dict:
    """Peak memory and FLOPs of XViT, XViT without its head and the per-frame ViT, without timing: the memory target
    at a size (e.g. ViT-B/16 on 16 x 224 x 224) too slow to time on a CPU."""
    pixel_values = clip_batch(preset, preset.num_frames, device)
    rows = {}
    for name in (XVIT, XVIT_MEAN, VIT):
        family = FAMILIES[name]
        torch.manual_seed(0)
        model = family.build(preset, preset.num_frames, "sdpa")
        candidate = Candidate(name, family, "sdpa", False, model, device)
        candidate.train_step(pixel_values)  # allocates the optimiser state that stays between steps
        rows[name] = memory_and_flops(candidate, pixel_values)
        log(f"{name}: {rows[name]}")
        del candidate
    training = {name: row["peak_memory_bytes"]["training"] for name, row in rows.items()}
    results = {
        "preset": preset.to_dict(),
        "machine": machine_info(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "models": rows,
        "xvit_over_vit_training_memory": training[XVIT] / training[VIT],
        "xvit_mean_over_vit_training_memory": training[XVIT_MEAN] / training[VIT],
    }
    path = output_dir / f"{preset.name}-{device.type}-memory.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return results


def gpu_preset_warning(preset: Preset, device: torch.device) -> str | None:
    if preset.meant_for_gpu and device.type != "cuda":
        return (
            f"preset {preset.name!r} ({preset.description}) is meant for a GPU: on a {device.type} it runs for "
            "hours (the progress bars show how far it got). On a CPU, `--preset small` is the benchmark."
        )
    return None


def print_summary(results: dict, reports: Path) -> None:
    for target in results["targets"]:
        value = "n/a" if target["value"] is None else f"{target['value']:.3f}"
        noise = "" if not target["noise"] else f", noise {target['noise']:.3f}"
        print(f"{target['meaning']}: {value} (target {target['target']}{noise}): {target['verdict']}", file=sys.stderr)
    print(f"done in {results['wall_time_s']:.0f} s; reports in {reports}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA when available), 'cpu' or 'cuda[:N]'")
    add_output_arguments(parser)
    parser.add_argument(
        "--memory-only", action="store_true", help="peak memory and FLOPs of XViT and the per-frame ViT, no timing"
    )
    args = parser.parse_args(argv)
    device, preset, reports = select_device(args.device), PRESETS[args.preset], reports_dir(args)
    warning = gpu_preset_warning(preset, device)
    if warning:
        log(f"WARNING: {warning}")
    if args.memory_only:
        results = measure_memory_only(preset, device, reports)
        print(f"XViT / per-frame ViT peak training memory: {results['xvit_over_vit_training_memory']:.3f}")
        return
    print_summary(run_benchmarks(preset, device, reports), reports)


if __name__ == "__main__":
    main()
