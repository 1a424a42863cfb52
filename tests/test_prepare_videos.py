"""Prepared shards: what `prepare_videos.py` writes (every frame kept, index, bad videos, resumption, parallel), and
what the shard reader gives back (the same frame indices as the source for the same seed, pixels a few levels off)."""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import av
import pytest
import torch
from av.video.frame import PictureType
from training_videos import write_clip, write_video_folder

from modeling_xvit import XViTVideoProcessor
from modeling_xvit.training.augment import DeviceAugmentationCollator
from modeling_xvit.training.collator import seeded
from modeling_xvit.training.data import DataArguments
from modeling_xvit.training.prepare import PrepareArguments, load_index, prepare_source, prepare_video
from modeling_xvit.training.shards import (
    load_prepared_splits,
    planes_to_crops,
    prepared_sizes,
    training_clip,
)

REPOSITORY = Path(__file__).resolve().parents[1]
SPLITS = {"train": 2, "validation": 1}  # videos per class: 6 training videos, 3 validation videos


def stream_facts(data: bytes) -> tuple[int, float, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        return frames, float(stream.average_rate), stream.height, stream.width


@pytest.fixture
def video_folder(tmp_path) -> Path:
    root = write_video_folder(tmp_path / "videos", SPLITS)
    (root / "train" / "left" / "broken.mp4").write_bytes(b"not a video")
    return root


def prepare(root: Path, output: Path, **options) -> dict:
    data_args = DataArguments(data_dir=str(root), max_bad_video_fraction=options.pop("max_bad_video_fraction", 0.5))
    defaults = dict(
        output_dir=str(output), short_side=24, videos_per_shard=3, num_workers=0, cache_dir=str(output) + "-c"
    )
    return prepare_source(data_args, PrepareArguments(**{**defaults, **options}), progress=False)


def test_prepared_video_keeps_every_frame_the_frame_rate_and_the_source_size(real_videos):
    data, metadata = prepare_video(real_videos["bigbuckbunny"], PrepareArguments(output_dir="unused", short_side=160))
    with av.open(real_videos["bigbuckbunny"]) as source:
        stream = source.streams.video[0]
        source_frames = sum(1 for packet in source.demux(stream) if packet.size)
        source_fps = float(stream.average_rate)
    assert stream_facts(data) == (source_frames, source_fps, 160, 284)
    assert metadata == {
        "num_frames": source_frames,
        "fps": source_fps,
        "height": 720,
        "width": 1280,
        "prepared_height": 160,
        "prepared_width": 284,
    }
    assert prepared_sizes(data) == {"height": 720, "width": 1280, "prepared_height": 160, "prepared_width": 284}
    assert prepared_sizes(real_videos["bigbuckbunny"]) is None


def test_a_damaged_or_lying_prepared_tag_is_an_error_naming_the_video(tmp_path):
    """A tag's sizes drive the crops' arithmetic: malformed, contradicted by the frames, or too large, the video is
    refused with a ValueError (a bad video to the training script), never a crash or an allocation of its choosing."""
    source = write_clip(tmp_path / "clip.mp4", 0, 0, width=48, height=40)
    data, _ = prepare_video(str(source), PrepareArguments(output_dir="unused", short_side=34))
    assert prepared_sizes(data) == {"height": 40, "width": 48, "prepared_height": 34, "prepared_width": 40}
    processor = XViTVideoProcessor(num_frames=4, crop_size={"height": 24, "width": 24}, scale_jitter=[26, 34])
    damaged = data.replace(b'"width": 48', b'"width": -8')
    with pytest.raises(ValueError, match=r"^Video <\d+ bytes> has a damaged prepared-video tag: expected positive"):
        prepared_sizes(damaged)
    lying = data.replace(b'"prepared_height": 34', b'"prepared_height": 36')
    for planes in (False, True):
        with pytest.raises(ValueError, match=r"its frames are 34x40, but its prepared-video tag says 36x40"):
            training_clip(processor, lying, planes=planes, do_augment=True)
    too_large = data.replace(b'"width": 48', b'"width": 4800000000')
    with pytest.raises(ValueError, match=r"its prepared-video tag\) would need .* GiB of pixels"):
        training_clip(processor, too_large, do_augment=True)
    collator = DeviceAugmentationCollator(processor, convert_on_device=True)
    batch = collator([{"video": video, "label": 0, "sample_key": key, "processing": {"do_augment": True}}
                      for key, video in enumerate([damaged, lying, data])])  # fmt: skip
    assert len(batch["bad_videos"]) == 2 and len(batch["augmentation"]["planes"]["luma"]) == 1


def picture_types(data: bytes, skip_frame: str = "DEFAULT") -> list[str]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = skip_frame
        return [PictureType(frame.pict_type).name for frame in container.decode(stream)]


def test_prepared_video_lets_a_clip_skip_the_b_frames_it_does_not_sample(real_videos):
    """Between two reference frames lie `bframes` B-frames that no frame refers to: a decoder told to skip
    non-reference frames still decodes every I- and P-frame, so a clip pays for the references and its own frames."""
    options = PrepareArguments(output_dir="unused", short_side=160)
    data, metadata = prepare_video(real_videos["bigbuckbunny"], options)
    every_frame = picture_types(data)
    references = picture_types(data, skip_frame="NONREF")
    assert len(every_frame) == metadata["num_frames"] == 132
    assert every_frame.count("I") == -(-132 // options.keyint)  # a key frame every keyint frames
    assert references == [kind for kind in every_frame if kind in ("I", "P")]
    # In each key-frame group: the key frame, a P-frame after every `bframes` B-frames, and one closing the group.
    references_per_group = -(-options.keyint // (options.bframes + 1)) + 1
    assert len(references) <= every_frame.count("I") * references_per_group < 132 / 5


def test_odd_prepared_sides_get_a_pixel_more_for_the_encoder(tmp_path):
    video = write_clip(tmp_path / "clip.mp4", 0, 0, num_frames=5, width=40, height=32)
    data, metadata = prepare_video(str(video), PrepareArguments(output_dir="unused", short_side=25))
    assert (metadata["prepared_height"], metadata["prepared_width"]) == (26, 32)  # 25 x 31 made even
    assert (metadata["height"], metadata["width"]) == (32, 40)  # what the reader resizes from
    assert stream_facts(data) == (5, 25.0, 26, 32)


def test_prepare_writes_shards_index_classes_and_lists_bad_videos(video_folder, tmp_path):
    output = tmp_path / "prepared"
    index = prepare(video_folder, output)
    assert index == load_index(output)
    assert (output / "classes.txt").read_text().split() == ["left", "right", "still"]
    train = index["splits"]["train"]
    assert train["videos"] == 6 and train["bad_video_count"] == 1
    assert "broken.mp4" in train["bad_videos"][0]
    assert [shard["path"] for shard in train["shards"]] == [
        "train/train-00000.tar",
        "train/train-00001.tar",
        "train/train-00002.tar",
    ]
    assert sum(shard["videos"] for shard in train["shards"]) == 6
    assert index["splits"]["validation"]["videos"] == 3
    assert train["bytes"] == sum(os.path.getsize(output / shard["path"]) for shard in train["shards"])
    assert train["seconds_of_video"] == pytest.approx(6 * 8 / 25)
    with tarfile.open(output / "train" / "train-00000.tar") as archive:
        names = archive.getnames()
        record = json.load(archive.extractfile(names[2]))
        label = int(archive.extractfile(names[1]).read())
    assert names[:3] == ["000000000.mp4", "000000000.cls", "000000000.json"]
    assert record["num_frames"] == 8 and record["fps"] == 25.0 and record["label"] == label
    assert Path(record["source"]).parent.name == ["left", "right", "still"][label]


def test_too_many_bad_videos_stop_with_the_list_written(video_folder, tmp_path):
    output = tmp_path / "prepared"
    with pytest.raises(ValueError, match=r"1 of the 7 videos of the train split are unreadable.*broken\.mp4"):
        prepare(video_folder, output, max_bad_video_fraction=0.1)
    assert load_index(output)["splits"]["train"]["bad_video_count"] == 1


def test_a_killed_run_started_again_keeps_finished_shards_and_redoes_the_rest(video_folder, tmp_path):
    output = tmp_path / "prepared"
    first = prepare(video_folder, output)
    kept, redone = output / "train" / "train-00000.tar", output / "train" / "train-00001.tar"
    os.utime(kept, (0, 0))
    redone.rename(redone.with_name(redone.name + ".partial"))  # killed while writing this shard
    second = prepare(video_folder, output)
    assert os.stat(kept).st_mtime == 0  # not rewritten
    assert redone.is_file() and not redone.with_name(redone.name + ".partial").exists()
    assert {key: value for key, value in second.items() if key != "seconds_to_prepare_this_run"} == {
        key: value for key, value in first.items() if key != "seconds_to_prepare_this_run"
    }


def test_a_folder_is_resumed_only_with_its_options(video_folder, tmp_path):
    output = tmp_path / "prepared"
    prepare(video_folder, output)
    with pytest.raises(ValueError, match="was started with other options"):
        prepare(video_folder, output, short_side=28)


@pytest.mark.slow
def test_command_line_prepares_in_parallel_processes(video_folder, tmp_path):
    output = tmp_path / "prepared"
    command = [sys.executable, "examples/prepare_videos.py", "--data_dir", str(video_folder), "--output_dir"]
    command += [str(output), "--short_side", "24", "--videos_per_shard", "2", "--num_workers", "2"]
    command += ["--max_bad_video_fraction", "0.5", "--cache_dir", str(tmp_path / "cache")]
    completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "train: 6 videos in 4 shards" in completed.stdout and "1 unreadable" in completed.stdout
    assert len(list((output / "train").glob("*.tar"))) == 4
    assert not list(output.rglob("*.partial"))


@pytest.mark.parametrize("streaming", [False, True])
def test_prepared_splits_read_back_with_labels_and_metadata(video_folder, tmp_path, streaming):
    output = tmp_path / "prepared"
    prepare(video_folder, output)
    cache = str(tmp_path / "cache")
    splits, class_names = load_prepared_splits(output, streaming=streaming, cache_dir=cache, label_column="label")
    assert class_names == ["left", "right", "still"] and set(splits) == {"train", "validation"}
    assert splits["train"].features["label"].names == class_names
    rows = list(splits["train"])
    assert len(rows) == 6
    for row in rows:
        assert row["label"] == row["json"]["label"]
        assert class_names[row["label"]] == Path(row["json"]["source"]).parent.name
        assert stream_facts(row["mp4"]["bytes"])[:2] == (8, 25.0)


@pytest.mark.slow
@pytest.mark.parametrize(("sampling", "views"), [("segment", 1), ("dense", 2)])
@pytest.mark.parametrize("name", ["bikes", "bigbuckbunny"])
def test_prepared_clip_samples_the_source_frames_and_pixels(real_videos, monkeypatch, sampling, views, name):
    """Same seed, same arguments: the same scale, frame indices and crop as the source; pixels within a few levels
    (the re-encoding and the second resize, at the default sizes: 320 short side, scale jitter 256 to 320, 224 crops;
    measured mean 2.4-2.6 (bikes, 640 x 272) and 4.2-4.3 levels (bigbuckbunny, 1280 x 720: the aliasing of two resizes
    without antialiasing differs from one's), 99th percentile 11-12 and 20-21 levels). Two views: each view's crop
    is cut from the box that holds both."""
    processor = XViTVideoProcessor(num_frames=8)
    indices = []
    sample_frames = processor.sample_frames
    monkeypatch.setattr(
        processor, "sample_frames", lambda *a, **k: indices.append(sample_frames(*a, **k)) or indices[-1]
    )
    source = real_videos[name]
    prepared, _ = prepare_video(source, PrepareArguments(output_dir="unused"))
    differences, from_device = [], []
    for seed in range(3):
        options = dict(do_augment=True, sampling=sampling, sampling_rate=2, num_temporal_views=views)
        with seeded(seed):
            from_source = training_clip(processor, source, **options)
        with seeded(seed):
            from_prepared = training_clip(processor, prepared, **options)
        with seeded(seed):
            planes = planes_to_crops(**training_clip(processor, prepared, planes=True, **options))
        assert indices[-1] == indices[-2] == indices[-3]
        from_device.append((planes.int() - from_prepared.int()).abs().flatten().float())
        assert from_source.shape == from_prepared.shape == (views, 8, 3, 224, 224)
        assert from_source.dtype == from_prepared.dtype == torch.uint8
        differences.append((from_source.int() - from_prepared.int()).abs().flatten().float())
    difference = torch.cat(differences)
    assert difference.mean() < 5
    assert difference.quantile(0.99) <= 24
    # The same clip's YUV planes converted, resized and cropped on the device: within a level of the workers' crops
    # (measured mean 0.36-0.39, 99th percentile 1; up to 15 levels on under 0.03% of values, where the workers' 8-bit
    # RGB clips saturated colours before the resize).
    on_device = torch.cat(from_device)
    assert on_device.mean() < 0.6
    assert on_device.quantile(0.99) <= 1
    assert (on_device > 2).float().mean() < 1e-3
