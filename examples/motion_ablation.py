#!/usr/bin/env python
"""
The paper's ablation (Bulat et al., Table 1) in miniature: which parts of XViT let a small video transformer tell the
direction of a motion, on clips where no single frame tells it (`modeling_xvit.demo.motion_data`, the four drifts).

Every row is one run of the training script, `examples/run_video_classification.py --recipe
examples/recipes/xvit_motion_small.yaml` (4 layers of width 64, patch 8, 8 frames of 64 x 64, AdamW 5e-4, batch 16,
1000 steps, fp32 on the CPU), changed only by `--config_overrides`, and is tested on the held-out test split:

- bag of frames: no space-time mixing and one temporal embedding shared by all frames, mean over frames;
- per-frame ViT with one temporal embedding per frame (it knows each frame's index, so it is not a bag of frames),
  with the mean over frames or with the temporal-attention head;
- XViT (space-time mixing in every layer) with the mean or the temporal-attention head, and with summary tokens;
- an extra row: XViT with the temporal-attention head trained 2.5 times longer (2500 steps).

    python examples/motion_ablation.py                     # the data set if missing, every row, the results
    python examples/motion_ablation.py --rows xvit_mean    # one row again: its result is replaced
    python examples/motion_ablation.py --rows xvit_mean --demo-model   # ... and the embedded demo model

Writes `examples/results/motion_ablation.json` (each row: the exact command, test and validation accuracy, wall time,
training clips per second, seed, the machine's load when it started), `.md` (the table and the commands) and `.png`
(the bar chart). Runs go to `motion-ablation/<row>/` (ignored by git), each with its log. A row run again with the
same command is checked against its recorded accuracy (`reproduced` in the JSON: the runs are deterministic on one
machine). `--demo-model` trains the XViT + mean row once more into `motion-ablation/xvit-motion-small/` with
`--hub_dry_run`, which keeps exactly the files a Hub upload would send in `hub_upload/`, and replaces the embedded demo
model `examples/xvit-motion-small` with them.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeling_xvit.demo.motion_data import LABELS_FILE, write_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "examples/run_video_classification.py"
RECIPE = "examples/recipes/xvit_motion_small.yaml"
CLASSES = ("left", "right", "up", "down")
CLIPS_PER_CLASS = {"train": 400, "validation": 50, "test": 50}  # the generator's defaults
DATA_SEED = 0
WORK_DIR = Path("motion-ablation")
RESULTS = Path("examples/results/motion_ablation")
DEMO_MODEL = Path("examples/xvit-motion-small")
DEMO_ROW = "xvit_mean"
HUB_UPLOAD = "hub_upload"  # where --hub_dry_run keeps the files an upload would send
STEPS = 1000  # the recipe's max_steps: the common budget of every row but the extra one
KIND_COLOURS = {"bag of frames": "#9e9e9e", "per-frame": "#4c78a8", "XViT": "#f58518"}


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    kind: str  # how the frames meet: "bag of frames", "per-frame" (temporal embeddings, no mixing) or "XViT"
    config_overrides: str | None = None
    steps: int = STEPS

    @property
    def extra(self) -> bool:
        """Trained beyond the common budget: shown apart, not compared with the other rows."""
        return self.steps != STEPS


NO_MIXING = "space_time_mixing_layers=[]"
ATTENTION = "temporal_aggregation=attention"
ROWS = (
    Row(
        "bag_of_frames",
        "bag of frames: no mixing, 1 shared temporal embedding, mean",
        "bag of frames",
        f"{NO_MIXING},num_temporal_embeddings=1",
    ),
    Row("per_frame_mean", "per-frame ViT + temporal embeddings, mean", "per-frame", NO_MIXING),
    Row(
        "per_frame_attention",
        "per-frame ViT + temporal embeddings, temporal-attention head",
        "per-frame",
        f"{NO_MIXING},{ATTENTION}",
    ),
    Row(DEMO_ROW, "XViT (space-time mixing), mean", "XViT"),
    Row("xvit_attention", "XViT, temporal-attention head", "XViT", ATTENTION),
    Row("xvit_summary_mean", "XViT + summary tokens (every layer), mean", "XViT", "summary_token_layers=[0,1,2,3]"),
    Row("xvit_attention_2500", "XViT, temporal-attention head, 2500 steps (extra)", "XViT", ATTENTION, 2500),
)
ROWS_BY_NAME = {row.name: row for row in ROWS}


# --- The data set and the runs -------------------------------------------------------------------------------------


def data_command(data_dir: Path) -> str:
    """The generator's command that writes the data set (what `ensure_dataset` does when it is missing)."""
    return shlex.join(
        ["python", "-m", "modeling_xvit.demo.motion_data", "--output-dir", str(data_dir), "--classes", *CLASSES]
        + (["--seed", str(DATA_SEED)] if DATA_SEED else [])
    )


def ensure_dataset(data_dir: Path) -> None:
    """Write the data set unless it is there; refuse a folder holding other classes."""
    folder = ROOT / data_dir
    labels = folder / LABELS_FILE
    if labels.is_file():
        found = labels.read_text(encoding="utf-8").split()
        if found != list(CLASSES):
            raise SystemExit(f"error: {labels} lists {found}, not {list(CLASSES)}: give another --data-dir.")
        return
    print(f"Writing the data set: {data_command(data_dir)}", flush=True)
    write_dataset(folder, CLIPS_PER_CLASS, DATA_SEED, classes=CLASSES, num_workers=os.cpu_count() or 1)


def row_arguments(row: Row, data_dir: Path, output_dir: Path, seed: int) -> list[str]:
    """The training script's arguments for `row`: the recipe, the data, the row's overrides and the seed."""
    arguments = ["--recipe", RECIPE, "--data_dir", str(data_dir), "--class_names", str(data_dir / LABELS_FILE)]
    arguments += ["--output_dir", str(output_dir)]
    if row.config_overrides:
        arguments += ["--config_overrides", row.config_overrides]
    if row.extra:
        arguments += ["--max_steps", str(row.steps)]
    return arguments + ["--seed", str(seed)]


def train(arguments: Sequence[str], output_dir: Path) -> dict[str, Any]:
    """Run the training script afresh into `output_dir` (its log beside it, `output_dir.log`); returns what the run
    measured: the command, test and validation accuracy, wall time, training clips per second."""
    folder = ROOT / output_dir
    shutil.rmtree(folder, ignore_errors=True)  # a fresh run, not a resumed one
    folder.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", SCRIPT, *arguments])
    print(f"\n$ {command}", flush=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with open(folder.with_name(folder.name + ".log"), "w", encoding="utf-8") as log:
        completed = subprocess.run(
            [sys.executable, SCRIPT, *arguments], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"error: the run failed (exit status {completed.returncode}); see {folder}.log")
    metrics = json.loads((folder / "all_results.json").read_text(encoding="utf-8"))
    result = {
        "command": command,
        "test_accuracy": metrics["test_top1_accuracy"],
        "validation_accuracy": metrics["eval_top1_accuracy"],
        "wall_time_s": round(wall, 1),
        "train_runtime_s": round(metrics["train_runtime"], 1),
        "train_clips_per_s": round(metrics["train_samples_per_second"], 1),
        "load_average_at_start": round(load, 2),
    }
    print(
        f"test accuracy {result['test_accuracy']:.1%}, validation {result['validation_accuracy']:.1%},"
        f" {result['wall_time_s']:.0f} s, {result['train_clips_per_s']} training clips/s",
        flush=True,
    )
    return result


def run_row(row: Row, data_dir: Path, work_dir: Path, seed: int, recorded: dict[str, Any] | None) -> dict[str, Any]:
    """Train and test `row`; when `recorded` holds a run of the same command, say whether the accuracy is the same."""
    arguments = row_arguments(row, data_dir, work_dir / f"{row.name}-seed{seed}", seed)
    result = {"row": row.name, "title": row.title, "kind": row.kind, "steps": row.steps, "seed": seed}
    result.update(train(arguments, work_dir / f"{row.name}-seed{seed}"))
    if recorded and recorded["command"] == result["command"]:
        same = (recorded["test_accuracy"], recorded["validation_accuracy"]) == (
            result["test_accuracy"],
            result["validation_accuracy"],
        )
        result["reproduced"] = same and recorded.get("reproduced", True)
        print(f"{'Same' if same else 'NOT the same'} accuracy as the recorded run of this command.", flush=True)
    return result


def train_demo_model(data_dir: Path, work_dir: Path, destination: Path, seed: int) -> dict[str, Any]:
    """Train the XViT + mean row as the demo model's Hub folder and put that folder at `destination`."""
    output_dir = work_dir / DEMO_MODEL.name
    arguments = row_arguments(ROWS_BY_NAME[DEMO_ROW], data_dir, output_dir, seed)
    arguments += ["--hub_dry_run", "--hub_model_id", DEMO_MODEL.as_posix()]
    result = {"row": DEMO_ROW, "seed": seed, **train(arguments, output_dir)}
    replace_folder(ROOT / output_dir / HUB_UPLOAD, ROOT / destination)
    print(f"Wrote the demo model to {destination}", flush=True)
    return result


def replace_folder(source: Path, destination: Path) -> None:
    """Copy `source` over `destination`, which is replaced only once the copy is complete."""
    staging = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if destination.exists():
        shutil.rmtree(destination)
    staging.rename(destination)


# --- Results -------------------------------------------------------------------------------------------------------


def load_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"rows": []}


def ordered(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results in the order of `ROWS`, then by seed."""
    order = {name: index for index, name in enumerate(ROWS_BY_NAME)}
    return sorted(rows, key=lambda result: (order.get(result["row"], len(order)), result["seed"]))


def markdown(results: dict[str, Any]) -> str:
    """The table of the rows and the commands that produced them."""
    lines = [
        "| # | model | frames meet by | steps | test accuracy | validation accuracy | wall time | training clips/s"
        " | seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, result in enumerate(ordered(results["rows"]), 1):
        lines.append(
            f"| {number} | {result['title']} | {result['kind']} | {result['steps']} | {result['test_accuracy']:.1%}"
            f" | {result['validation_accuracy']:.1%} | {result['wall_time_s'] / 60:.1f} min"
            f" | {result['train_clips_per_s']:.0f} | {result['seed']} |"
        )
    commands = [f"# data set\n{results['data']['command']}"]
    commands += [
        f"# {number}: {result['title']}\n{result['command']}"
        for number, result in enumerate(ordered(results["rows"]), 1)
    ]
    if "demo_model" in results:
        commands.append(
            f"# the demo model (row {DEMO_ROW} as the Hub folder {DEMO_MODEL}: copy its {HUB_UPLOAD}/ there)\n"
            f"{results['demo_model']['command']}"
        )
    return "\n".join(lines) + "\n\n```bash\n" + "\n".join(commands) + "\n```\n"


def bar_chart(results: dict[str, Any], path: Path) -> None:
    """Test accuracy of every row as a horizontal bar, coloured by how the frames meet, with chance marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ordered(results["rows"])
    figure, axes = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.6), dpi=120)
    positions = range(len(rows))[::-1]
    for position, result in zip(positions, rows, strict=True):
        extra = result["steps"] != STEPS
        axes.barh(
            position,
            100 * result["test_accuracy"],
            color=KIND_COLOURS[result["kind"]],
            hatch="//" if extra else None,
            edgecolor="white" if extra else None,
        )
        axes.text(100 * result["test_accuracy"] + 1, position, f"{result['test_accuracy']:.1%}", va="center")
    axes.set_yticks(list(positions), [f"{result['title']}  (seed {result['seed']})" for result in rows])
    chance = 100 / len(CLASSES)
    axes.axvline(chance, color="black", linestyle="--", linewidth=1)
    axes.text(chance + 1, len(rows) - 0.45, "chance", fontsize=8)
    axes.set_xlim(0, 120)
    axes.set_xlabel("test accuracy (%), 200 held-out clips")
    figure.suptitle(
        f"Motion direction (4 drifts), the same small model, {STEPS} steps of batch 16\n"
        "grey: bag of frames, blue: per-frame + temporal embeddings, orange: XViT; hatched: extra budget",
        fontsize=9,
        x=0.02,
        horizontalalignment="left",
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def write_results(results: dict[str, Any], stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    results["rows"] = ordered(results["rows"])
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    bar_chart(results, stem.with_suffix(".png"))


# --- Command line --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=list(ROWS_BY_NAME),
        metavar="ROW",
        help=f"rows to run (default all: {', '.join(ROWS_BY_NAME)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--demo-model", action="store_true", help=f"also train the demo model into {DEMO_MODEL}")
    parser.add_argument(
        "--data-dir", type=Path, default=WORK_DIR / "motion-drifts", help="the data set (written if missing)"
    )
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR, help=f"where the runs go (default {WORK_DIR})")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"results path without suffix (default {RESULTS})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    ensure_dataset(args.data_dir)
    stem = ROOT / args.results
    results = load_results(stem.with_suffix(".json"))
    results["data"] = {
        "command": data_command(args.data_dir),
        "classes": list(CLASSES),
        "clips_per_class": CLIPS_PER_CLASS,
        "seed": DATA_SEED,
    }
    results["machine"] = {"cpu_count": os.cpu_count(), "note": "CPU only; wall times depend on the machine's load"}
    for name in args.rows or ([] if args.demo_model else list(ROWS_BY_NAME)):
        recorded = {(result["row"], result["seed"]): result for result in results["rows"]}
        result = run_row(ROWS_BY_NAME[name], args.data_dir, args.work_dir, args.seed, recorded.get((name, args.seed)))
        results["rows"] = [r for r in results["rows"] if (r["row"], r["seed"]) != (name, args.seed)] + [result]
        write_results(results, stem)  # after every row: an interrupted ablation keeps what it measured
    if args.demo_model:
        demo = train_demo_model(args.data_dir, args.work_dir, DEMO_MODEL, args.seed)
        row = next((r for r in results["rows"] if (r["row"], r["seed"]) == (DEMO_ROW, args.seed)), None)
        if row is not None:  # the same training as the row: the same accuracy, if the runs are deterministic
            demo["same_accuracy_as_row"] = (row["test_accuracy"], row["validation_accuracy"]) == (
                demo["test_accuracy"],
                demo["validation_accuracy"],
            )
        results["demo_model"] = demo
        write_results(results, stem)
    print(f"\nWrote {args.results}.json, .md and .png")


if __name__ == "__main__":
    main()
