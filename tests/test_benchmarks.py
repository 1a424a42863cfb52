"""The benchmark harness on the micro preset: every stage runs and reports; no timing is asserted."""

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from benchmarks import run
from benchmarks.measure import fit_scaling, forward_flops, paired_ratio, peak_memory_increase, time_interleaved
from benchmarks.models import FAMILIES, SCALING_FAMILIES, TIMESFORMER, VIT, VIVIT, XVIT, XVIT_MEAN
from benchmarks.presets import PRESETS

CPU = torch.device("cpu")


def _failing_compile(model, *args, **kwargs):
    def compiled(*call_args, **call_kwargs):
        raise RuntimeError("no compiler in this test\nsecond line")

    return compiled


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    """One run of the micro preset, with torch.compile failing so that the graceful skip is exercised too."""
    output_dir = tmp_path_factory.mktemp("bench")
    preset = dataclasses.replace(PRESETS["micro"], compile=True)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "compile", _failing_compile)
        results = run.run_benchmarks(preset, CPU, output_dir)
    assert torch.get_num_threads() == threads  # the preset's single thread does not leak into other tests
    return results, output_dir / "micro-cpu"


def test_reports_are_written_with_every_model(micro_run):
    results, stem = micro_run
    saved = json.loads(stem.with_suffix(".json").read_text())
    assert saved["ratios"] == results["ratios"]
    assert {"cpu", "torch", "transformers", "dtype", "cpu_malloc"} <= saved["machine"].keys()
    assert saved["machine"]["torch_threads"] == PRESETS["micro"].cpu_threads
    labels = [row["label"] for row in saved["models"]]
    assert labels == [
        XVIT,
        XVIT_MEAN,
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
    assert stem.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ratios_pair_the_rounds_and_targets_follow_them(micro_run):
    results, _ = micro_run
    rows = {row["label"]: row for row in results["models"]}
    xvit, vit = rows[XVIT], rows[VIT]
    expected = paired_ratio(xvit["inference"]["samples_s"], vit["inference"]["samples_s"])
    assert results["ratios"]["xvit_over_vit_inference"] == expected
    memory = xvit["peak_memory_bytes"]["training"] / vit["peak_memory_bytes"]["training"]
    assert results["ratios"]["xvit_over_vit_training_memory"] == memory
    targets = {target["ratio"]: target for target in results["targets"]}
    assert targets["xvit_over_vit_training_memory"]["met"] == (memory <= 1.05)
    assert targets["timesformer_over_xvit_inference"]["met"] == (
        results["ratios"]["timesformer_over_xvit_inference"] >= 1.3
    )


def test_failed_compile_is_reported_not_raised(micro_run):
    results, _ = micro_run
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
    repository = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=repository)
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
