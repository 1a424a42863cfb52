"""The three reports of a run: JSON (everything, raw samples included), a markdown table and a PNG plot; and where
they go."""

import argparse
import json
from pathlib import Path

MIB = 2**20
# The committed reports, which README quotes: rewritten only on request (`--update-committed-results`).
COMMITTED_RESULTS_DIR = Path(__file__).parent / "results"
# Where a run writes by default: ignored by git, so running a benchmark leaves the working tree clean.
RUNS_DIR = Path(__file__).parent / "runs"
VERDICT_TEXT = {"met": "met", "not met": "**not met**", "inconclusive": "inconclusive (within noise)", None: "n/a"}


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """`--output-dir` (default `benchmarks/runs/`) or `--update-committed-results`, for every benchmark script."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output-dir",
        type=Path,
        default=RUNS_DIR,
        help="folder of the reports (default: benchmarks/runs/, ignored by git)",
    )
    where.add_argument(
        "--update-committed-results",
        action="store_true",
        help="write the reports to benchmarks/results/, the committed figures quoted in README, instead",
    )


def reports_dir(args: argparse.Namespace) -> Path:
    return COMMITTED_RESULTS_DIR if args.update_committed_results else args.output_dir


def write_reports(results: dict, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown_report(results))
    plot(results, stem.with_suffix(".png"))


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def machine_line(results: dict) -> str:
    machine, preset = results["machine"], results["preset"]
    where = machine.get(
        "gpu", f"{machine['cpu']} ({machine['cpu_count']} cores, torch threads: {machine['torch_threads']})"
    )
    return (
        f"Preset `{preset['name']}`: {preset['description']}; hidden {preset['hidden_size']}, "
        f"{preset['num_hidden_layers']} layers, {preset['num_attention_heads']} heads, "
        f"MLP {preset['intermediate_size']}, patch {preset['patch_size']}, batch {preset['batch_size']} x "
        f"{preset['num_frames']} frames x {preset['image_size']}^2. Measured {results['date']} on {where}, "
        f"{machine['dtype']}, torch {machine['torch']}, transformers {machine['transformers']}; medians of "
        f"{preset['repeats']} interleaved rounds after {preset['warmup']} warm-up rounds; CPU memory: "
        f"{machine.get('cpu_malloc', 'default')}."
    )


def duration_line(results: dict) -> str:
    """How long the run took, and how much of it went to the first calls of the compiled rows (compilation)."""
    compiled = [row["first_call_s"] for row in results["models"] if row["compiled"]]
    compile_s = sum(first["inference"] + first["training"] for first in compiled)
    line = f"The run took {results['wall_time_s']:.0f} s"
    if compiled:
        line += f", of which {compile_s:.0f} s were the first calls of the `torch.compile` rows (compilation)"
    return line + "."


def noise_line(results: dict) -> str:
    """What the control measured, and the rule the verdicts follow."""
    spreads = results["ratio_spreads"]
    controls = [
        f"{spreads[key]['median']:.3f} ({mode}, IQR {spreads[key]['iqr']:.3f})"
        for mode in ("inference", "training")
        if (key := f"control_over_vit_{mode}") in spreads
    ]
    measured = f"here {' and '.join(controls)}" if controls else "not measured in this run"
    return (
        "Noise: the control row (XViT with neither space-time mixing nor the temporal head) computes what the "
        f"per-frame ViT computes, so its time ratio to it would be 1.000 on a quiet machine; {measured}. IQR is the "
        "interquartile range of a ratio's per-round values: how much one round varied. A time target is met only "
        "when the ratio clears it by more than the noise, the larger of the control's distance from 1 and half the "
        "ratio's IQR; within the noise it is inconclusive. Peak memory is counted, not timed: no noise."
    )


def markdown_report(results: dict) -> str:
    lines = [machine_line(results), ""]
    lines += [
        "| model | attention | inference ms | clips/s | train step ms | peak train MiB | peak inference MiB "
        "| GFLOPs/clip | params (M) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["models"]:
        memory = row["peak_memory_bytes"]
        lines.append(
            f"| {row['label']} | {row['attention']}{' + compile' if row['compiled'] else ''} "
            f"| {row['inference']['median_s'] * 1e3:.1f} | {row['inference']['clips_per_s']:.1f} "
            f"| {row['training_step']['median_s'] * 1e3:.1f} | {memory['training'] / MIB:.1f} "
            f"| {memory['inference'] / MIB:.1f} | {_number(row['gflops_per_clip'], 3)} "
            f"| {row['parameters'] / 1e6:.2f} |"
        )
    lines += [
        "",
        "| target | measured | per-round IQR | control | noise | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for target in results["targets"]:
        lines.append(
            f"| {target['meaning']} | {_number(target['value'], 3)} | {_number(target['iqr'], 3)} "
            f"| {_number(target['control'], 3)} | {_number(target['noise'], 3)} | {target['target']} "
            f"| {VERDICT_TEXT[target['verdict']]} |"
        )
    lines += ["", noise_line(results), "", duration_line(results)]
    spreads = results["ratio_spreads"]
    lines += ["", "Other ratios (time ratios: median of the per-round ratios, and their IQR): "]
    lines[-1] += ", ".join(
        f"`{key}` {value:.3f}" + (f" (IQR {spreads[key]['iqr']:.3f})" if key in spreads else "")
        for key, value in results["ratios"].items()
        if key not in _target_keys(results)
    )
    scaling = results["scaling"]
    header = " | ".join(f"{f} frames ms" for f in scaling["frames"])
    lines += [
        "",
        "Scaling with the number of frames (inference; same batch and resolution):",
        "",
        f"| model | {header} | time {scaling['frames'][-1]}f / {scaling['frames'][0]}f | log-log exponent | "
        "linear fit R^2 | time / per-frame ViT time |",
        "|---|" + "---:|" * (len(scaling["frames"]) + 4),
    ]
    for name, entry in scaling["models"].items():
        times = " | ".join(f"{t * 1e3:.1f}" for t in entry["median_s"])
        fit = entry["fit"]
        over_vit = ", ".join(f"{r:.2f}" for r in entry.get("over_vit", []))
        lines.append(
            f"| {name} | {times} | {fit['last_over_first']:.2f} (frames x{fit['frames_last_over_first']:.0f}) "
            f"| {fit['loglog_exponent']:.2f} | {fit['r2']:.4f} | {over_vit} |"
        )
    if results["notes"]:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def _target_keys(results: dict) -> set[str]:
    return {target["ratio"] for target in results["targets"]}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    figure, (times_axis, scaling_axis) = plt.subplots(1, 2, figsize=(13, 4.8))
    rows = results["models"]
    positions = range(len(rows))
    width = 0.4
    for offset, mode, label in ((-width / 2, "inference", "inference"), (width / 2, "training_step", "train step")):
        milliseconds = [row[mode]["median_s"] * 1e3 for row in rows]
        times_axis.bar([p + offset for p in positions], milliseconds, width, label=label)
    times_axis.set_xticks(list(positions), [r["label"] for r in rows], rotation=30, ha="right", fontsize=8)
    times_axis.set_ylabel("median ms per batch")
    times_axis.set_title(
        f"preset {results['preset']['name']}, {results['machine']['device']}, {results['machine']['dtype']}"
    )
    times_axis.legend()
    scaling = results["scaling"]
    for name, entry in scaling["models"].items():
        scaling_axis.plot(scaling["frames"], [t * 1e3 for t in entry["median_s"]], marker="o", label=name)
    scaling_axis.set_xscale("log", base=2)
    scaling_axis.set_yscale("log")
    scaling_axis.yaxis.set_major_formatter(ScalarFormatter())
    scaling_axis.set_xticks(scaling["frames"], [str(f) for f in scaling["frames"]])
    scaling_axis.set_xlabel("frames")
    scaling_axis.set_ylabel("inference ms (log)")
    scaling_axis.set_title("scaling with frames")
    scaling_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
