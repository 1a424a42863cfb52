"""The Space (examples/space): the frame strip is the model's input, one labelled row per view; the app answers a
gradio_client call on a real mp4 as the folder's Inference Endpoints handler does, for every choice its API lists; and
build_space.py assembles, from a model folder or a training output folder, a Space repository that describes that
model and runs without modeling_xvit."""

import ast
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_help
from packaging.version import Version
from PIL import Image

from examples.space import app, build_space
from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.demo.frame_strip import (
    GAP,
    frame_strip,
    prediction_caption,
    render_frame_strip,
    sampled_views,
    view_labels,
)
from modeling_xvit.errors import ConversionError
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import HANDLER_SOURCE, code_files, hub_folder_files, write_hub_folder
from modeling_xvit.hub.handler import EndpointHandler

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("app", "build_space", "screenshot")
LABELS = {0: "archery", 1: "juggling", 2: "surfing", 3: "yoga", 4: "bowling", 5: "diving"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_config) -> Path:
    torch.manual_seed(0)
    model = XViTForVideoClassification(tiny_config(num_labels=len(LABELS), id2label=LABELS))
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32)
    return write_hub_folder(tmp_path_factory.mktemp("space") / "xvit", model, ModelCardInputs(origin="x"), processor)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, real_videos) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name in ("bikes", "carphone_pristine"):
        shutil.copyfile(real_videos[name], folder / f"{name}.mp4")
    (folder / "notes.txt").write_text("not a video")
    return folder


# --- The frame strip ------------------------------------------------------------------------------------------------


def test_the_strip_shows_the_model_input_before_normalisation(real_videos):
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 40}, crop_size=32, sampling="dense")
    video = real_videos["bikes"]
    views, indices, labels = sampled_views(video, processor, num_temporal_views=2, num_spatial_crops=3)

    model_input = processor(video, num_temporal_views=2, num_spatial_crops=3, return_tensors="pt")["pixel_values"]
    assert views.dtype == torch.uint8 and views.shape == model_input.shape == (6, 4, 3, 32, 32)
    torch.testing.assert_close((views / 255 - 0.5) / 0.5, model_input)
    metadata = processor(video, return_metadata=True, num_temporal_views=2)["video_metadata"][0]
    clips = processor.sample_frames(metadata, num_temporal_views=2)
    assert indices == [clips[:4]] * 3 + [clips[4:]] * 3  # three crops of each temporal view
    assert (
        labels
        == view_labels(2, 3)
        == [f"clip {clip} of 2, {crop} crop" for clip in (1, 2) for crop in ("left", "centre", "right")]
    )  # a landscape video: the crops run from left to right
    assert view_labels(1, 3, portrait=True) == [f"clip 1 of 1, {crop} crop" for crop in ("top", "centre", "bottom")]

    picture = render_frame_strip(views, frame_height=None)  # no caption, no indices: frames on a GAP grid
    assert picture.size == (GAP + 4 * (32 + GAP), GAP + 6 * (32 + GAP))
    for view in range(6):
        for position in range(4):
            left, top = GAP + position * (32 + GAP), GAP + view * (32 + GAP)
            frame = torch.from_numpy(np.asarray(picture.crop((left, top, left + 32, top + 32))))
            assert torch.equal(frame.permute(2, 0, 1), views[view, position])


def test_frame_strip_captions_scales_and_saves(real_videos, tmp_path):
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32)
    path = tmp_path / "strips" / "clip.png"
    picture = frame_strip(real_videos["carphone_pristine"], processor, "juggling (87.3%)", path, frame_height=64)
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.tobytes() == picture.convert("RGB").tobytes()
    assert picture.width == GAP + 4 * (64 + GAP)
    plain = render_frame_strip(sampled_views(real_videos["carphone_pristine"], processor)[0], frame_height=64)
    assert picture.height > plain.height  # the caption line and the frame indices
    caption_band = picture.crop((0, 0, picture.width // 2, GAP + 10)).convert("L")
    assert np.asarray(caption_band).min() < 100  # dark text on white


def dark_rows(picture: Image.Image) -> np.ndarray:
    """Whether each pixel row of `picture` holds text-dark pixels."""
    return (np.asarray(picture.convert("L")) < 100).any(axis=1)


def test_each_row_of_a_multi_view_strip_is_labelled(real_videos):
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 40}, crop_size=32, sampling="dense")
    views, indices, labels = sampled_views(real_videos["bikes"], processor, num_temporal_views=2, num_spatial_crops=3)
    plain = render_frame_strip(views, indices, frame_height=None)
    labelled = render_frame_strip(views, indices, frame_height=None, labels=labels)
    label_height = (labelled.height - plain.height) // 6
    assert label_height > 8 and labelled.height == plain.height + 6 * label_height
    row_height = plain.height // 6 + label_height
    for row in range(6):  # a line of text above each row's frames
        top = GAP + row * row_height
        assert dark_rows(labelled.crop((0, top, labelled.width, top + label_height))).any(), row
    # The strip of several views labels its rows; one view needs no label.
    drawn = frame_strip(real_videos["bikes"], processor, num_temporal_views=2, num_spatial_crops=3, frame_height=None)
    assert drawn.size == labelled.size and drawn.tobytes() == labelled.tobytes()
    single = frame_strip(real_videos["bikes"], processor, frame_height=None)
    unlabelled = render_frame_strip(*sampled_views(real_videos["bikes"], processor)[:2], frame_height=None)
    assert single.size == unlabelled.size
    with pytest.raises(ValueError, match="`labels` must name each of the 6 views, got 2 labels"):
        render_frame_strip(views, labels=["a", "b"])


def test_prediction_caption_and_bad_strips():
    predictions = [{"label": "yoga", "score": 0.25}, {"label": "juggling", "score": 0.7}]
    assert prediction_caption(predictions) == "juggling (70.0%)"
    with pytest.raises(ValueError, match="`predictions` is empty"):
        prediction_caption([])
    with pytest.raises(ValueError, match=r"uint8 pixels \(views, frames, 3, height, width\), got torch.float32"):
        render_frame_strip(torch.zeros(1, 4, 3, 8, 8))
    with pytest.raises(ValueError, match=r"4 indices for each of the 1 views, got \[3\]"):
        render_frame_strip(torch.zeros(1, 4, 3, 8, 8, dtype=torch.uint8), frame_indices=[[0, 1, 2]])


# --- The app --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(folder, videos, tmp_path_factory):
    """The app on 127.0.0.1, as `main` launches it (without blocking), and a gradio_client connected to it."""
    from gradio_client import Client

    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        environment.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        demo = app.build_app(str(folder), videos)
        app.launch(demo, host="127.0.0.1", block=False)
        try:
            assert demo.local_url.startswith("http://127.0.0.1:") and demo.share_url is None
            downloads = tmp_path_factory.mktemp("downloads")
            yield Client(demo.local_url, verbose=False, download_files=downloads, analytics_enabled=False)
        finally:
            demo.close()


@pytest.mark.slow
def test_the_app_answers_a_gradio_client_call_on_a_real_mp4(served, folder, real_videos):
    from gradio_client import handle_file

    video = real_videos["bikes"]
    handler = EndpointHandler(str(folder))
    processor = XViTVideoProcessor.from_pretrained(folder)
    for views in (
        {"num_temporal_views": 1, "num_spatial_crops": 1},
        {"num_temporal_views": 2, "num_spatial_crops": 3},
    ):
        crops = str(views["num_spatial_crops"])  # the API's choices are strings
        labels, strip = served.predict(handle_file(video), views["num_temporal_views"], crops, api_name="/classify")
        expected = handler({"inputs": Path(video).read_bytes(), "parameters": {"top_k": 5, **views}})
        assert labels["label"] == expected[0]["label"]
        assert [entry["label"] for entry in labels["confidences"]] == [entry["label"] for entry in expected]
        torch.testing.assert_close(
            torch.tensor([entry["confidence"] for entry in labels["confidences"]]),
            torch.tensor([entry["score"] for entry in expected]),
        )
        with Image.open(strip) as picture:
            drawn = frame_strip(video, processor, prediction_caption(expected), **views)
            assert picture.convert("RGB").tobytes() == drawn.tobytes()


@pytest.mark.slow
def test_the_app_explains_bad_requests(served, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Upload a video or pick an example first."):
        served.predict(None, 1, "1", api_name="/classify")
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_bytes(b"not a video at all")
    with pytest.raises(AppError, match="Could not read the video: "):
        served.predict(handle_file(not_a_video), 1, "1", api_name="/classify")


def test_example_videos_and_the_page(videos, served, folder):
    assert [Path(path).name for path in app.example_videos(videos)] == ["bikes.mp4", "carphone_pristine.mp4"]
    with pytest.raises(FileNotFoundError, match="--videos .*missing: no such folder"):
        app.example_videos(videos / "missing")
    # Here, the videos beside the app are the demo model's motion clips: another model gets none by default.
    assert app.default_videos(app.REPOSITORY_DEMO_MODEL) == app.DEFAULT_VIDEOS and app.default_videos(folder) is None
    page = served.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [parameter["label"] for parameter in page["/classify"]["parameters"]] == [
        "Video",
        "Clips over time",
        "Crops per clip",
    ]


@pytest.mark.slow
def test_every_crop_choice_the_api_lists_is_accepted(served, real_videos):
    from gradio_client import handle_file

    page = served.view_api(print_info=False, return_format="dict")["named_endpoints"]
    (crops,) = [parameter for parameter in page["/classify"]["parameters"] if parameter["label"] == "Crops per clip"]
    assert crops["python_type"]["type"] == "Literal['1', '3']"
    heights = []
    for choice in crops["type"]["enum"]:
        labels, strip = served.predict(handle_file(real_videos["bikes"]), 1, choice, api_name="/classify")
        assert len(labels["confidences"]) == app.TOP_K
        with Image.open(strip) as picture:
            heights.append(picture.height)
    assert heights[1] > 2 * heights[0]  # three labelled rows of frames against one


# --- Which model ----------------------------------------------------------------------------------------------------


def test_the_model_is_a_folder_a_hub_id_or_the_default(folder, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv(app.MODEL_ENV, raising=False)
    assert app.resolve_model(str(folder)) == folder
    monkeypatch.setenv(app.MODEL_ENV, str(folder))
    assert app.resolve_model(None) == folder
    monkeypatch.delenv(app.MODEL_ENV)
    with pytest.raises(app.ModelNotFoundError, match="has no config.json: it is not a model folder"):
        app.resolve_model(str(tmp_path))

    # A Hub id comes from the Hub cache (offline here: a snapshot laid out as huggingface_hub stores it).
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--you--xvit-tiny"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert app.resolve_model("you/xvit-tiny") == (repo / "snapshots" / commit).resolve()
    with pytest.raises(app.ModelNotFoundError, match="'you/elsewhere': no such folder, and the Hub model cannot be"):
        app.resolve_model("you/elsewhere")
    with pytest.raises(app.ModelNotFoundError, match="no such folder, and not a Hub model id"):
        app.resolve_model("no/such/folder")

    # The default: a built Space's model/, else the repository's demo model; missing, it says where and what to do.
    missing = (tmp_path / "space" / "model", tmp_path / "examples" / "xvit-motion-small")
    monkeypatch.setattr(app, "DEFAULT_MODEL_FOLDERS", missing)
    with pytest.raises(app.ModelNotFoundError) as error:
        app.resolve_model(None)
    assert f"is not at {missing[1]}" in str(error.value) and "--model" in str(error.value)
    monkeypatch.setattr(app, "DEFAULT_MODEL_FOLDERS", (missing[0], folder))
    assert app.resolve_model(None) == folder


def test_main_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(app.MODEL_ENV, raising=False)
    monkeypatch.setattr(app, "DEFAULT_MODEL_FOLDERS", (tmp_path / "model", tmp_path / "xvit-motion-small"))
    assert app.main([]) == 1
    assert capsys.readouterr().err.startswith(
        f"error: The default model, the embedded demo model, is not at {tmp_path}"
    )


# --- The Space repository -------------------------------------------------------------------------------------------


def written_files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def test_build_space_writes_the_space_repository(folder, videos, tmp_path):
    from huggingface_hub import SpaceCard

    screenshot = tmp_path / "shot.png"
    Image.new("RGB", (8, 8)).save(screenshot)
    space = build_space.build_space(tmp_path / "space", folder, videos, "you/xvit-tiny", screenshot)
    assert written_files(space) == sorted(
        [
            "README.md",
            "app.py",
            "frame_strip.py",
            "requirements.txt",
            "screenshot.png",
            "videos/bikes.mp4",
            "videos/carphone_pristine.mp4",
            *(f"model/{path.name}" for path in hub_folder_files(folder)),
        ]
    )
    assert (space / "app.py").read_bytes() == Path(app.__file__).read_bytes()
    card = SpaceCard.load(space / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.models == ["you/xvit-tiny"]
    # The Space runs the Gradio major version the tests ran on.
    assert Version(card.data.sdk_version).major == Version(version("gradio")).major
    # The card describes the model served: its labels and input, its card on the Hub, this screenshot.
    assert ", ".join(f"`{label}`" for label in LABELS.values()) in card.text
    assert "4 frames of 32 x 32 pixels" in card.text and "(https://huggingface.co/you/xvit-tiny)" in card.text
    assert "![The Space after classifying a video](screenshot.png)" in card.text

    empty = build_space.build_space(tmp_path / "no-model", None)
    assert written_files(empty) == ["README.md", "app.py", "frame_strip.py", "requirements.txt"]
    card = SpaceCard.load(empty / "README.md")
    assert "models" not in card.data.to_dict() and "XVIT_MODEL" in card.text and "screenshot" not in card.text


def test_the_space_of_a_training_run_serves_its_hub_folder_and_describes_that_model(folder, tmp_path):
    from huggingface_hub import SpaceCard

    # A training output folder: the Hub folder's files at its top, beside the run's checkpoints, logs and predictions.
    run = Path(shutil.copytree(folder, tmp_path / "run"))
    (run / "checkpoint-2").mkdir()
    (run / "checkpoint-2" / "optimizer.pt").write_bytes(b"pickle")
    (run / "training_args.bin").write_bytes(b"pickle")
    (run / "predictions.jsonl").write_text("{}\n")
    (run / "all_results.json").write_text("{}")
    Image.new("RGB", (8, 8)).save(run / "training_curve.png")

    assert build_space.main([str(tmp_path / "space"), "--model", str(run)]) == 0
    space = tmp_path / "space"
    model_files = [path.name for path in hub_folder_files(folder)]
    assert written_files(space / "model") == model_files
    # Neither the demo model's example clips and screenshot nor its left / right / up / down.
    space_files = ["README.md", "app.py", "frame_strip.py", "requirements.txt"]
    assert written_files(space) == sorted([*space_files, *(f"model/{name}" for name in model_files)])
    card = SpaceCard.load(space / "README.md").text
    assert "`archery`" in card and not any(f"`{motion}`" in card for motion in ("left", "right", "up", "down"))
    assert "screenshot" not in card and "model/README.md" in card


def test_a_folder_of_weights_and_configs_gets_the_package_s_code(folder, tmp_path):
    bare = Path(shutil.copytree(folder, tmp_path / "bare", ignore=shutil.ignore_patterns("*.py")))
    space = build_space.build_space(tmp_path / "space", bare)
    for source in (*code_files(), HANDLER_SOURCE):
        assert (space / "model" / source.name).read_bytes() == source.read_bytes()


def test_build_space_refuses_bad_input_and_writes_nothing(folder, videos, tmp_path, monkeypatch):
    monkeypatch.setattr(build_space, "MAX_VIDEO_BYTES", 2**19)
    with pytest.raises(ConversionError, match=r"Example videos above 0.5 MiB: carphone_pristine.mp4 \(0.6 MiB\)\.$"):
        build_space.build_space(tmp_path / "space", folder, videos)
    with pytest.raises(ConversionError, match="holds no video"):
        build_space.build_space(tmp_path / "space", folder, tmp_path)
    with pytest.raises(ConversionError, match="no config.json, not a model folder"):
        build_space.build_space(tmp_path / "space", tmp_path)
    with pytest.raises(ConversionError, match="--screenshot .*missing.png: no such file"):
        build_space.build_space(tmp_path / "space", folder, screenshot=tmp_path / "missing.png")
    assert not (tmp_path / "space").exists()


# The Space as the Hub runs it: `python app.py` in the Space repository, without this package (its editable install
# hidden, `modeling_xvit` and `conversion` blocked), serving the bundled model folder.
SPACE_RUNNER = """
import runpy, sys
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in getattr(finder, "__module__", "")]
sys.modules["modeling_xvit"] = sys.modules["conversion"] = None
sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path("app.py", run_name="__main__")
"""


def wait_until_serving(server: subprocess.Popen, url: str, log: Path, timeout: float = 300) -> None:
    """Wait for the app in `server` to answer on `url`; fail with its output if it stops or never answers."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the Space stopped:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=5).is_success:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    pytest.fail(f"the Space did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_the_built_space_runs_without_this_package(folder, videos, real_videos, tmp_path):
    from gradio_client import Client, handle_file

    space = build_space.build_space(tmp_path / "space", folder, videos)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
    }
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "space.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", SPACE_RUNNER, "--port", str(port)],
            cwd=space,
            env=environment,
            stdout=output,
            stderr=output,
        )
    try:
        wait_until_serving(server, url, log)
        client = Client(url, verbose=False, download_files=tmp_path, analytics_enabled=False)
        labels, _ = client.predict(handle_file(real_videos["carphone_pristine"]), 1, "1", api_name="/classify")
    finally:
        server.terminate()
        server.wait(timeout=60)
    expected = EndpointHandler(str(folder))({"inputs": Path(real_videos["carphone_pristine"]).read_bytes()})
    assert [entry["label"] for entry in labels["confidences"]] == [entry["label"] for entry in expected]


def test_the_space_needs_neither_modeling_xvit_nor_conversion():
    """On the Hub the Space has app.py, frame_strip.py and the model folder (remote code), nothing else. The app
    imports the package only where it runs in this repository: the fallback of frame_strip, and to write the code of
    the repository's demo model."""
    allowed = set(sys.stdlib_module_names) | {"torch", "PIL", "gradio", "huggingface_hub", "frame_strip"}
    for source in (path for path in build_space.SPACE_FILES.values() if path.suffix == ".py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        repository_only = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ExceptHandler)
            or (isinstance(node, ast.If) and "REPOSITORY_DEMO_MODEL" in ast.unparse(node.test))
        ]
        excluded = {id(inner) for node in repository_only for inner in ast.walk(node)}
        imports = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in excluded
        ]
        imported = {alias.name for node in imports if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in imports if isinstance(node, ast.ImportFrom) and node.module}
        assert {name.split(".")[0] for name in imported} <= allowed, source
    requirements = (build_space.SPACE_DIR / "requirements.txt").read_text()
    assert "gradio" not in requirements  # the Space's sdk_version installs it


@pytest.mark.slow
def test_help_of_the_space_scripts_by_path_and_as_a_module():
    assert {
        path.stem for path in (ROOT / "examples" / "space").glob("*.py") if "def main(" in path.read_text()
    } == set(SCRIPTS)
    # build_space.py and screenshot.py import app.py beside them: they run by path; the app runs both ways.
    run_help([*([f"examples/space/{script}.py"] for script in SCRIPTS), ["-m", "examples.space.app"]])
