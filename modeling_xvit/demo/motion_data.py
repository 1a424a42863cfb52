"""
A temporal-reasoning data set: short mp4 videos whose class is the direction of a motion that covers the frame.

Every clip shows a random texture (a sum of plane waves) that moves as a whole: it drifts left, right, up or down,
turns clockwise or counter-clockwise, or expands or contracts about a random centre, at a random speed, under
distractors that do not carry the class (a static texture seen through it, static occluders, small squares moving in
random directions, brightness flicker, pixel noise). The class depends only on the order of the frames:

- **Any single frame has the same distribution in every class.** A frame is a sum of waves whose orientations and
  phases are independent and uniform, and whose log-wavelengths are evenly spaced ladders at uniform offsets.
  Drifting shifts the phases, turning turns the orientations, and zooming slides the log-wavelengths, which wrap
  around the band where their amplitude is zero (an endless zoom, as in a Shepard tone): each keeps those
  distributions. Every frame is coded as a key frame, so the codec never codes one frame from another and its
  artifacts cannot leak the motion either. A bag of frames is at chance.
- **Reversing a clip gives a clip of the opposite class** (`Clip.reversed`), as likely as the original.

What a small model learns from scratch (8 frames of 64 x 64, a 4-layer XViT of width 64, AdamW 5e-4, batch 16,
measured on a CPU): the four drift directions, with the default distractors, in a few hundred steps; the four
rotation and zoom classes stayed at chance for 1,500 steps, and all eight classes reached 60% after 2,500 steps.
This writes `motion-data/{train,validation,test}/<class>/<class>_NNNNN.mp4` and `motion-data/labels.txt`:

    xvit-motion-data --output-dir motion-data --classes left right up down
    python -m modeling_xvit.demo.motion_data --output-dir motion-data --classes left right up down   # the same
"""

import argparse
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from modeling_xvit.demo.video_writer import write_video

# Class name -> the class of the same clip played backwards. Directions are as seen on the screen.
OPPOSITE = {
    "left": "right",
    "right": "left",
    "up": "down",
    "down": "up",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
    "expanding": "contracting",
    "contracting": "expanding",
}
CLASSES = tuple(OPPOSITE)
# Drift direction of each drifting class, degrees in image coordinates (x to the right, y downwards).
DRIFT_ANGLES = {"right": 0.0, "down": 90.0, "left": 180.0, "up": 270.0}
SPLITS = ("train", "validation", "test")
LUMINANCE = np.array([0.299, 0.587, 0.114])  # RGB weights of the luminance (ITU-R BT.601)
LABELS_FILE = "labels.txt"


@dataclass(frozen=True)
class MotionSettings:
    """
    How clips are drawn. Speeds are per frame of the video; the defaults suit 8 frames of 64 x 64 pixels.

    Args:
        num_frames: frames per clip.
        size: height and width of the frames, in pixels.
        fps: frame rate written into the mp4.
        wavelengths: shortest and longest wavelength of the texture's waves, in pixels.
        num_wave_ladders: ladders of waves in a texture; each spans the wavelength band evenly in log-wavelength.
        waves_per_ladder: waves in each ladder (at least 3, so that the texture's contrast is constant).
        drift_speed: range of the drift speed, pixels per frame.
        drift_jitter: the drift direction is drawn within this many degrees of left, right, up or down.
        rotation_speed: range of the rotation speed, radians per frame.
        zoom_speed: range of the zoom speed, natural log of the scale per frame.
        centre_spread: the rotation and zoom centre is drawn within this fraction of `size` of the middle, in x and y.
        contrast: range of the gain of the colour map (larger: harder-edged texture).
        min_luminance_contrast: the texture's two colours differ at least this much in luminance (in [0, 1]): motion
            seen in brightness is learnt much sooner than motion between colours of similar brightness.
        static_layer_probability: chance that a static texture is seen through the moving one.
        static_layer_opacity: range of the static texture's opacity.
        max_occluders: up to this many static squares of random colour.
        occluder_size: range of the occluders' sides, in pixels.
        max_sprites: up to this many small squares moving in random directions, whatever the class.
        sprite_size: range of the sprites' sides, in pixels.
        sprite_speed: range of the sprites' speed, pixels per frame.
        flicker: each frame's brightness is multiplied by a factor drawn in [1 - flicker, 1 + flicker].
        max_noise: per-pixel Gaussian noise with a standard deviation drawn in [0, max_noise] (colours in [0, 1]).
    """

    num_frames: int = 8
    size: int = 64
    fps: int = 8
    wavelengths: tuple[float, float] = (4.0, 24.0)
    num_wave_ladders: int = 3
    waves_per_ladder: int = 4
    drift_speed: tuple[float, float] = (1.0, 2.0)
    drift_jitter: float = 15.0
    rotation_speed: tuple[float, float] = (0.03, 0.07)
    zoom_speed: tuple[float, float] = (0.03, 0.07)
    centre_spread: float = 0.2
    contrast: tuple[float, float] = (1.5, 4.0)
    min_luminance_contrast: float = 0.4
    static_layer_probability: float = 0.5
    static_layer_opacity: tuple[float, float] = (0.1, 0.4)
    max_occluders: int = 2
    occluder_size: tuple[float, float] = (6.0, 16.0)
    max_sprites: int = 3
    sprite_size: tuple[float, float] = (3.0, 8.0)
    sprite_speed: tuple[float, float] = (0.5, 2.5)
    flicker: float = 0.1
    max_noise: float = 0.03

    def __post_init__(self):
        if self.waves_per_ladder < 3:
            raise ValueError(
                f"`waves_per_ladder` must be at least 3 (the contrast of a zooming texture is constant only then), "
                f"got {self.waves_per_ladder}."
            )
        if not 0 <= self.min_luminance_contrast <= 0.9:
            raise ValueError(f"`min_luminance_contrast` must be in [0, 0.9], got {self.min_luminance_contrast}.")
        if self.num_frames < 2 or self.size < 8:
            raise ValueError(f"Clips need at least 2 frames of 8 x 8 pixels, got {self.num_frames} of {self.size}.")

    def without_distractors(self) -> "MotionSettings":
        """The same motions without static layer, occluders, sprites, flicker or noise."""
        return replace(self, static_layer_probability=0.0, max_occluders=0, max_sprites=0, flicker=0.0, max_noise=0.0)


@dataclass(frozen=True)
class WaveTexture:
    """
    A texture of plane waves `cos(2 pi k . (x - centre) + phase)`, `|k| = 1 / wavelength`, through a two-colour map.
    Per-wave arrays are `(waves,)`.

    It moves with a similarity transform about `centre`: at frame `t` it has drifted by `velocity * t` pixels, turned
    by `rotation * t` radians (clockwise on the screen when positive: y points down) and been magnified by
    `exp(zoom * t)`.
    """

    log_wavelengths: np.ndarray  # each wave's place in the wavelength band, in [0, 1): 0 is the shortest
    orientations: np.ndarray  # direction of each wave vector, radians
    phases: np.ndarray
    wavelengths: tuple[float, float]  # the band, pixels
    centre: np.ndarray  # (2,): x, y in pixels
    colours: np.ndarray  # (2, 3): RGB in [0, 1] of the troughs and of the crests
    contrast: float
    velocity: np.ndarray  # (2,): pixels per frame
    rotation: float = 0.0
    zoom: float = 0.0

    def render(self, times: np.ndarray, size: int) -> np.ndarray:
        """The frames at `times` (`(T,)` frame indices) as a float `(T, size, size, 3)` array in [0, 1]."""
        texture = self.at(times[:, None])  # per-wave arrays become (T, waves), the centre (T, 2)
        band = np.log(self.wavelengths[1] / self.wavelengths[0])
        frequencies = 1.0 / (self.wavelengths[0] * np.exp(texture.log_wavelengths * band))
        amplitudes = np.sin(np.pi * texture.log_wavelengths) ** 2  # zero where waves wrap around the band
        pixels = np.arange(size)
        x = pixels - texture.centre[:, :1]  # (T, size)
        y = pixels - texture.centre[:, 1:]
        # A wave is separable: exp(i (a x + b y + phase)) = exp(i a x) exp(i (b y + phase)), (T, waves, size) each.
        along_x = np.exp(2j * np.pi * (frequencies * np.cos(texture.orientations))[..., None] * x[:, None])
        along_y = np.exp(1j * (2 * np.pi * (frequencies * np.sin(texture.orientations))[..., None] * y[:, None]))
        along_y *= amplitudes[..., None] * np.exp(1j * self.phases)[:, None]
        field = np.einsum("tky,tkx->tyx", along_y, along_x).real
        # sin^2 amplitudes on ladders of >= 3 evenly spaced waves: squares sum to 3/8 per wave, so unit variance.
        field /= np.sqrt(3 / 16 * len(self.phases))
        weight = 1.0 / (1.0 + np.exp(-self.contrast * field))
        return self.colours[0] + weight[..., None] * (self.colours[1] - self.colours[0])

    def at(self, time: "float | np.ndarray") -> "WaveTexture":
        """The texture as it is at frame `time` (a number, or a `(T, 1)` array), still moving."""
        band = np.log(self.wavelengths[1] / self.wavelengths[0])
        return replace(
            self,
            # Magnifying by s multiplies every wavelength by s: the waves slide up the band and wrap around.
            log_wavelengths=(self.log_wavelengths + self.zoom * time / band) % 1.0,
            orientations=self.orientations + self.rotation * time,
            centre=self.centre + self.velocity * time,
        )

    def reversed(self, last_frame: int) -> "WaveTexture":
        """The same motion played backwards from frame `last_frame`."""
        return replace(self.at(last_frame), velocity=-self.velocity, rotation=-self.rotation, zoom=-self.zoom)


@dataclass(frozen=True)
class Squares:
    """Squares painted over the texture, anti-aliased, moving at constant velocity. Arrays are `(squares, ...)`."""

    corners: np.ndarray  # (n, 2): x, y of the top-left corner at frame 0, pixels
    velocities: np.ndarray  # (n, 2): pixels per frame
    sides: np.ndarray  # (n,)
    colours: np.ndarray  # (n, 3)

    def paint(self, frames: np.ndarray) -> np.ndarray:
        """`frames` `(T, size, size, 3)` with the squares painted over them, in order."""
        pixels = np.arange(frames.shape[1])
        for corner, velocity, side, colour in zip(
            self.corners, self.velocities, self.sides, self.colours, strict=True
        ):
            starts = corner + velocity * np.arange(len(frames))[:, None]  # (T, 2)
            # Share of each pixel [i, i + 1) that the square [start, start + side) covers, along x and along y.
            cover = np.clip(
                np.minimum(starts[..., None] + side, pixels + 1) - np.maximum(starts[..., None], pixels), 0, 1
            )
            alpha = (cover[:, 1, :, None] * cover[:, 0, None, :])[..., None]  # (T, size, size, 1)
            frames = frames * (1 - alpha) + colour * alpha
        return frames

    def reversed(self, last_frame: int) -> "Squares":
        """The same motion played backwards from frame `last_frame`."""
        return replace(self, corners=self.corners + self.velocities * last_frame, velocities=-self.velocities)


@dataclass(frozen=True)
class Clip:
    """
    One drawn clip: a moving texture, optionally a static texture seen through it, static occluders and moving
    sprites over it, then per-frame brightness flicker and pixel noise.
    """

    label: str
    texture: WaveTexture
    static_texture: WaveTexture | None
    static_opacity: float
    occluders: Squares
    sprites: Squares
    gains: np.ndarray  # (T,): brightness factor of each frame
    noise: np.ndarray  # (T, size, size, 3), float32

    def frames(self) -> np.ndarray:
        """The clip as a `(T, size, size, 3)` uint8 RGB array."""
        times = np.arange(len(self.gains))
        size = self.noise.shape[1]
        frames = self.texture.render(times, size)
        if self.static_texture is not None:
            static = self.static_texture.render(times[:1], size)
            frames = (1 - self.static_opacity) * frames + self.static_opacity * static
        frames = self.sprites.paint(self.occluders.paint(frames))
        frames = frames * self.gains[:, None, None, None] + self.noise
        return np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)

    def reversed(self) -> "Clip":
        """The clip played backwards: a clip of the opposite class, as likely under `draw_clip` as this one."""
        last_frame = len(self.gains) - 1
        return replace(
            self,
            label=OPPOSITE[self.label],
            texture=self.texture.reversed(last_frame),
            sprites=self.sprites.reversed(last_frame),
            gains=self.gains[::-1],
            noise=self.noise[::-1],
        )


def draw_clip(label: str, rng: np.random.Generator, settings: MotionSettings = MotionSettings()) -> Clip:
    """Draws a clip of class `label` (one of `CLASSES`); everything but the texture's motion ignores the class."""
    if label not in OPPOSITE:
        raise ValueError(f"Unknown motion class {label!r}; expected one of {list(CLASSES)}.")
    texture = replace(_draw_texture(rng, settings), **_draw_motion(label, rng, settings))
    static_texture = _draw_texture(rng, settings) if rng.random() < settings.static_layer_probability else None
    num_occluders = rng.integers(0, settings.max_occluders, endpoint=True)
    num_sprites = rng.integers(0, settings.max_sprites, endpoint=True)
    noise_level = rng.uniform(0, settings.max_noise)
    shape = (settings.num_frames, settings.size, settings.size, 3)
    return Clip(
        label=label,
        texture=texture,
        static_texture=static_texture,
        static_opacity=rng.uniform(*settings.static_layer_opacity),
        occluders=_draw_squares(rng, num_occluders, settings.occluder_size, (0.0, 0.0), settings.size),
        sprites=_draw_squares(rng, num_sprites, settings.sprite_size, settings.sprite_speed, settings.size),
        gains=rng.uniform(1 - settings.flicker, 1 + settings.flicker, settings.num_frames),
        noise=(rng.standard_normal(shape) * noise_level).astype(np.float32),
    )


def _draw_texture(rng: np.random.Generator, settings: MotionSettings) -> WaveTexture:
    """A still texture: ladders of waves at uniform offsets, uniform orientations and phases, two random colours."""
    ladders, rungs = settings.num_wave_ladders, settings.waves_per_ladder
    log_wavelengths = (rng.uniform(0, 1 / rungs, (ladders, 1)) + np.arange(rungs) / rungs).ravel()
    colours = rng.uniform(0, 1, (2, 3))
    while abs((colours[0] - colours[1]) @ LUMINANCE) < settings.min_luminance_contrast:
        colours = rng.uniform(0, 1, (2, 3))
    middle = (settings.size - 1) / 2
    return WaveTexture(
        log_wavelengths=log_wavelengths,
        orientations=rng.uniform(0, 2 * np.pi, ladders * rungs),
        phases=rng.uniform(0, 2 * np.pi, ladders * rungs),
        wavelengths=settings.wavelengths,
        centre=middle + rng.uniform(-settings.centre_spread, settings.centre_spread, 2) * settings.size,
        colours=colours,
        contrast=rng.uniform(*settings.contrast),
        velocity=np.zeros(2),
    )


def _draw_motion(label: str, rng: np.random.Generator, settings: MotionSettings) -> dict:
    """The texture's motion for class `label`: a drift velocity, a rotation or a zoom speed."""
    if label in DRIFT_ANGLES:
        angle = np.radians(DRIFT_ANGLES[label] + rng.uniform(-settings.drift_jitter, settings.drift_jitter))
        return {"velocity": rng.uniform(*settings.drift_speed) * np.array([np.cos(angle), np.sin(angle)])}
    if label in ("clockwise", "counterclockwise"):
        return {"rotation": (1 if label == "clockwise" else -1) * rng.uniform(*settings.rotation_speed)}
    return {"zoom": (1 if label == "expanding" else -1) * rng.uniform(*settings.zoom_speed)}


def _draw_squares(
    rng: np.random.Generator, count: int, sides: tuple[float, float], speeds: tuple[float, float], size: int
) -> Squares:
    """`count` squares of random colour, fully inside the frame at frame 0, moving in random directions."""
    side = rng.uniform(*sides, count)
    angle = rng.uniform(0, 2 * np.pi, count)
    speed = rng.uniform(*speeds, count)
    return Squares(
        corners=rng.uniform(0, 1, (count, 2)) * (size - side[:, None]),
        velocities=speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1),
        sides=side,
        colours=rng.uniform(0, 1, (count, 3)),
    )


def clip_seed(seed: int, split: str, label: str, index: int) -> list[int]:
    """The seed of clip `index` of class `label` in `split`: each clip has its own random generator."""
    return [seed, SPLITS.index(split), CLASSES.index(label), index]


def generate_clips(
    label: str, count: int, seed: int, split: str = "test", settings: MotionSettings = MotionSettings()
) -> Iterator[Clip]:
    """The first `count` clips of class `label` in `split` of the data set drawn with `seed`."""
    for index in range(count):
        yield draw_clip(label, np.random.default_rng(clip_seed(seed, split, label, index)), settings)


def _write_clip(job: tuple[Path, str, list[int], MotionSettings]) -> None:
    path, label, seed, settings = job
    write_video(path, draw_clip(label, np.random.default_rng(seed), settings).frames(), settings.fps)


def write_dataset(
    output_dir: "str | Path",
    clips_per_class: dict[str, int],
    seed: int = 0,
    settings: MotionSettings = MotionSettings(),
    classes: Sequence[str] = CLASSES,
    num_workers: int = 1,
) -> Path:
    """
    Writes a videofolder data set: `output_dir/<split>/<class>/<class>_NNNNN.mp4` for each split of
    `clips_per_class` (`{"train": 300, "validation": 50, "test": 50}`; splits with 0 clips are left out), and
    `output_dir/labels.txt` (the classes, one per line, in the order of `classes`).

    Clip `i` of a class in a split is the same whatever the other counts, classes or `num_workers`. The set is
    written next to `output_dir` and moved there when complete, so an interrupted run leaves no partial data set;
    an `output_dir` that exists and is not empty is refused.
    """
    output_dir = Path(output_dir)
    unknown = [name for name in (*clips_per_class, *classes) if name not in (*SPLITS, *CLASSES)]
    if unknown:
        raise ValueError(f"Unknown split or class {unknown}; splits are {list(SPLITS)}, classes {list(CLASSES)}.")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} exists and is not empty; give a new or empty --output-dir.")
    partial = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted run
    jobs = []
    for split, count in clips_per_class.items():
        for label in classes:
            (partial / split / label).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                path = partial / split / label / f"{label}_{index:05d}.mp4"
                jobs.append((path, label, clip_seed(seed, split, label, index), settings))
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers) as pool:
            list(pool.map(_write_clip, jobs, chunksize=16))
    else:
        for job in jobs:
            _write_clip(job)
    (partial / LABELS_FILE).write_text("".join(f"{label}\n" for label in classes))
    partial.replace(output_dir)
    return output_dir


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Writes a data set of short mp4 clips whose class is the direction of a full-frame motion "
        "(a videofolder: OUTPUT_DIR/{train,validation,test}/<class>/*.mp4, and OUTPUT_DIR/labels.txt).",
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="new or empty directory to write")
    parser.add_argument("--num-per-class", type=int, default=400, help="training clips per class (default 400)")
    parser.add_argument(
        "--num-validation-per-class", type=int, default=50, help="validation clips per class (default 50)"
    )
    parser.add_argument("--num-test-per-class", type=int, default=50, help="test clips per class (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole data set (default 0)")
    parser.add_argument(
        "--classes",
        nargs="+",
        choices=CLASSES,
        default=list(CLASSES),
        metavar="CLASS",
        help=f"classes to write, in label order (default all: {' '.join(CLASSES)})",
    )
    defaults = MotionSettings()
    parser.add_argument("--num-frames", type=int, default=defaults.num_frames, help="frames per clip (default 8)")
    parser.add_argument("--size", type=int, default=defaults.size, help="frame height and width (default 64)")
    parser.add_argument("--fps", type=int, default=defaults.fps, help="frame rate of the mp4 files (default 8)")
    parser.add_argument(
        "--no-distractors", action="store_true", help="no static layer, occluders, sprites, flicker or noise"
    )
    parser.add_argument("--num-workers", type=int, default=1, help="processes writing clips (default 1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = MotionSettings(num_frames=args.num_frames, size=args.size, fps=args.fps)
    if args.no_distractors:
        settings = settings.without_distractors()
    counts = {
        "train": args.num_per_class,
        "validation": args.num_validation_per_class,
        "test": args.num_test_per_class,
    }
    start = time.perf_counter()
    write_dataset(
        args.output_dir,
        {split: n for split, n in counts.items() if n > 0},
        args.seed,
        settings,
        args.classes,
        args.num_workers,
    )
    elapsed = time.perf_counter() - start
    total = sum(counts.values()) * len(args.classes)
    print(
        f"Wrote {total} clips ({counts} per class, {len(args.classes)} classes) to {args.output_dir} in "
        f"{elapsed:.1f} s ({total / elapsed:.0f} clips/s)."
    )


if __name__ == "__main__":
    main()
