"""Measurements: interleaved wall-clock timing, per-round ratios and their spread, peak memory, FLOPs, and the fits
of the frame-scaling sweep."""

import contextlib
import ctypes
import ctypes.util
import gc
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Hashable
from time import perf_counter

import torch
import transformers
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
from tqdm import tqdm

# libkineto's log levels run from 0 (verbose) to 5 (USDT probes); 6 is past the last, so it prints nothing.
KINETO_SILENT = "6"


def machine_info(device: torch.device) -> dict:
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        names = (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        cpu_model = next(names, cpu_model)
    info = {
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "device": device.type,
        "dtype": "bfloat16 (autocast)" if device.type == "cuda" else "float32",
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit systems.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MAX_MMAP_THRESHOLD = 32 * 2**20


def retain_freed_cpu_memory() -> str | None:
    """Have glibc keep freed memory in the heap instead of handing it back to the kernel; returns what was set.

    PyTorch's CPU allocator frees every tensor to malloc. By default glibc returns the top of the heap (and every
    block over a moving mmap threshold) to the kernel, so the next call faults the same pages in again: on the 2-core
    VM this cost thousands of page faults per inference call, varied from process to process with the order of
    allocations, and moved the XViT / ViT ratio by up to 6%. Kept memory makes every model run on warm pages alike.
    Blocks over 32 MiB are still mapped afresh (glibc's limit). A no-op (None) without glibc.
    """
    library = ctypes.util.find_library("c")
    libc = ctypes.CDLL(library) if library else None
    if libc is None or not hasattr(libc, "mallopt"):
        return None
    if not (libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) and libc.mallopt(M_MMAP_THRESHOLD, MAX_MMAP_THRESHOLD)):
        return None
    return "glibc mallopt: freed memory kept (no trimming), blocks up to 32 MiB from the heap"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def progress_bar(total: int, description: str | None) -> tqdm:
    """A progress bar on stderr (none when `description` is None); log lines printed meanwhile should go through
    `tqdm.write` to keep it intact."""
    return tqdm(
        total=total, desc=description, unit="call", file=sys.stderr, dynamic_ncols=True, disable=description is None
    )


def time_interleaved(
    runs: dict[Hashable, Callable[[], object]],
    warmup: int,
    repeats: int,
    device: torch.device,
    progress: str | None = None,
) -> dict[Hashable, list[float]]:
    """Seconds per call of every run, `repeats` times each.

    Runs alternate inside every round, and the order rotates between rounds, so drift of a shared machine (other
    processes, clocks, heat) hits all of them alike instead of whichever happened to run last. With `progress`, a
    progress bar of that title counts the calls of every round, warm-up included.
    """
    names = list(runs)
    samples = {name: [] for name in names}
    with progress_bar((warmup + repeats) * len(names), progress) as bar:
        for _ in range(warmup):
            for name in names:
                runs[name]()
                bar.update()
        for round_index in range(repeats):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                synchronize(device)
                start = perf_counter()
                runs[name]()
                synchronize(device)
                samples[name].append(perf_counter() - start)
                bar.update()
    return samples


def per_round_ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """Ratio of two runs timed in the same round, round by round (robust to drift between rounds)."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(
            f"paired samples must have the same non-zero length, got {len(numerator)} and {len(denominator)}"
        )
    return [n / d for n, d in zip(numerator, denominator, strict=True)]


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio of two runs timed in the same round."""
    return statistics.median(per_round_ratios(numerator, denominator))


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (all three equal for a single value)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    first, median, third = statistics.quantiles(values, n=4)
    return first, median, third


def paired_ratio_spread(numerator: list[float], denominator: list[float]) -> dict:
    """Quartiles of the per-round ratios: their interquartile range is how much one round's ratio varies."""
    first, median, third = quartiles(per_round_ratios(numerator, denominator))
    return {"median": median, "q1": first, "q3": third, "iqr": third - first}


def summarize(samples: list[float]) -> dict:
    first, median, third = quartiles(samples)
    return {"median_s": median, "min_s": min(samples), "q1_s": first, "q3_s": third, "samples_s": samples}


def _cpu_allocation_peak(prof: profile) -> int:
    """Highest running total of the CPU allocator's allocations and frees recorded by the profiler."""
    events = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.typed[0].name == "Allocation" and node.typed[1].device.type == "cpu":
            events.append((node.start_time_ns, node.typed[1].alloc_size))
    total = peak = 0
    for _, size in sorted(events):
        total += size
        peak = max(peak, total)
    return peak


def peak_memory_increase(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated while `fn` runs, beyond what was allocated when it started.

    CUDA: the caching allocator's own counters. CPU: every allocation and free of PyTorch's CPU allocator, timed by the
    profiler (the CPU analogue of `max_memory_allocated`; process RSS would also count the allocator's retained pages
    and whatever other threads do). libkineto, the profiler's back-end, is silenced unless `KINETO_LOG_LEVEL` is
    already set: it reads the level when first started, and would otherwise print two `USDT ... profiler_start/stop`
    lines per call and, with a CUDA build of PyTorch on a machine without a GPU, `gpuGetDeviceCount failed`.
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    os.environ.setdefault("KINETO_LOG_LEVEL", KINETO_SILENT)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return _cpu_allocation_peak(prof)


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def forward_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call, counted per operator; the CPU's fused attention kernel is counted like the GPU ones."""
    cpu_attention = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}
    with FlopCounterMode(display=False, custom_mapping=cpu_attention) as counter:
        fn()
    return counter.get_total_flops()


def fit_scaling(frames: list[int], seconds: list[float]) -> dict:
    """Least-squares line `seconds = intercept + slope * frames` with its R^2, and the log-log exponent.

    Linear cost in the number of frames gives an exponent near 1 (below 1 while fixed overheads still matter);
    attention over all frames jointly pushes it towards 2.
    """
    line = statistics.linear_regression(frames, seconds)
    predicted = [line.intercept + line.slope * f for f in frames]
    mean = statistics.fmean(seconds)
    residual = sum((s - p) ** 2 for s, p in zip(seconds, predicted, strict=True))
    spread = sum((s - mean) ** 2 for s in seconds)
    log_line = statistics.linear_regression([math.log(f) for f in frames], [math.log(s) for s in seconds])
    return {
        "slope_s_per_frame": line.slope,
        "intercept_s": line.intercept,
        "r2": 1.0 - residual / spread if spread > 0 else 1.0,
        "loglog_exponent": log_line.slope,
        "last_over_first": seconds[-1] / seconds[0],
        "frames_last_over_first": frames[-1] / frames[0],
    }
