"""The motion data set: layout and decodable clips, the motions it promises, and its construction claim (single
frames do not tell the classes apart, the order of the frames does)."""

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import run_help

from modeling_xvit.demo.motion_data import (
    CLASSES,
    LABELS_FILE,
    LUMINANCE,
    OPPOSITE,
    MotionSettings,
    draw_clip,
    generate_clips,
    write_dataset,
)

REPOSITORY = Path(__file__).resolve().parents[1]
SETTINGS = MotionSettings()


def decode(path: Path) -> tuple[np.ndarray, list[bool]]:
    """Frames `(T, H, W, 3)` of a video and whether each is a key frame."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return np.stack([frame.to_ndarray(format="rgb24") for frame in frames]), [frame.key_frame for frame in frames]


@pytest.mark.slow
def test_help_runs_as_a_module():
    (usage,) = run_help([["-m", "modeling_xvit.demo.motion_data"]])
    assert "--output-dir" in usage and "--num-per-class" in usage


@pytest.mark.slow
def test_cli_writes_a_videofolder_of_decodable_key_frame_clips(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "modeling_xvit.demo.motion_data", "--output-dir", str(tmp_path / "data")]
        + ["--num-per-class", "2", "--num-validation-per-class", "1", "--num-test-per-class", "1", "--seed", "3"],
        cwd=REPOSITORY,
        capture_output=True,
        check=True,
    )
    root = tmp_path / "data"
    assert (root / LABELS_FILE).read_text().split() == list(CLASSES)
    assert sorted(path.name for path in root.iterdir()) == sorted([LABELS_FILE, "train", "validation", "test"])
    for split, count in (("train", 2), ("validation", 1), ("test", 1)):
        assert sorted(path.name for path in (root / split).iterdir()) == sorted(CLASSES)
        for label in CLASSES:
            paths = sorted((root / split / label).glob("*.mp4"))
            assert [path.name for path in paths] == [f"{label}_{index:05d}.mp4" for index in range(count)]
            frames, key_frames = decode(paths[-1])
            assert frames.shape == (SETTINGS.num_frames, SETTINGS.size, SETTINGS.size, 3)
            assert all(key_frames)  # no frame is coded from another, so codec artifacts cannot carry the motion
            # The file holds the clip that the function API draws for this seed, split, class and index: brightness
            # within a few levels (H.264 at crf 18, and 4:2:0 chroma subsampling blurs colours), where another clip
            # of the same class would be about 50 levels off.
            *_, expected = generate_clips(label, count, seed=3, split=split)
            assert np.abs(luminance(frames) - luminance(expected.frames())).mean() < 8 / 255


def test_clips_go_through_the_video_processor(tmp_path):
    from modeling_xvit import XViTVideoProcessor

    root = write_dataset(tmp_path / "data", {"test": 1}, classes=["left"])
    processor = XViTVideoProcessor(num_frames=8, size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    pixel_values = processor(str(root / "test" / "left" / "left_00000.mp4"), return_tensors="pt").pixel_values
    assert tuple(pixel_values.shape) == (1, 8, 3, 64, 64)


def test_clips_are_reproducible_and_independent():
    def frames(label, index, seed=0, split="train"):
        *_, clip = generate_clips(label, index + 1, seed, split)
        return clip.frames()

    np.testing.assert_array_equal(frames("left", 2), frames("left", 2))
    assert not np.array_equal(frames("left", 2), frames("left", 2, seed=1))
    assert not np.array_equal(frames("left", 2), frames("left", 2, split="test"))
    assert not np.array_equal(frames("left", 2), frames("left", 1))


@pytest.mark.slow
def test_worker_processes_write_the_same_files(tmp_path):
    one, two = (write_dataset(tmp_path / str(n), {"test": 2}, seed=5, num_workers=n) for n in (1, 2))
    files = sorted(path.relative_to(one) for path in one.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(two) for path in two.rglob("*") if path.is_file())
    assert len(files) == 2 * len(CLASSES) + 1
    assert all((one / file).read_bytes() == (two / file).read_bytes() for file in files)


def test_write_dataset_refuses_a_non_empty_directory_and_leaves_it_untouched(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        write_dataset(tmp_path, {"train": 1})
    assert [path.name for path in tmp_path.iterdir()] == ["mine.txt"]


def test_an_interrupted_write_leaves_no_data_set_and_the_next_one_completes(tmp_path, monkeypatch):
    import modeling_xvit.demo.motion_data as motion_dataset

    written = []

    def fail_on_the_third_clip(job):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(job)
        write_clip(job)

    write_clip = motion_dataset._write_clip
    monkeypatch.setattr(motion_dataset, "_write_clip", fail_on_the_third_clip)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "data", {"train": 2}, classes=["up", "down"])
    assert not (tmp_path / "data").exists()
    monkeypatch.undo()
    root = write_dataset(tmp_path / "data", {"train": 2}, classes=["up", "down"])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]
    assert len(list(root.rglob("*.mp4"))) == 4


@pytest.mark.parametrize("bad", [{"classes": ["sideways"]}, {"clips_per_class": {"holdout": 1}}])
def test_unknown_classes_and_splits_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="holdout|sideways"):
        write_dataset(tmp_path / "data", **{"clips_per_class": {"train": 1}, **bad})
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("label", CLASSES)
def test_a_clip_played_backwards_is_a_clip_of_the_opposite_class(label):
    clip = draw_clip(label, np.random.default_rng(0))
    backwards = clip.reversed()
    assert backwards.label == OPPOSITE[label]
    # Rounding to uint8 may differ by one level where a value sits on .5.
    assert np.abs(backwards.frames().astype(int) - clip.frames()[::-1]).max() <= 1


# Features of frames and of their order, and a linear classifier, for the construction claim.


def luminance(frames: np.ndarray) -> np.ndarray:
    return frames.astype(float) @ LUMINANCE / 255


def frame_features(frame: np.ndarray) -> np.ndarray:
    """What a single frame shows: colour statistics, gradient energy, spectral energy by band and orientation,
    brightness on a 4 x 4 grid."""
    pixels = frame.reshape(-1, 3).astype(float) / 255
    grey = luminance(frame)
    grad_y, grad_x = np.gradient(grey)
    spectrum = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    frequencies = np.fft.fftfreq(grey.shape[0])
    fy, fx = np.meshgrid(frequencies, frequencies, indexing="ij")
    radius, angle = np.hypot(fx, fy), np.mod(np.arctan2(fy, fx), np.pi)
    bands = [
        spectrum[(radius >= low) & (radius < high) & (angle >= a) & (angle < a + np.pi / 4)].sum()
        for low, high in ((1 / 64, 1 / 16), (1 / 16, 1 / 8), (1 / 8, 1 / 2))
        for a in np.arange(4) * np.pi / 4
    ]
    grid = grey.reshape(4, grey.shape[0] // 4, 4, -1).mean(axis=(1, 3)).ravel()
    gradients = [np.mean(grad_x**2), np.mean(grad_y**2), np.mean(grad_x * grad_y)]
    return np.concatenate([pixels.mean(0), pixels.std(0), gradients, np.log(bands), grid])


def motion_features(frames: np.ndarray) -> np.ndarray:
    """The order of the frames: the affine optical flow (Lucas-Kanade over the whole frame and the three colour
    channels: two colours may have the same brightness) between consecutive frames, as drift x, drift y, curl
    (clockwise on the screen > 0) and divergence (expanding > 0), averaged over the pairs of frames."""
    channels = frames.transpose(0, 3, 1, 2) / 255  # (T, 3, H, W)
    size = frames.shape[1]
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    grad_y, grad_x = np.gradient((channels[:-1] + channels[1:]) / 2, axis=(2, 3))
    # grad_x u + grad_y v = -(after - before), with u = a + b x + c y and v = d + e x + f y: least squares over the
    # pixels, through the normal equations (one 6 x 6 system per pair of frames).
    design = np.stack([grad_x, grad_x * x, grad_x * y, grad_y, grad_y * x, grad_y * y], axis=-1)
    design = design.reshape(len(frames) - 1, -1, 6)
    change = (channels[1:] - channels[:-1]).reshape(len(frames) - 1, -1)
    transposed = design.transpose(0, 2, 1)
    a, b, c, d, e, f = np.linalg.solve(transposed @ design, -transposed @ change[..., None])[..., 0].T
    return np.array([a, d, e - c, b + f]).mean(axis=1)


def held_out_accuracy(train: np.ndarray, train_labels, test: np.ndarray, test_labels) -> float:
    """Accuracy of a ridge-regression classifier (one-hot targets, standardised features) on held-out examples."""
    mean, std = train.mean(0), train.std(0) + 1e-12
    design = np.hstack([(train - mean) / std, np.ones((len(train), 1))])
    targets = np.eye(len(CLASSES))[train_labels]
    weights = np.linalg.solve(design.T @ design + 1e-3 * len(train) * np.eye(design.shape[1]), design.T @ targets)
    scores = np.hstack([(test - mean) / std, np.ones((len(test), 1))]) @ weights
    return float(np.mean(scores.argmax(1) == test_labels))


@pytest.fixture(scope="module")
def clips() -> dict[str, list[np.ndarray]]:
    """Frames of 12 clips per class for fitting and 12 for testing, with the default distractors."""
    return {
        split: [[clip.frames() for clip in generate_clips(label, 12, seed=0, split=split)] for label in CLASSES]
        for split in ("train", "test")
    }


def features_and_labels(clips, split, features):
    """Features of every clip of `split` (`features(frames)` is one row, or one row per frame) and their labels."""
    rows = [(features(frames), label) for label, videos in enumerate(clips[split]) for frames in videos]
    return np.vstack([row for row, _ in rows]), np.concatenate(
        [[label] * len(np.atleast_2d(row)) for row, label in rows]
    )


def each_frame(frames: np.ndarray) -> np.ndarray:
    return np.stack([frame_features(frame) for frame in frames])


@pytest.mark.slow
def test_a_classifier_of_single_frames_is_at_chance(clips):
    accuracy = held_out_accuracy(
        *features_and_labels(clips, "train", each_frame), *features_and_labels(clips, "test", each_frame)
    )
    assert accuracy < 1 / len(CLASSES) + 0.1, f"{accuracy:.2f} from single-frame features"


def class_separation(features: np.ndarray, labels: np.ndarray) -> float:
    """The largest, over the features, of the variance of the class means over the mean variance within a class."""
    means = np.stack([features[labels == label].mean(0) for label in range(len(CLASSES))])
    within = np.stack([features[labels == label].var(0) for label in range(len(CLASSES))]).mean(0)
    return float((means.var(0) / within).max())


@pytest.mark.slow
def test_no_frame_statistic_differs_between_classes(clips):
    """A permutation test on the class means of each frame statistic (averaged over a clip's frames, as a bag of
    frames sees it). It catches a leak that the 8-way classifier can miss: a slight blur (Gaussian, sigma 0.5 pixel)
    of the rotating and zooming clips only, as resampling a rotated image would add, gives p = 0.005 here."""
    features = np.concatenate(
        [features_and_labels(clips, split, lambda f: each_frame(f).mean(0))[0] for split in clips]
    )
    labels = np.concatenate([features_and_labels(clips, split, lambda f: 0.0)[1] for split in clips])
    observed = class_separation(features, labels)
    rng = np.random.default_rng(0)
    shuffled = [class_separation(features, rng.permutation(labels)) for _ in range(200)]
    p_value = (1 + sum(value >= observed for value in shuffled)) / (1 + len(shuffled))
    assert p_value > 0.02, f"class means of a frame statistic differ (p = {p_value:.3f})"


@pytest.mark.slow
def test_the_order_of_the_frames_tells_the_classes_apart_and_reversing_gives_the_opposite(clips):
    train = features_and_labels(clips, "train", motion_features)
    forwards = features_and_labels(clips, "test", motion_features)
    assert held_out_accuracy(*train, *forwards) > 0.9
    backwards = features_and_labels(clips, "test", lambda frames: motion_features(frames[::-1]))
    opposite = np.array([CLASSES.index(OPPOSITE[CLASSES[label]]) for label in backwards[1]])
    assert held_out_accuracy(*train, backwards[0], opposite) > 0.9


@pytest.mark.parametrize(
    ("label", "feature", "sign"),
    [("right", 0, 1), ("left", 0, -1), ("down", 1, 1), ("up", 1, -1), ("clockwise", 2, 1)]
    + [("counterclockwise", 2, -1), ("expanding", 3, 1), ("contracting", 3, -1)],
)
def test_each_class_moves_as_named_on_the_screen(label, feature, sign):
    settings = SETTINGS.without_distractors()
    flows = np.array([motion_features(clip.frames()) for clip in generate_clips(label, 8, seed=0, settings=settings)])
    assert np.all(np.sign(flows[:, feature]) == sign), flows[:, feature]
