"""The ratios a run reports, how noisy the run was, and the verdict on each target.

A time ratio pairs the rounds of the interleaved loop: numerator over denominator within the same round, round by
round. The reported ratio is the median over rounds; the interquartile range (IQR) of the per-round ratios says how
much one round varied. The control (XViT with neither space-time mixing nor the temporal head, which computes what
the per-frame ViT computes) gives the noise floor: its time ratio to the per-frame ViT would be exactly 1 on an ideal
machine, so its distance from 1 is how far the machine alone moved a ratio between two models in this run.

A time target is met only when the ratio clears its threshold by more than the run's noise, the larger of the
control's distance from 1 and half the IQR of the ratio's own per-round values (in the same mode); it is not met
when it misses by more than that, and "inconclusive" in between. Peak memory is counted, not timed: no noise.
"""

from dataclasses import dataclass

from benchmarks.measure import paired_ratio_spread
from benchmarks.models import TIMESFORMER, VIT, VIVIT, XVIT, XVIT_CONTROL, XVIT_MEAN

# (key of the row's timings, the mode's name in ratio keys)
MODES = (("inference", "inference"), ("training_step", "training"))
# (ratio key, with {mode} for the mode, numerator row label, denominator row label), each for both modes.
TIME_RATIOS = (
    ("xvit_over_vit_{mode}", XVIT, VIT),
    ("xvit_mean_over_vit_{mode}", XVIT_MEAN, VIT),
    ("control_over_vit_{mode}", XVIT_CONTROL, VIT),
    ("timesformer_over_xvit_{mode}", TIMESFORMER, XVIT),
    ("vivit_over_xvit_{mode}", VIVIT, XVIT),
    ("xvit_over_vit_{mode}_eager", f"{XVIT} [eager]", f"{VIT} [eager]"),
    ("timesformer_over_xvit_{mode}_eager", TIMESFORMER, f"{XVIT} [eager]"),
    ("xvit_over_vit_{mode}_compiled", f"{XVIT} [compiled]", f"{VIT} [compiled]"),
)
CONTROL_RATIO = "control_over_vit_{mode}"


@dataclass(frozen=True)
class Target:
    ratio: str
    threshold: float
    comparison: str  # "<=" or ">="
    meaning: str
    mode: str | None  # "inference" or "training" for time ratios; None for a counted (noise-free) measure


TARGETS = (
    Target("xvit_over_vit_inference", 1.03, "<=", "XViT / per-frame ViT time, inference", "inference"),
    Target("xvit_over_vit_training", 1.03, "<=", "XViT / per-frame ViT time, training step", "training"),
    Target("timesformer_over_xvit_inference", 1.3, ">=", "TimeSformer / XViT time, inference", "inference"),
    Target("timesformer_over_xvit_training", 1.3, ">=", "TimeSformer / XViT time, training step", "training"),
    Target("xvit_over_vit_training_memory", 1.05, "<=", "XViT / per-frame ViT peak training memory", None),
)


def time_ratio_spreads(rows: list[dict]) -> dict[str, dict]:
    """Median and quartiles of the per-round ratios of every time ratio whose two rows were measured."""
    by_label = {row["label"]: row for row in rows}
    spreads = {}
    for row_key, mode in MODES:
        for template, numerator, denominator in TIME_RATIOS:
            if numerator in by_label and denominator in by_label:
                samples = (by_label[name][row_key]["samples_s"] for name in (numerator, denominator))
                spreads[template.format(mode=mode)] = paired_ratio_spread(*samples)
    return spreads


def compute_ratios(rows: list[dict], spreads: dict[str, dict]) -> dict[str, float]:
    """The time ratios (medians of the per-round ratios), then the peak-memory and FLOP ratios."""
    ratios = {key: spread["median"] for key, spread in spreads.items()}
    by_label = {row["label"]: row for row in rows}
    for name, prefix in ((XVIT, "xvit"), (XVIT_MEAN, "xvit_mean")):
        if name in by_label and VIT in by_label:
            xvit, vit = by_label[name], by_label[VIT]
            for mode in ("training", "inference"):
                memory = xvit["peak_memory_bytes"][mode] / vit["peak_memory_bytes"][mode]
                ratios[f"{prefix}_over_vit_{mode}_memory"] = memory
            ratios[f"{prefix}_over_vit_flops"] = xvit["gflops_per_clip"] / vit["gflops_per_clip"]
    return ratios


def time_noise(spread: dict, control: dict | None) -> float:
    """The noise a time ratio must clear: the larger of half its per-round IQR and the control's distance from 1."""
    return max(spread["iqr"] / 2, abs(control["median"] - 1) if control else 0.0)


def verdict(value: float, threshold: float, comparison: str, noise: float) -> str:
    """'met' when the value clears the threshold by more than the noise, 'not met' when it misses by more, else
    'inconclusive'. Without noise (a counted measure), reaching the threshold is enough."""
    margin = threshold - value if comparison == "<=" else value - threshold
    if margin < -noise:
        return "not met"
    if margin > noise or noise == 0:
        return "met"
    return "inconclusive"


def check_targets(ratios: dict[str, float], spreads: dict[str, dict]) -> list[dict]:
    checks = []
    for target in TARGETS:
        value, spread = ratios.get(target.ratio), spreads.get(target.ratio)
        control = spreads.get(CONTROL_RATIO.format(mode=target.mode)) if target.mode else None
        noise = None if spread is None else time_noise(spread, control)  # None: counted, or not measured
        checks.append(
            {
                "ratio": target.ratio,
                "meaning": target.meaning,
                "value": value,
                "target": f"{target.comparison} {target.threshold}",
                "iqr": None if spread is None else spread["iqr"],
                "control": None if control is None else control["median"],
                "noise": noise,
                "verdict": None
                if value is None
                else verdict(value, target.threshold, target.comparison, noise or 0.0),
            }
        )
    return checks
