"""The class lists of the released models (Kinetics-400, Kinetics-600, Something-Something-v2) and their loading."""

from pathlib import Path

from modeling_xvit.configuration_xvit import class_names_in, released_class_names
from modeling_xvit.errors import ConversionError

KNOWN_LABEL_SETS = ("kinetics400", "kinetics600", "ssv2")


def load_labels(spec: str) -> list[str]:
    """Class names in index order: a label set shipped with the package, or a text file with one name per line."""
    if spec in KNOWN_LABEL_SETS:
        labels = released_class_names(f"{spec}.txt")
    elif Path(spec).is_file():
        labels = class_names_in(Path(spec).read_text(encoding="utf-8"))
    else:
        raise ConversionError(f"--labels {spec!r} is neither one of {list(KNOWN_LABEL_SETS)} nor an existing file.")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConversionError(f"Label list {spec} repeats {duplicates}.")
    return labels
