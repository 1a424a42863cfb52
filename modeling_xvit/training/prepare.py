"""
Prepared training shards: every video of a training source decoded once, its short side resized to what training
needs (the processor's largest scale-jitter size, never enlarged), re-encoded in H.264 so that the few frames a clip
samples decode cheaply, and written as webdataset tar shards that `datasets` reads and streams like any other
webdataset source.

The encoding is chosen for sampled decoding (sizes and speeds: docs/benchmarks.md): `bframes` B-frames between two
reference frames, none of them a reference (fixed pattern, no B-pyramid), so that a clip decodes the reference frames
up to each frame it samples and skips every other B-frame; CAVLC, which decodes faster than CABAC for a few more
bytes; a key frame every `keyint` frames.

Each sample `{key}` of a shard holds `{key}.mp4` (the video), `{key}.cls` (the class index) and `{key}.json` (its
metadata: the source, the label, the frame count and frame rate, the source's and the prepared frame size). The key
is the video's row in its split, so a prepared video keeps the sample key (and with it the augmentation seed) of its
unprepared row. Every frame is kept, with the frame rate, so a clip samples the same frame indices from the prepared
video as from its source (`shards.py` reads them).

Layout of the output folder: `{split}/{split}-{n:05d}.tar` with a `.json` beside each shard (its videos and the bad
ones), `classes.txt`, `options.json` and `index.json` (what was written: shards, videos, bytes, seconds of video, bad
videos). Shards are written to a temporary name and renamed when complete, so a killed run started again (with the
same options) keeps the finished shards and redoes the rest.
"""

import io
import json
import multiprocessing
import os
import sys
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import torch
from torchvision.transforms.v2 import functional as F
from tqdm.auto import tqdm

from modeling_xvit.clip_sampling import short_side_size
from modeling_xvit.video_decoding import video_name

PREPARED_FORMAT = 1
INDEX_FILE = "index.json"
CLASSES_FILE = "classes.txt"
OPTIONS_FILE = "options.json"
# Start of the MP4 comment tag that marks a prepared video and holds its sizes (see `shards.prepared_sizes`).
PREPARED_TAG = "xvit-prepared "


@dataclass
class PrepareArguments:
    """How the videos are prepared."""

    output_dir: str = field(metadata={"help": "Folder that receives the shards, index.json and classes.txt."})
    short_side: int = field(
        default=320,
        metadata={"help": "Short side of the prepared frames: the processor's largest scale jitter (no upscale)."},
    )
    keyint: int = field(default=32, metadata={"help": "Frames between two key frames (1: intra-only, largest)."})
    bframes: int = field(
        default=7,
        metadata={"help": "Non-reference B-frames between reference frames: a clip skips those it does not sample."},
    )
    crf: int = field(default=23, metadata={"help": "x264 rate factor (lower: larger, closer to the source)."})
    videos_per_shard: int = field(default=256, metadata={"help": "Videos per tar shard."})
    num_workers: int = field(
        default=os.cpu_count() or 1, metadata={"help": "Processes that prepare shards; 0 prepares in this process."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where `datasets` keeps what it reads."})


@dataclass
class ShardTask:
    """One shard to write: the rows `indices` of a split (`rows[i]` gives `video`, a path or bytes, and `label`)."""

    split: str
    path: Path
    rows: Any
    indices: Sequence[int]
    options: PrepareArguments


# --- One video -------------------------------------------------------------------------------------------------


def prepare_video(source: str | bytes, options: PrepareArguments) -> tuple[bytes, dict[str, Any]]:
    """The video re-encoded at the prepared size, and its metadata. Every frame is kept, in presentation order, with
    the frame rate; a video whose frames cannot all be decoded is refused (ValueError)."""
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else source) as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        num_packets = sum(1 for packet in container.demux(stream) if packet.size)  # the frame count training sees
        container.seek(0)
        height, width = stream.height, stream.width
        size = short_side_size(height, width, options.short_side) if min(height, width) > options.short_side else None
        # 4:2:0 chroma needs even sides: an odd one gets a pixel more (the training reader resizes to the source's
        # geometry whatever the prepared size; evaluation sees the frame, stretched by under a pixel).
        size = tuple(side + side % 2 for side in size or (height, width))
        metadata = {"height": height, "width": width, "prepared_height": size[0], "prepared_width": size[1]}
        frames = rgb_frames(container, stream, size if size != (height, width) else None)
        data, num_frames = _encode(frames, rate, size, metadata, options)
    if num_frames != num_packets:
        raise ValueError(f"{num_frames} of its {num_packets} frames could be decoded (corrupt or truncated file?)")
    return data, {"num_frames": num_frames, "fps": float(rate) if rate else None, **metadata}


def rgb_frames(container, stream, size: tuple[int, int] | None) -> Iterator[torch.Tensor]:
    """Decoded `(3, h, w)` uint8 frames, resized as the processor resizes (bilinear, no antialiasing)."""
    for frame in container.decode(stream):
        pixels = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
        yield F.resize(pixels, list(size), antialias=False) if size else pixels


def _encode(
    frames: Iterator[torch.Tensor],
    rate: Fraction | None,
    size: tuple[int, int],
    metadata: dict[str, int],
    options: PrepareArguments,
) -> tuple[bytes, int]:
    """H.264 in MP4 for sampled decoding (see the module's docstring), `metadata` in its comment tag (the reader needs
    the source's size to resize as the source would be)."""
    rate = rate or Fraction(30)
    buffer, count = io.BytesIO(), 0
    with av.open(buffer, "w", format="mp4") as output:
        output.metadata["comment"] = PREPARED_TAG + json.dumps(metadata)
        stream = output.add_stream("libx264", rate=rate)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.options = {
            "preset": "veryfast",
            "crf": str(options.crf),
            "x264-params": f"keyint={options.keyint}:min-keyint={options.keyint}:scenecut=0:cabac=0:"
            f"bframes={options.bframes}:b-adapt=0:b-pyramid=none",
        }
        for pixels in frames:
            pixels = pixels.permute(1, 2, 0).contiguous().numpy()
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = count, 1 / rate
            output.mux(stream.encode(frame))
            count += 1
        if count == 0:
            raise ValueError("the video contains no frames")
        output.mux(stream.encode())
    return buffer.getvalue(), count


# --- One shard -------------------------------------------------------------------------------------------------


def write_shard(task: ShardTask) -> dict[str, Any]:
    """Write one shard and its `.json` record (videos written, bad videos, bytes); returns the record. Written under
    temporary names and renamed, the record before the shard, so that a shard that exists is complete."""
    torch.set_num_threads(1)  # one process per core
    partial = task.path.with_name(task.path.name + ".partial")
    record = {"name": task.path.name, "videos": 0, "source_bytes": 0, "bytes": 0, "seconds": 0.0, "bad_videos": []}
    with tarfile.open(partial, "w") as archive:
        for index in task.indices:
            item = task.rows[index]
            name = video_name(item["video"])
            try:
                data, metadata = prepare_video(item["video"], task.options)
            except (ValueError, OSError, RuntimeError, av.FFmpegError) as error:
                record["bad_videos"].append(f"{name}: {error}")
                continue
            source = item["video"] if isinstance(item["video"], str) else name
            metadata = {"source": source, "label": item["label"], **metadata}
            key = f"{index:09d}"
            _add_member(archive, f"{key}.mp4", data)
            _add_member(archive, f"{key}.cls", str(item["label"]).encode())
            _add_member(archive, f"{key}.json", json.dumps(metadata).encode())
            record["videos"] += 1
            record["source_bytes"] += os.path.getsize(source) if source is item["video"] else len(item["video"])
            record["seconds"] += metadata["num_frames"] / (metadata["fps"] or 30.0)
    record["bytes"] = partial.stat().st_size
    _write_json(task.path.with_suffix(".json"), record)
    partial.rename(task.path)
    return record


def _add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    archive.addfile(info, io.BytesIO(data))


def _write_json(path: Path, content: Any) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    temporary.rename(path)


def _finished_record(path: Path) -> dict[str, Any] | None:
    """The record of a shard finished by an earlier run, or None when it must be (re)written."""
    record_path = path.with_suffix(".json")
    if not (path.is_file() and record_path.is_file()):
        return None
    return json.loads(record_path.read_text(encoding="utf-8"))


# --- A whole source --------------------------------------------------------------------------------------------


def prepare_splits(
    rows: Mapping[str, Any],
    class_names: Sequence[str],
    options: PrepareArguments,
    max_bad_video_fraction: float = 0.01,
    progress: bool = True,
) -> dict[str, Any]:
    """
    Prepare the splits `rows` (each with a length, `rows[i]` giving `video`, a path or bytes, and `label`, as
    `data.VideoRows`) into `options.output_dir`, in parallel over `options.num_workers` processes. Shards
    finished by an earlier run are kept. Returns the index (also written to `index.json`).

    Raises `ValueError` when more than `max_bad_video_fraction` of a split's videos are unreadable (the index, with
    the list, is written first).
    """
    output = Path(options.output_dir)
    _claim_output(output, options)
    tasks, records = [], {}
    for split, split_rows in rows.items():
        (output / split).mkdir(parents=True, exist_ok=True)
        for number, start in enumerate(range(0, len(split_rows), options.videos_per_shard)):
            path = output / split / f"{split}-{number:05d}.tar"
            indices = range(start, min(start + options.videos_per_shard, len(split_rows)))
            record = _finished_record(path)
            if record is None:
                tasks.append(ShardTask(split, path, split_rows, indices, options))
            records[path] = record
    start_time = time.perf_counter()
    total = sum(len(task.indices) for task in tasks)
    with tqdm(total=total, unit="video", desc="Preparing videos", disable=not progress) as bar:
        for task, record in zip(tasks, _run(tasks, options.num_workers), strict=True):
            records[task.path] = record
            bar.update(len(task.indices))
    index = _index(records, class_names, options, time.perf_counter() - start_time)
    (output / CLASSES_FILE).write_text("\n".join(class_names) + "\n", encoding="utf-8")
    _write_json(output / INDEX_FILE, index)
    for split, entry in index["splits"].items():
        bad, seen = len(entry["bad_videos"]), entry["videos"] + len(entry["bad_videos"])
        if bad > max_bad_video_fraction * seen:
            raise ValueError(
                f"{bad} of the {seen} videos of the {split} split are unreadable, more than max_bad_video_fraction "
                f"{max_bad_video_fraction} allows (listed in {output / INDEX_FILE}); first: {entry['bad_videos'][0]}"
            )
    return index


def prepare_source(data_args, options: PrepareArguments, progress: bool = True) -> dict[str, Any]:
    """Prepare every split of the source that `data_args` (the training script's `DataArguments`) names; labels are
    stored as class indices of `--class_names` (or the names found in the data, as training finds them)."""
    from modeling_xvit.training.data import LabelEncoder, find_class_names, load_video_splits, split_rows

    if data_args.streaming:
        raise ValueError("Prepare from a local source (the shards it writes can be streamed): drop --streaming.")
    splits = load_video_splits(data_args, cache_dir=options.cache_dir)
    class_names = find_class_names(splits, data_args)
    labels = LabelEncoder(class_names)
    rows = {split: split_rows(split, videos, data_args, labels, {}) for split, videos in splits.items()}
    return prepare_splits(rows, class_names, options, data_args.max_bad_video_fraction, progress)


def _claim_output(output: Path, options: PrepareArguments) -> None:
    """Record the options in the output folder, or check them against those of the run that started it: resumed
    shards must match the rest."""
    output.mkdir(parents=True, exist_ok=True)
    path, wanted = output / OPTIONS_FILE, _kept_options(options)
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != wanted:
            raise ValueError(
                f"{output} was started with other options ({found}, now {wanted}): resume with the same options or "
                "choose another --output_dir."
            )
    else:
        _write_json(path, wanted)


def _kept_options(options: PrepareArguments) -> dict[str, Any]:
    """The options that change what is written."""
    kept = ("short_side", "keyint", "bframes", "crf", "videos_per_shard")
    return {name: value for name, value in asdict(options).items() if name in kept}


def _run(tasks: list[ShardTask], num_workers: int) -> Iterator[dict[str, Any]]:
    """The tasks' records in task order, written in this process or by `num_workers` spawned processes (fork is
    unsafe once torch's thread pools have started)."""
    if num_workers == 0 or len(tasks) <= 1:
        yield from map(write_shard, tasks)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(num_workers, len(tasks)), mp_context=context) as pool:
        yield from pool.map(write_shard, tasks)


def _index(
    records: Mapping[Path, dict[str, Any]], class_names: Sequence[str], options: PrepareArguments, seconds: float
) -> dict[str, Any]:
    splits: dict[str, dict[str, Any]] = {}
    for path, record in records.items():
        entry = splits.setdefault(
            path.parent.name,
            {"shards": [], "videos": 0, "bytes": 0, "source_bytes": 0, "seconds_of_video": 0.0, "bad_videos": []},
        )
        entry["shards"].append({"path": f"{path.parent.name}/{path.name}", "videos": record["videos"]})
        entry["videos"] += record["videos"]
        entry["bytes"] += record["bytes"]
        entry["source_bytes"] += record["source_bytes"]
        entry["seconds_of_video"] += record["seconds"]
        entry["bad_videos"] += record["bad_videos"]
    for entry in splits.values():
        entry["bad_video_count"] = len(entry["bad_videos"])
    return {
        "format": PREPARED_FORMAT,
        "options": _kept_options(options),
        "class_names": list(class_names),
        "splits": splits,
        "seconds_to_prepare_this_run": seconds,
    }


def load_index(folder: str | os.PathLike) -> dict[str, Any]:
    """The index of a prepared folder, checked to be one this version reads."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a prepared folder: it has no {INDEX_FILE} (run prepare_videos.py).")
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != PREPARED_FORMAT:
        raise ValueError(f"{path}: prepared format {index.get('format')!r}, this version reads {PREPARED_FORMAT}.")
    return index


def main(argv: Sequence[str] | None = None) -> int:
    """The command line of `examples/prepare_videos.py`: the training script's data arguments, and how to prepare."""
    from transformers import HfArgumentParser

    from modeling_xvit.training.data import DataArguments

    parser = HfArgumentParser((DataArguments, PrepareArguments), description=__doc__.split("\n\n")[0])
    data_args, options = parser.parse_args_into_dataclasses(args=argv)
    try:
        index = prepare_source(data_args, options)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for split, entry in index["splits"].items():
        print(
            f"{split}: {entry['videos']} videos in {len(entry['shards'])} shards, {entry['bytes'] / 2**20:.1f} MiB "
            f"(source {entry['source_bytes'] / 2**20:.1f} MiB), {entry['bad_video_count']} unreadable"
        )
    print(f"Index: {Path(options.output_dir) / INDEX_FILE}")
    return 0


__all__ = [
    "PrepareArguments",
    "load_index",
    "prepare_source",
    "prepare_splits",
    "prepare_video",
    "rgb_frames",
    "write_shard",
]
