"""The benchmark harness on the micro preset: every stage runs and reports; no timing is asserted."""

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import run_help

from benchmarks import report, run, targets
from benchmarks.measure import (
    fit_scaling,
    forward_flops,
    paired_ratio,
    paired_ratio_spread,
    peak_memory_increase,
    time_interleaved,
)
from benchmarks.models import FAMILIES, SCALING_FAMILIES, TIMESFORMER, VIT, VIVIT, XVIT, XVIT_CONTROL, XVIT_MEAN
from benchmarks.presets import PRESETS

CPU = torch.device("cpu")
REPOSITORY = Path(__file__).parents[1]


def _failing_compile(model, *args, **kwargs):
    def compiled(*call_args, **call_kwargs):
        raise RuntimeError("no compiler in this test\nsecond line")

    return compiled


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    """One run of the micro preset, with torch.compile failing so that the graceful skip is exercised too; returns
    the results, the stem of the reports and what the run printed on stderr."""
    output_dir = tmp_path_factory.mktemp("bench")
    preset = dataclasses.replace(PRESETS["micro"], compile=True)
    threads = torch.get_num_threads()
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
        patch.setattr(torch, "compile", _failing_compile)
        results = run.run_benchmarks(preset, CPU, output_dir)
    assert torch.get_num_threads() == threads  # the preset's single thread does not leak into other tests
    return results, output_dir / "micro-cpu", stderr.getvalue()


@pytest.mark.slow  # a benchmark run or a fresh process
def test_reports_are_written_with_every_model(micro_run):
    results, stem, _ = micro_run
    saved = json.loads(stem.with_suffix(".json").read_text())
    assert saved["ratios"] == results["ratios"]
    assert {"cpu", "torch", "transformers", "dtype", "cpu_malloc"} <= saved["machine"].keys()
    assert saved["machine"]["torch_threads"] == PRESETS["micro"].cpu_threads
    labels = [row["label"] for row in saved["models"]]
    assert labels == [
        XVIT,
        XVIT_MEAN,
        XVIT_CONTROL,
        VIT,
        TIMESFORMER,
        VIVIT,
        f"{XVIT} [eager]",
        f"{VIT} [eager]",
        f"{VIVIT} [eager]",
    ]
    for row in saved["models"]:
        assert len(row["inference"]["samples_s"]) == len(row["training_step"]["samples_s"]) == 2
        assert row["inference"]["clips_per_s"] == pytest.approx(1 / row["inference"]["median_s"])  # batch 1
        assert row["peak_memory_bytes"]["training"] > row["peak_memory_bytes"]["inference"] > 0
        assert row["gflops_per_clip"] > 0
    assert saved["scaling"]["frames"] == [2, 4]
    assert list(saved["scaling"]["models"]) == list(SCALING_FAMILIES)
    assert saved["scaling"]["models"][VIT]["over_vit"] == [1.0, 1.0]
    assert {"slope_s_per_frame", "r2", "loglog_exponent"} <= saved["scaling"]["models"][XVIT]["fit"].keys()
    markdown = stem.with_suffix(".md").read_text()
    assert "| XViT | sdpa |" in markdown and saved["machine"]["cpu"] in markdown
    assert "| target | measured | per-round IQR | control | noise | target | verdict |" in markdown
    assert f"The run took {results['wall_time_s']:.0f} s." in markdown
    assert stem.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # a benchmark run or a fresh process
def test_ratios_pair_the_rounds_and_targets_follow_them(micro_run):
    results, _, _ = micro_run
    rows = {row["label"]: row for row in results["models"]}
    xvit, vit = rows[XVIT], rows[VIT]
    expected = paired_ratio(xvit["inference"]["samples_s"], vit["inference"]["samples_s"])
    assert results["ratios"]["xvit_over_vit_inference"] == expected
    memory = xvit["peak_memory_bytes"]["training"] / vit["peak_memory_bytes"]["training"]
    assert results["ratios"]["xvit_over_vit_training_memory"] == memory
    checks = {check["ratio"]: check for check in results["targets"]}
    assert checks["xvit_over_vit_training_memory"]["verdict"] == ("met" if memory <= 1.05 else "not met")
    assert checks["xvit_over_vit_training_memory"]["noise"] is None  # counted, not timed


@pytest.mark.slow  # a benchmark run or a fresh process
def test_every_time_target_reports_its_spread_and_the_control(micro_run):
    results, _, _ = micro_run
    rows = {row["label"]: row for row in results["models"]}
    spreads = results["ratio_spreads"]
    for mode, row_key in (("inference", "inference"), ("training", "training_step")):
        control = paired_ratio_spread(rows[XVIT_CONTROL][row_key]["samples_s"], rows[VIT][row_key]["samples_s"])
        assert spreads[f"control_over_vit_{mode}"] == control
        assert results["ratios"][f"control_over_vit_{mode}"] == control["median"]
    checks = {check["ratio"]: check for check in results["targets"]}
    for key in ("xvit_over_vit_inference", "timesformer_over_xvit_training"):
        mode = key.rsplit("_", 1)[1]
        control = spreads[f"control_over_vit_{mode}"]["median"]
        assert checks[key]["iqr"] == spreads[key]["iqr"] == spreads[key]["q3"] - spreads[key]["q1"]
        assert checks[key]["control"] == control
        assert checks[key]["noise"] == max(spreads[key]["iqr"] / 2, abs(control - 1))


def test_control_computes_what_the_per_frame_vit_computes():
    """Same weights, same input: the control and the per-frame ViT give the same per-frame features."""
    preset, frames = PRESETS["micro"], PRESETS["micro"].num_frames
    control = FAMILIES[XVIT_CONTROL].build(preset, frames, "sdpa").eval()
    vit = FAMILIES[VIT].build(preset, frames, "sdpa").eval()
    assert control.config.space_time_mixing_layers == [] and control.config.temporal_aggregation == "mean"
    control_weights = control.state_dict()
    weights = {key: control_weights[key.removeprefix("vit.")] for key in vit.state_dict()}
    vit.load_state_dict(weights)
    pixel_values = torch.randn(2, frames, 3, preset.image_size, preset.image_size)
    with torch.no_grad():
        expected = vit(pixel_values).last_hidden_state.unflatten(0, (2, frames))
        features = control(pixel_values).last_hidden_state
    torch.testing.assert_close(features.reshape(expected.shape), expected)


@pytest.mark.parametrize(
    ("value", "control", "iqr", "expected"),
    [
        # The loaded 2-core run of the issue: identical backbones 1.030 apart, so 1.040 against <= 1.03 is noise.
        (1.040, 1.030, 0.02, "inconclusive"),
        # A quiet run: the ratio clears the target by more than both the control's offset and half the IQR.
        (1.020, 1.003, 0.012, "met"),
        # Cleared by less than half the per-round IQR: not shown.
        (1.025, 1.000, 0.02, "inconclusive"),
        (1.100, 1.005, 0.02, "not met"),
    ],
)
def test_a_time_target_is_met_only_beyond_the_noise(value, control, iqr, expected):
    noise = targets.time_noise({"iqr": iqr}, {"median": control})
    assert targets.verdict(value, 1.03, "<=", noise) == expected
    # The same margins mirrored for a ">=" target.
    assert targets.verdict(2 - value, 0.97, ">=", noise) == expected


def test_a_counted_target_needs_only_to_reach_its_threshold():
    assert targets.verdict(1.05, 1.05, "<=", 0.0) == "met"
    assert targets.verdict(1.0501, 1.05, "<=", 0.0) == "not met"


@pytest.mark.slow  # a benchmark run or a fresh process
def test_progress_bars_count_every_call_of_every_round(micro_run):
    results, _, stderr = micro_run
    preset, models = PRESETS["micro"], len(results["models"])
    calls = (preset.warmup + preset.repeats) * models
    for mode in ("inference", "training"):
        assert f"{mode}: {preset.repeats} rounds (+{preset.warmup} warm-up) x {models} models: 100%" in stderr
        assert f"{calls}/{calls}" in stderr
    assert "scaling sweep:" in stderr and "peak memory and FLOPs: 100%" in stderr


def test_time_interleaved_shows_progress_only_when_asked(capsys):
    runs = {name: (lambda: None) for name in "ab"}
    time_interleaved(runs, warmup=1, repeats=2, device=CPU)
    assert capsys.readouterr().err == ""
    time_interleaved(runs, warmup=1, repeats=2, device=CPU, progress="timing")
    err = capsys.readouterr().err
    assert "timing: 100%" in err and "6/6" in err


def test_duration_line_counts_the_compilation():
    rows = [
        {"compiled": False, "first_call_s": {"inference": 0.1, "training": 0.3}},
        {"compiled": True, "first_call_s": {"inference": 2.5, "training": 7.0}},
    ]
    line = report.duration_line({"wall_time_s": 219.4, "models": rows})
    assert line == "The run took 219 s, of which 10 s were the first calls of the `torch.compile` rows (compilation)."


@pytest.mark.slow  # a benchmark run or a fresh process
def test_failed_compile_is_reported_not_raised(micro_run):
    results, _, _ = micro_run
    assert not any(row["compiled"] for row in results["models"])
    notes = [note for note in results["notes"] if "torch.compile failed" in note]
    assert len(notes) == 2 and "RuntimeError: no compiler in this test" in notes[0] and "second line" not in notes[0]


def test_paired_ratio_is_the_median_of_per_round_ratios():
    # Drift between rounds (times doubling) leaves the same-round ratio at exactly 2.
    assert paired_ratio([2.0, 4.0, 8.0], [1.0, 2.0, 4.0]) == 2.0
    with pytest.raises(ValueError, match="same non-zero length"):
        paired_ratio([1.0], [1.0, 2.0])


def test_time_interleaved_rotates_the_order_every_round():
    calls = []
    runs = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = time_interleaved(runs, warmup=1, repeats=3, device=CPU)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(times) == 3 for times in samples.values())


def test_fit_scaling_tells_linear_from_quadratic():
    frames = [8, 16, 32]
    linear = fit_scaling(frames, [0.01 * f for f in frames])
    assert linear["loglog_exponent"] == pytest.approx(1.0)
    assert linear["slope_s_per_frame"] == pytest.approx(0.01)
    assert linear["r2"] == pytest.approx(1.0)
    assert fit_scaling(frames, [1e-4 * f * f for f in frames])["loglog_exponent"] == pytest.approx(2.0)


@pytest.mark.slow  # a benchmark run or a fresh process
def test_retained_cpu_memory_is_not_faulted_in_again():
    """XViT inference at the small preset: with glibc's defaults every call faulted 6,000-16,000 pages in again on
    this machine; after `retain_freed_cpu_memory` the calls after warm-up reuse warm pages."""
    script = textwrap.dedent(
        """
        import resource, torch
        from benchmarks.measure import retain_freed_cpu_memory
        from benchmarks.models import FAMILIES, XVIT
        from benchmarks.presets import PRESETS

        setting = retain_freed_cpu_memory()
        preset = PRESETS["small"]
        model = FAMILIES[XVIT].build(preset, preset.num_frames, "sdpa").eval()
        pixel_values = torch.randn(preset.batch_size, preset.num_frames, 3, preset.image_size, preset.image_size)
        with torch.no_grad():
            for _ in range(3):
                model(pixel_values)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(5):
                model(pixel_values)
        print(setting)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPOSITORY)
    setting, faults = result.stdout.splitlines()[-2:]
    if setting == "None":
        pytest.skip("no glibc: the CPU allocator is left as it is")
    assert int(faults) < 2000, f"{faults} page faults in 5 calls after retaining freed memory"


def test_peak_memory_sees_a_temporary_on_cpu():
    size = 4 * 2**20

    def make_and_drop_temporary():
        torch.empty(size, dtype=torch.uint8).fill_(1)

    assert size <= peak_memory_increase(make_and_drop_temporary, CPU) < 2 * size


def test_forward_flops_counts_cpu_fused_attention():
    query = torch.randn(2, 3, 10, 8)
    flops = forward_flops(lambda: torch.nn.functional.scaled_dot_product_attention(query, query, query))
    assert flops == 2 * (2 * 2 * 3 * 10 * 10 * 8)  # two batched matmuls: scores and weighted values


def test_models_that_cannot_fit_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(run, "free_memory_bytes", lambda device: 16 * 2**30)
    full = PRESETS["full"]
    reason = run.skip_reason(full, FAMILIES[VIVIT], "eager", full.num_frames, CPU)
    assert reason is not None and "GiB" in reason
    assert run.skip_reason(full, FAMILIES[VIVIT], "sdpa", full.num_frames, CPU) is None
    assert run.skip_reason(full, FAMILIES[XVIT], "eager", full.num_frames, CPU) is None


def _record_reports_dir(monkeypatch) -> list:
    """Replace the measuring by a stub that records where the reports would go."""
    folders = []

    def fake_run(preset, device, output_dir):
        folders.append(output_dir)
        return {"targets": [], "wall_time_s": 0.0}

    monkeypatch.setattr(run, "run_benchmarks", fake_run)
    return folders


def test_a_run_leaves_the_committed_results_alone_by_default(monkeypatch, tmp_path):
    folders = _record_reports_dir(monkeypatch)
    run.main(["--preset", "micro", "--device", "cpu"])
    run.main(["--preset", "micro", "--device", "cpu", "--output-dir", str(tmp_path)])
    run.main(["--preset", "micro", "--device", "cpu", "--update-committed-results"])
    assert folders == [report.RUNS_DIR, tmp_path, report.COMMITTED_RESULTS_DIR]
    assert report.COMMITTED_RESULTS_DIR == REPOSITORY / "benchmarks" / "results"
    with pytest.raises(SystemExit):
        run.main(["--output-dir", str(tmp_path), "--update-committed-results"])


def test_the_default_reports_folder_is_ignored_by_git():
    if not (REPOSITORY / ".git").exists():
        pytest.skip("not a git checkout")
    probe = report.RUNS_DIR / "small-cpu.json"
    result = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=REPOSITORY, check=False)
    assert result.returncode == 0, f"{probe} is not ignored by git"


def test_the_gpu_preset_on_a_cpu_warns_before_it_starts(monkeypatch, capsys):
    _record_reports_dir(monkeypatch)
    run.main(["--preset", "full", "--device", "cpu"])
    err = capsys.readouterr().err
    assert "WARNING: preset 'full'" in err and "meant for a GPU" in err
    run.main(["--preset", "small", "--device", "cpu"])
    assert "meant for a GPU" not in capsys.readouterr().err


@pytest.mark.slow  # a benchmark run or a fresh process
def test_the_profiler_prints_nothing_on_a_cpu():
    """libkineto printed `USDT ... profiler_start/stop` for every memory measurement and, with a CUDA build of
    PyTorch on a machine without a GPU, `gpuGetDeviceCount failed with code 35`."""
    script = textwrap.dedent(
        """
        import torch
        from benchmarks.measure import peak_memory_increase

        for _ in range(2):
            peak_memory_increase(lambda: torch.ones(1000).sum(), torch.device("cpu"))
        """
    )
    environment = {key: value for key, value in os.environ.items() if key != "KINETO_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPOSITORY, env=environment
    )
    assert result.stderr == ""


@pytest.mark.slow
def test_the_benchmark_script_runs_by_path_and_as_a_module():
    for output in run_help([["benchmarks/run.py"], ["-m", "benchmarks.run"]]):
        assert "--update-committed-results" in output
