"""The training example's data sources, label checks and stream splitting."""

import os
from pathlib import Path

import datasets
import pytest

from modeling_xvit.training.data import (
    DataArguments,
    LabelEncoder,
    SplitColumns,
    StreamedVideoRows,
    VideoRows,
    check_rows,
    find_class_names,
    load_video_splits,
    undecoded,
    video_column,
    video_source,
)


@pytest.mark.parametrize(
    ("text", "expected_labels"),
    [
        ("a/1.mp4 3\nb/2.mp4 0\n", [3, 0]),  # the original Kinetics lists: `path label`, no header
        ("a/1.mp4,3\nb/2.mp4,0\n", [3, 0]),  # `path,label`, no header
        ("label,video\n3,a/1.mp4\n0,b/2.mp4\n", [3, 0]),  # a header naming the columns, in any order
        ("video,label\na/1.mp4,jump\nb/2.mp4,run\n", ["jump", "run"]),  # class names
        ("path,label\na/1.mp4,jump\nb/2.mp4,run\n", ["jump", "run"]),  # a `path` column
    ],
)
def test_list_files(tmp_path, text, expected_labels):
    (tmp_path / "train.csv").write_text(text)
    arguments = DataArguments(train_file=str(tmp_path / "train.csv"))
    split = load_video_splits(arguments, cache_dir=str(tmp_path / "cache"))["train"]
    assert split[video_column(split, "video")] == ["a/1.mp4", "b/2.mp4"] and split["label"] == expected_labels


def test_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one source"):
        load_video_splits(DataArguments(train_file="a.csv", data_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="holds none of the folders"):
        load_video_splits(DataArguments(data_dir=str(tmp_path)))


def test_class_names_from_the_data():
    labels = {
        "train": datasets.Dataset.from_dict({"label": [2, 0, 3]}),
        "test": datasets.Dataset.from_dict({"label": [1, 4]}),
    }
    assert find_class_names(labels, DataArguments()) == ["0", "1", "2", "3", "4"]
    names = {"train": datasets.Dataset.from_dict({"label": ["run", "jump"]})}
    assert find_class_names(names, DataArguments()) == ["jump", "run"]
    assert find_class_names(names, DataArguments(class_names="ssv2"))[0] == "Approaching something with your camera"
    stream = {"train": names["train"].to_iterable_dataset()}
    with pytest.raises(ValueError, match="needs --class_names"):
        find_class_names(stream, DataArguments())


def test_labels_are_checked_with_the_row():
    encoder = LabelEncoder(["jump", "run"])
    assert [encoder(label, "row") for label in (1, "jump", 0, "run")] == [1, 0, 0, 1]
    split = datasets.Dataset.from_dict({"video": ["a.mp4", "b.mp4", "c.mp4"], "label": [1, 0, 2]})
    columns = SplitColumns("validation", "video", "label", encoder, "/videos", {})
    with pytest.raises(
        ValueError, match=r"Split 'validation', row 2 \(video '/videos/c.mp4'\): label 2 is out of range"
    ):
        check_rows(split, columns)
    with pytest.raises(ValueError, match=r"row 7: label True is neither a class index nor a class name"):
        encoder(True, "row 7")


def test_class_label_indices_are_read_as_names_in_the_order_of_class_names(tmp_path):
    # A videofolder numbers its sorted folder names (down 0, left 1, up 2); --class_names gives another order.
    for index, name in enumerate(["left", "up", "down", "left"]):
        (tmp_path / "train" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / name / f"{index}.mp4").write_bytes(b"")
    split = load_video_splits(DataArguments(data_dir=str(tmp_path)), cache_dir=str(tmp_path / "cache"))["train"]
    split = undecoded(split, "video")
    assert split.features["label"].names == ["down", "left", "up"]
    encoder = LabelEncoder(["left", "right", "up", "down"]).for_split(split, "label")
    rows = VideoRows(split, SplitColumns("train", "video", "label", encoder, None, {}))
    labels = {Path(rows[index]["video"]).parent.name: rows[index]["label"] for index in range(len(rows))}
    assert labels == {"left": 0, "up": 2, "down": 3}
    check_rows(split, SplitColumns("train", "video", "label", encoder, None, {}))  # every folder is a known class
    unknown = LabelEncoder(["left", "up"]).for_split(split, "label")
    with pytest.raises(ValueError, match=r"row 0 \(video '.*down/2.mp4'\): unknown class name 'down'"):
        check_rows(split, SplitColumns("train", "video", "label", unknown, None, {}))
    # Names already in the split's order, and columns that are not ClassLabel, are read as they are.
    assert LabelEncoder(["down", "left", "up"]).for_split(split, "label").split_names is None
    plain = datasets.Dataset.from_dict({"label": [1]})
    assert LabelEncoder(["a", "b"]).for_split(plain, "label")(1, "row") == 1


def test_video_entries():
    assert video_source("a.mp4", "/root") == "/root/a.mp4" and video_source("/abs/a.mp4", None) == "/abs/a.mp4"
    assert video_source({"path": "x.mp4", "bytes": b"123"}) == b"123"
    assert video_source({"path": "x.mp4", "bytes": None}, "/root") == "/root/x.mp4"
    with pytest.raises(ValueError, match="must be a path or a dict"):
        video_source({"path": None, "bytes": None})


def stream(num_rows: int = 12, num_shards: int = 4) -> datasets.IterableDataset:
    def rows(shards):
        for shard in shards:
            for index in range(shard, num_rows, num_shards):
                yield {"video": f"v{index}.mp4", "label": index % 2}

    return datasets.IterableDataset.from_generator(rows, gen_kwargs={"shards": list(range(num_shards))})


def test_a_stream_is_split_between_processes_with_stable_sample_keys():
    columns = SplitColumns("train", "video", "label", LabelEncoder(["a", "b"]), None, {"do_augment": True})
    whole = {item["video"]: item["sample_key"] for item in StreamedVideoRows(stream(), columns)}
    shards = [StreamedVideoRows(stream(), columns, rank=rank, world_size=2) for rank in (0, 1)]
    assert shards[0].split_by_node and not StreamedVideoRows(stream(), columns).split_by_node
    parts = [list(shard) for shard in shards]
    videos = [[item["video"] for item in part] for part in parts]
    assert len(videos[0]) == len(videos[1]) == 6 and sorted(videos[0] + videos[1]) == sorted(whole)
    assert all(whole[item["video"]] == item["sample_key"] for part in parts for item in part)
    assert len(set(whole.values())) == 12


def test_prepared_rows_name_their_videos():
    split = datasets.Dataset.from_dict({"clip": ["a.mp4", "b.mp4"], "label": ["b", "a"], "extra": [1, 2]})
    rows = VideoRows(split, SplitColumns("test", "clip", "label", LabelEncoder(["a", "b"]), "/v", {"x": 1}))
    assert rows[1] == {"video": "/v/b.mp4", "label": 0, "sample_key": 1, "processing": {"x": 1}}
    assert len(rows) == 2 and rows.video(0) == "/v/a.mp4"


def test_class_indices_with_gaps_need_the_class_list():
    splits = {"train": datasets.Dataset.from_dict({"label": [0, 1, 2, 20, 1]})}
    with pytest.raises(
        ValueError, match=r"class indices 0 to 20, but 17 of them label no video \(3, 4, .*--class_names"
    ):
        find_class_names(splits, DataArguments())


@pytest.mark.parametrize(("typo", "name"), [("lefft", "left"), ("rigth", "right"), ("lef", "left"), ("Left", "left")])
def test_a_class_name_one_edit_from_another_needs_the_class_list(tmp_path, typo, name):
    labels = ["left", "right", "still"] * 3 + [typo]
    splits = {"train": datasets.Dataset.from_dict({"label": labels})}
    low, high = sorted([typo, name], key=lambda label: (len(label), label))
    pattern = rf"{low!r} \(rows: \d\) and {high!r} \(rows: \d\) differ by one letter.*--class_names"
    with pytest.raises(ValueError, match=pattern):
        find_class_names(splits, DataArguments())
    (tmp_path / "classes.txt").write_text(f"left\nright\nstill\n{typo}\n")  # both are classes: say so
    assert find_class_names(splits, DataArguments(class_names=str(tmp_path / "classes.txt")))[-1] == typo
    distinct = {"train": datasets.Dataset.from_dict({"label": ["10", "11", "walk", "talking"]})}
    assert find_class_names(distinct, DataArguments()) == ["10", "11", "talking", "walk"]


def test_the_classes_and_their_videos_are_logged(caplog):
    split = datasets.Dataset.from_dict({"video": ["a.mp4", "b.mp4", "c.mp4"], "label": ["run", "jump", "run"]})
    columns = SplitColumns("train", "video", "label", LabelEncoder(["jump", "run", "walk"]), None, {})
    with caplog.at_level("INFO", logger="modeling_xvit.training.data"):
        check_rows(split, columns)
    assert "Split 'train': 3 videos of 3 classes: jump 1, run 2, walk 0" in caplog.text


@pytest.mark.parametrize("path", ["../../etc/passwd", "a/../../outside.mp4", "/etc/passwd"])
def test_list_paths_leading_out_of_the_video_root_are_refused(tmp_path, path):
    root = tmp_path / "videos"
    split = datasets.Dataset.from_dict({"video": ["a/1.mp4", path], "label": [0, 0]})
    columns = SplitColumns("train", "video", "label", LabelEncoder(["a"]), str(root), {})
    with pytest.raises(ValueError, match=rf"Split 'train', row 1: the video path '{path}' leads to .*outside"):
        check_rows(split, columns)
    streamed = StreamedVideoRows(split.to_iterable_dataset(), columns)
    with pytest.raises(ValueError, match=r"Split 'train': the video path .* outside --video_root"):
        list(streamed)
    allowed = SplitColumns(
        "train", "video", "label", LabelEncoder(["a"]), str(root), {}, allow_paths_outside_root=True
    )
    check_rows(split, allowed)
    assert VideoRows(split, allowed).video(1) == os.path.join(root, path)
    assert VideoRows(split, columns).video(0) == str(root / "a" / "1.mp4")  # inside: as before


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_max_bad_video_fraction_outside_0_to_1_is_refused(fraction):
    with pytest.raises(ValueError, match=r"--max_bad_video_fraction must be between 0 and 1"):
        DataArguments(max_bad_video_fraction=fraction)


def test_a_header_less_list_with_spaces_in_its_paths(tmp_path):
    (tmp_path / "train.txt").write_text("my videos/first clip.mp4 3\nb/2.mp4 0\nc d/e  f.mp4\t1\n")
    split = load_video_splits(DataArguments(train_file=str(tmp_path / "train.txt")), cache_dir=str(tmp_path / "c"))
    rows = split["train"]
    assert rows["video"] == ["my videos/first clip.mp4", "b/2.mp4", "c d/e  f.mp4"] and rows["label"] == [3, 0, 1]
