"""
Data of the training example: labelled videos from four kinds of source, read through `datasets` as splits of
(video, label) rows, their class names checked before training, and the rows handed to the DataLoader. Videos are
decoded later, by the collator in the DataLoader workers (`collator.py`), never by `datasets` (whose video
decoding needs torchcodec): video columns are read with `Video(decode=False)`, as paths or bytes.

Sources:

- (a) folders with one subfolder per class: `--train_dir` / `--validation_dir` / `--test_dir`, or `--data_dir ROOT`
  holding `train/`, `validation/` and `test/` (the `videofolder` builder);
- (b) lists of videos and labels, `--train_file` / `--validation_file` / `--test_file`: CSV with a header naming the
  video and label columns, the original XViT lists without a header (`path label` or `path,label` lines), JSON or
  JSON lines, or webdataset shards (`.tar`, globs allowed); relative paths are taken from `--video_root`;
- (c) any `datasets` data set with a video column: `--dataset_name` (a Hub id or a local folder), with
  `--video_column_name` and `--label_column_name`;
- (d) a folder of prepared shards written by `examples/prepare_videos.py` from any of the above: `--prepared_dir`
  (`prepare.py`, `shards.py`; with `--augment_on_device`, see `augment.py`).

Labels are class indices or class names. `--streaming` streams any source; the training stream is then split between
the processes of a distributed run with `datasets.distributed.split_dataset_by_node`, so each process reads its own
shards.
"""

import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets import ClassLabel, Video
from datasets.distributed import split_dataset_by_node

from modeling_xvit.labels import load_labels
from modeling_xvit.training.shards import load_prepared_splits
from modeling_xvit.video_decoding import video_name

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
LIST_BUILDERS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "json", ".tar": "webdataset"}

VideoSplit = datasets.Dataset | datasets.IterableDataset


@dataclass
class DataArguments:
    """Where the videos and labels come from, and how they are evaluated."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Root with train/, validation/ and test/ folders, each holding one subfolder per class."},
    )
    train_dir: str | None = field(default=None, metadata={"help": "Training videos, one subfolder per class."})
    validation_dir: str | None = field(default=None, metadata={"help": "Validation videos, one subfolder per class."})
    test_dir: str | None = field(default=None, metadata={"help": "Test videos, one subfolder per class."})
    train_file: str | None = field(
        default=None,
        metadata={"help": "Training list: CSV (path,label), JSON / JSON lines, or webdataset shards (.tar, globs)."},
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation list (same formats)."})
    test_file: str | None = field(default=None, metadata={"help": "Test list (same formats)."})
    video_root: str | None = field(
        default=None,
        metadata={"help": "Folder that the lists' video paths start from; a path leading out of it is refused."},
    )
    allow_paths_outside_video_root: bool = field(
        default=False,
        metadata={"help": "Read list rows whose paths lead out of --video_root (`../` segments, absolute paths)."},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A `datasets` data set with a video column: a Hub id or a local folder."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_split_name: str = field(default="train", metadata={"help": "Split of --dataset_name to train on."})
    validation_split_name: str = field(default="validation", metadata={"help": "Split of --dataset_name to evaluate."})
    test_split_name: str = field(default="test", metadata={"help": "Split of --dataset_name to predict."})
    video_column_name: str = field(
        default="video",
        metadata={"help": "Column holding the videos (paths or bytes); when absent, the one Video column is used."},
    )
    label_column_name: str = field(default="label", metadata={"help": "Column holding the labels."})
    class_names: str | None = field(
        default=None,
        metadata={
            "help": "Class names in index order: kinetics400, kinetics600, ssv2, or a file with one name per line. "
            "Default: the data set's ClassLabel names, else the labels found in the data (required for streaming)."
        },
    )
    streaming: bool = field(default=False, metadata={"help": "Stream the data instead of preparing it on disk."})
    shuffle_buffer_size: int = field(default=1000, metadata={"help": "Shuffle buffer of a streamed training split."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only this many training videos."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only this many validation videos."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only this many test videos."})
    eval_num_temporal_views: int = field(
        default=1, metadata={"help": "Multi-view testing: clips per video (the paper's temporal views)."}
    )
    eval_num_spatial_crops: int = field(
        default=1, metadata={"help": "Multi-view testing: crops per clip (1 or 3, the paper's spatial crops)."}
    )
    max_bad_video_fraction: float = field(
        default=0.01,
        metadata={"help": "Stop when more than this fraction of the videos read are unreadable (they are skipped)."},
    )
    mixup_alpha: float = field(default=0.0, metadata={"help": "MixUp of training clips (Beta(alpha, alpha)); 0: off."})
    cutmix_alpha: float = field(default=0.0, metadata={"help": "CutMix of training clips; 0: off."})
    # --- Prepared shards and augmentation on the training device (issue 21; modeling_xvit.training.prepare) ---
    prepared_dir: str | None = field(
        default=None,
        metadata={"help": "A folder written by examples/prepare_videos.py: its splits, labels and class names."},
    )
    augment_on_device: bool = field(
        default=False,
        metadata={
            "help": "DataLoader workers only decode and crop; flips, RandAugment, normalisation and mixing run "
            "batched on the training device, with the same random draws as in the workers. On an accelerator, "
            "prepared videos' colour conversion and resize run there too: the workers only decode them."
        },
    )

    def __post_init__(self):
        if not 0 <= self.max_bad_video_fraction <= 1:  # also refuses NaN, which would switch the check off
            raise ValueError(f"--max_bad_video_fraction must be between 0 and 1, got {self.max_bad_video_fraction}.")

    @property
    def num_eval_views(self) -> int:
        return self.eval_num_temporal_views * self.eval_num_spatial_crops


# --- Loading ---------------------------------------------------------------------------------------------------


def load_video_splits(args: DataArguments, seed: int = 0, cache_dir: str | None = None) -> dict[str, VideoSplit]:
    """The splits found in the source that `args` names, each reduced to `--max_*_samples` rows; `cache_dir` is
    where `datasets` keeps what it prepares."""
    sources = [
        name
        for name, given in (
            ("--dataset_name", args.dataset_name),
            ("--*_file", args.train_file or args.validation_file or args.test_file),
            ("--data_dir / --*_dir", args.data_dir or args.train_dir or args.validation_dir or args.test_dir),
            ("--prepared_dir", args.prepared_dir),
        )
        if given
    ]
    if len(sources) != 1:
        raise ValueError(f"Give exactly one source of videos; got {sources or 'none'}.")
    if args.prepared_dir:  # issue 21: shards of prepare_videos.py
        splits = load_prepared_splits(args.prepared_dir, args.streaming, cache_dir, args.label_column_name)[0]
    elif args.dataset_name:
        splits = _load_named_dataset(args, cache_dir)
    elif sources == ["--*_file"]:
        splits = _load_lists(args, cache_dir)
    else:
        splits = _load_folders(args, cache_dir)
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_predict_samples}
    for split, limit in limits.items():
        if split in splits and limit is not None:
            splits[split] = _first_rows(splits[split], limit)
    if args.streaming and "train" in splits:
        splits["train"] = splits["train"].shuffle(seed=seed, buffer_size=args.shuffle_buffer_size)
    return splits


def _load_named_dataset(args: DataArguments, cache_dir: str | None) -> dict[str, VideoSplit]:
    names = {"train": args.train_split_name, "validation": args.validation_split_name, "test": args.test_split_name}
    loaded = datasets.load_dataset(
        args.dataset_name, args.dataset_config_name, streaming=args.streaming, cache_dir=cache_dir
    )
    return {split: loaded[name] for split, name in names.items() if name in loaded}


def _load_lists(args: DataArguments, cache_dir: str | None) -> dict[str, VideoSplit]:
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    files = {split: path for split, path in files.items() if path}
    extensions = {Path(path).suffix.lower() for path in files.values()}
    if len(extensions) != 1 or not extensions <= LIST_BUILDERS.keys():
        raise ValueError(
            f"The list files must share one of the extensions {sorted(LIST_BUILDERS)}; got {sorted(files.values())}."
        )
    builder = LIST_BUILDERS[extensions.pop()]
    options = _csv_options(files, args) if builder == "csv" else {}
    return dict(
        datasets.load_dataset(builder, data_files=files, streaming=args.streaming, cache_dir=cache_dir, **options)
    )


def _csv_options(files: Mapping[str, str], args: DataArguments) -> dict[str, Any]:
    """Read a CSV list with its header, or as the original's header-less `path label` / `path,label` lines."""
    first_lines = {path: _first_line(path) for path in files.values()}
    has_header = {args.label_column_name in re.split(r"[,\s]+", line) for line in first_lines.values()}
    separators = {"," if "," in line else " " for line in first_lines.values()}
    if len(has_header) != 1 or len(separators) != 1:
        raise ValueError(f"The list files differ in header or separator: first lines {first_lines}.")
    separator = separators.pop()
    if has_header.pop():
        return {"sep": separator}
    if separator == " ":  # `path label`: the label is the last word, the path may hold spaces
        separator, options = r"\s+(?=\S+$)", {"engine": "python"}
    else:
        options = {}
    columns = [args.video_column_name, args.label_column_name]
    return {"sep": separator, "header": None, "column_names": columns, **options}


def _first_line(path: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"List file not found: {path}")
    with open(path, encoding="utf-8") as file:
        return file.readline().strip()


def _load_folders(args: DataArguments, cache_dir: str | None) -> dict[str, VideoSplit]:
    folders = {"train": args.train_dir, "validation": args.validation_dir, "test": args.test_dir}
    if args.data_dir:
        if any(folders.values()):
            raise ValueError("Give either --data_dir or --train_dir / --validation_dir / --test_dir, not both.")
        folders = {split: os.path.join(args.data_dir, split) for split in SPLITS}
        folders = {split: folder for split, folder in folders.items() if os.path.isdir(folder)}
        if not folders:
            raise FileNotFoundError(f"--data_dir {args.data_dir} holds none of the folders {list(SPLITS)}.")
    folders = {split: folder for split, folder in folders.items() if folder}
    for folder in folders.values():
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Video folder not found: {folder}")
    data_files = {split: os.path.join(folder, "**") for split, folder in folders.items()}
    return dict(
        datasets.load_dataset("videofolder", data_files=data_files, streaming=args.streaming, cache_dir=cache_dir)
    )


def _first_rows(split: VideoSplit, count: int) -> VideoSplit:
    if isinstance(split, datasets.IterableDataset):
        return split.take(count)
    return split.select(range(min(count, len(split))))


# --- Columns and labels ----------------------------------------------------------------------------------------


def video_column(split: VideoSplit, name: str) -> str:
    """The video column: `name`, else the only column with a `Video` feature (webdataset's `mp4`, for example), else a
    column called `path` (lists with a `path,label` header). A stream whose features are unknown until it is read is
    taken to have `name`."""
    columns = list(split.features or {})
    if name in columns or split.features is None:
        return name
    video_columns = [column for column, feature in (split.features or {}).items() if isinstance(feature, Video)]
    if len(video_columns) == 1:
        return video_columns[0]
    if "path" in columns:
        return "path"
    raise ValueError(f"No video column {name!r} among the columns {columns}: set --video_column_name.")


def undecoded(split: VideoSplit, column: str) -> VideoSplit:
    """The split with its video column read as paths or bytes, so that `datasets` never decodes a video."""
    if isinstance((split.features or {}).get(column), Video):
        return split.cast_column(column, Video(decode=False))
    return split


def find_class_names(splits: Mapping[str, VideoSplit], args: DataArguments) -> list[str]:
    """Class names in index order: `--class_names`, the splits' ClassLabel names, or the labels found in the data."""
    if args.class_names:
        return load_labels(args.class_names)
    for split in splits.values():
        feature = (split.features or {}).get(args.label_column_name)
        if isinstance(feature, ClassLabel):
            return list(feature.names)
    if any(isinstance(split, datasets.IterableDataset) for split in splits.values()):
        raise ValueError(
            "Streamed data without ClassLabel names needs --class_names (kinetics400, kinetics600, ssv2, or a file)."
        )
    counts = Counter(value for split in splits.values() for value in _label_column(split, args.label_column_name))
    if all(isinstance(value, int) for value in counts):
        missing = sorted(set(range(max(counts) + 1)) - set(counts))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise ValueError(
                f"The labels are class indices 0 to {max(counts)}, but {len(missing)} of them label no video"
                f" ({shown}): a typo, or classes without videos. Give the class list with --class_names (a file with"
                " one name per line, in index order)."
            )
        return [str(index) for index in range(max(counts) + 1)]
    names = Counter()
    for value, count in counts.items():
        names[str(value)] += count
    _check_near_duplicates(names)
    return sorted(names)


def _check_near_duplicates(counts: Mapping[str, int]) -> None:
    """Refuse two class names one edit apart (`left` and `lefft`, `rigth` and `right`): a typo in a row would make a
    class of its own."""
    names = sorted(counts, key=lambda name: (len(name), name))
    for index, name in enumerate(names):
        for other in names[index + 1 :]:
            if len(other) > len(name) + 1:
                break
            if not (name.isdigit() and other.isdigit()) and _one_edit_apart(name, other):
                raise ValueError(
                    f"The class names {name!r} (rows: {counts[name]}) and {other!r} (rows: {counts[other]}) differ by"
                    " one letter: a typo makes a class of its own. Fix the labels, or, if both are classes, give the"
                    " class list with --class_names (a file with one name per line)."
                )


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of neighbours turns `a` into `b` (`a != b`)."""
    shorter = min(len(a), len(b))
    prefix = next((i for i in range(shorter) if a[i] != b[i]), shorter)
    suffix = next((j for j in range(shorter - prefix) if a[-1 - j] != b[-1 - j]), shorter - prefix)
    middle_a, middle_b = a[prefix : len(a) - suffix], b[prefix : len(b) - suffix]
    return max(len(middle_a), len(middle_b)) <= 1 or (len(middle_a) == 2 and middle_a == middle_b[::-1])


def _label_column(split: datasets.Dataset, column: str) -> list:
    if column not in split.column_names:
        raise ValueError(
            f"No label column {column!r} among the columns {split.column_names}: set --label_column_name."
        )
    return split[column]


class LabelEncoder:
    """Class index of a label given as an index or a class name; anything else is an error naming the row.

    `split_names` are the names of a split's `ClassLabel` column, when its indices are not those of `names`: a
    videofolder numbers its sorted folder names, whatever order `--class_names` gives. Its labels are read as names.
    """

    def __init__(self, names: list[str], split_names: Sequence[str] | None = None):
        self.names = names
        self.index = {name: index for index, name in enumerate(names)}
        self.split_names = None if split_names is None or list(split_names) == names else list(split_names)

    def for_split(self, split: VideoSplit, column: str) -> "LabelEncoder":
        """The encoder of `split`'s labels: the indices of a `ClassLabel` column stand for its own names."""
        feature = (split.features or {}).get(column)
        return LabelEncoder(self.names, feature.names) if isinstance(feature, ClassLabel) else self

    def _by_name(self, label):
        """A split's ClassLabel index as its class name; any other label as it is."""
        if self.split_names is None or isinstance(label, bool) or not isinstance(label, int):
            return label
        return self.split_names[label] if 0 <= label < len(self.split_names) else label

    def problem(self, label) -> str | None:
        """What is wrong with `label`, or None."""
        label = self._by_name(label)
        if isinstance(label, bool) or not isinstance(label, int | str):
            return f"label {label!r} is neither a class index nor a class name"
        if isinstance(label, int) and not 0 <= label < len(self.names):
            return f"label {label} is out of range for {len(self.names)} classes (0 to {len(self.names) - 1})"
        if isinstance(label, str) and label not in self.index:
            known = ", ".join(self.names[:10]) + (", ..." if len(self.names) > 10 else "")
            return f"unknown class name {label!r} (known: {known})"
        return None

    def __call__(self, label, row: str) -> int:
        problem = self.problem(label)
        if problem:
            raise ValueError(f"{row}: {problem}.")
        label = self._by_name(label)
        return label if isinstance(label, int) else self.index[label]


def check_rows(split: datasets.Dataset, columns: "SplitColumns") -> None:
    """Fail before training on the first row whose label is out of range or an unknown class name, or whose path
    leads out of --video_root; log the videos of each class."""
    counts = Counter()
    for index, label in enumerate(_label_column(split, columns.label)):
        problem = columns.labels.problem(label)
        if problem:
            video = video_name(columns.source(split[index][columns.video]))
            raise ValueError(f"Split {columns.split!r}, row {index} (video {video}): {problem}.")
        counts[columns.labels(label, "")] += 1
    if columns.video_root:
        for index, value in enumerate(split[columns.video]):
            try:
                columns.source(value)
            except ValueError as error:
                raise ValueError(f"Split {columns.split!r}, row {index}: {error}") from None
    shown = [f"{name} {counts[index]}" for index, name in enumerate(columns.labels.names)]
    shown = shown if len(shown) <= 30 else [*shown[:30], f"... ({len(shown) - 30} more)"]
    logger.info("Split %r: %d videos of %d classes: %s", columns.split, len(split), len(shown), ", ".join(shown))


def check_splits(splits: Mapping[str, VideoSplit], do_train: bool, do_eval: bool, do_predict: bool) -> None:
    """Refuse data that lacks a split the run needs."""
    needed = {"train": do_train, "validation": do_eval, "test": do_predict}
    missing = [split for split, wanted in needed.items() if wanted and split not in splits]
    if missing:
        raise ValueError(f"The data has no {missing} split(s), found {sorted(splits)}; see --help for the sources.")


# --- Rows for the DataLoader -----------------------------------------------------------------------------------


def split_rows(
    split_name: str,
    split: VideoSplit,
    args: DataArguments,
    labels: "LabelEncoder",
    processing: dict[str, Any],
    process: tuple[int, int] | None = None,
) -> "VideoRows | StreamedVideoRows":
    """A split's rows for the DataLoader, its clips made with the processor options `processing`; a prepared split's
    labels are checked here, before any training. `process` (rank, world size): a stream that this process reads
    its own part of (training); evaluation streams are shared out by accelerate, which keeps batches even."""
    column = video_column(split, args.video_column_name)
    labels = labels.for_split(split, args.label_column_name)
    columns = SplitColumns(
        split_name,
        column,
        args.label_column_name,
        labels,
        args.video_root,
        processing,
        allow_paths_outside_root=args.allow_paths_outside_video_root,
    )
    split = undecoded(split, column)
    if isinstance(split, datasets.IterableDataset):
        return StreamedVideoRows(split, columns, *(process or ()))
    check_rows(split, columns)
    return VideoRows(split, columns)


@dataclass
class SplitColumns:
    """How to read one split's rows: its columns, the class names, the video root, and the processor options its
    clips are made with (training augmentation, or the test views)."""

    split: str
    video: str
    label: str
    labels: LabelEncoder
    video_root: str | None
    processing: dict[str, Any]
    allow_paths_outside_root: bool = False

    def source(self, value) -> str | bytes:
        """The video of a row's video entry (see `video_source`)."""
        return video_source(value, self.video_root, self.allow_paths_outside_root)


def video_source(value, video_root: str | None = None, allow_outside_root: bool = False) -> str | bytes:
    """A path (joined to `video_root` when relative) or the bytes of a video, from a path or a `Video` entry. A path
    that leads out of `video_root` (by `..` segments or as an absolute path) is refused unless `allow_outside_root`."""
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError(f"A video entry must be a path or a dict with `path` or `bytes`, got {value!r}.")
    if not video_root:
        return str(value)
    path = os.path.join(video_root, value)
    root = os.path.abspath(video_root)
    if not allow_outside_root and os.path.commonpath([root, os.path.abspath(path)]) != root:
        raise ValueError(
            f"the video path {str(value)!r} leads to {os.path.abspath(path)}, outside --video_root {video_root}"
            " (--allow_paths_outside_video_root reads such paths)"
        )
    return path


class VideoRows(torch.utils.data.Dataset):
    """Row `index` of a prepared split as the collator's input: the video source, its class index, the sample key
    (the index: per-sample augmentation seeds derive from it) and the processor options."""

    def __init__(self, split: datasets.Dataset, columns: SplitColumns):
        self.split = split.select_columns([columns.video, columns.label])
        self.columns = columns

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.split[index]
        return _item(row, self.columns, key=index, row_name=f"Split {self.columns.split!r}, row {index}")

    def video(self, index: int) -> str | bytes:
        """The path (or the bytes) of row `index`'s video."""
        return self.columns.source(self.split[index][self.columns.video])


class StreamedVideoRows(torch.utils.data.IterableDataset):
    """The rows of a streamed split. The key of a row, from which its augmentation seed derives, hashes its webdataset
    key or its path (or its bytes), so it does not depend on which worker or process reads the row.

    `split_by_node`: this process reads only its part of the stream (`split_dataset_by_node`), which the Trainer must
    then not split again (see `VideoClassificationTrainer.get_train_dataloader`)."""

    def __init__(self, split: datasets.IterableDataset, columns: SplitColumns, rank: int = 0, world_size: int = 1):
        self.split_by_node = world_size > 1
        self.split = split_dataset_by_node(split, rank, world_size) if self.split_by_node else split
        self.columns = columns

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.split:
            key = row.get("__url__", "") + row.get("__key__", "")
            try:
                video = self.columns.source(row[self.columns.video])
            except ValueError as error:
                raise ValueError(f"Split {self.columns.split!r}: {error}") from None
            key = key or (video if isinstance(video, str) else video[:65536])
            yield _item(
                row,
                self.columns,
                key=_stable_hash(key),
                row_name=f"Split {self.columns.split!r}, video {video_name(video)}",
            )

    def set_epoch(self, epoch: int) -> None:
        self.split.set_epoch(epoch)  # reshuffles the shards and the buffer


def _item(row: Mapping[str, Any], columns: SplitColumns, key: int, row_name: str) -> dict[str, Any]:
    return {
        "video": columns.source(row[columns.video]),
        "label": columns.labels(row[columns.label], row_name),
        "sample_key": key,
        "processing": columns.processing,
    }


def _stable_hash(key: str | bytes) -> int:
    return zlib.crc32(key.encode() if isinstance(key, str) else key)
