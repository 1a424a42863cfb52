"""The training curve of a run: training and evaluation loss, and evaluation accuracy, against the optimiser step."""

from collections.abc import Mapping, Sequence
from pathlib import Path


def curve_points(log_history: Sequence[Mapping], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of every log entry of `trainer.state.log_history` that holds `key`."""
    entries = [entry for entry in log_history if key in entry]
    return [entry["step"] for entry in entries], [float(entry[key]) for entry in entries]


def write_training_curve(
    log_history: Sequence[Mapping], path: str | Path, title: str = "", num_labels: int | None = None
) -> Path:
    """A PNG with two panels: loss (training, evaluation) and evaluation top-1 / top-5 accuracy, against steps. Top-5
    is left out for 5 classes or fewer, where it is always 100%."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label, style in (("loss", "training", "-"), ("eval_loss", "evaluation", "o-")):
        steps, values = curve_points(log_history, key)
        if steps:
            loss_axes.plot(steps, values, style, label=label)
    accuracies = [("eval_top1_accuracy", "top-1"), ("eval_top5_accuracy", "top-5")]
    for key, label in accuracies[: 1 if num_labels is not None and num_labels <= 5 else 2]:
        steps, values = curve_points(log_history, key)
        if steps:
            accuracy_axes.plot(steps, [100 * value for value in values], "o-", label=label)
    loss_axes.set(xlabel="step", ylabel="loss", title="Loss")
    accuracy_axes.set(xlabel="step", ylabel="accuracy (%)", title="Evaluation accuracy (one view)", ylim=(0, 101))
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
