"""The Inference Endpoints handler, called as the endpoint toolkit calls it, in a fresh process, on a real mp4."""

import ast
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import HANDLER_SOURCE, write_hub_folder
from modeling_xvit.hub.handler import EndpointHandler, read_parameters, read_video_input

LABELS = {0: "archery", 1: "juggling", 2: "surfing", 3: "yoga", 4: "bowling", 5: "diving"}

# The toolkit's way (huggingface-inference-toolkit): the folder first on sys.path, handler.py imported as `handler`,
# `EndpointHandler(model_dir)` once, then one call per request body. The editable install is hidden and
# `modeling_xvit` blocked, as on an endpoint that only has the folder.
TOOLKIT_SCRIPT = """
import importlib.util, json, sys
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in getattr(finder, "__module__", "")]
sys.modules["modeling_xvit"] = None
folder, video, requests_file = sys.argv[1:]
sys.path.insert(0, folder)
spec = importlib.util.spec_from_file_location("handler", folder + "/handler.py")
handler_module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = handler_module
spec.loader.exec_module(handler_module)
handler = handler_module.EndpointHandler(folder)
answers = []
for request in json.load(open(requests_file)):
    if request.get("inputs") == "<bytes>":
        request["inputs"] = open(video, "rb").read()
    try:
        answers.append({"answer": handler(request)})
    except ValueError as error:  # the toolkit answers {"error": str(error)} with status 400
        answers.append({"error": str(error)})
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_config) -> Path:
    torch.manual_seed(0)
    model = XViTForVideoClassification(tiny_config(num_labels=len(LABELS), id2label=LABELS))
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32)
    return write_hub_folder(
        tmp_path_factory.mktemp("endpoint") / "xvit", model, ModelCardInputs(origin="x"), processor
    )


def expected_answer(folder: Path, video: str, top_k: int, **views) -> list[tuple[str, float]]:
    model = XViTForVideoClassification.from_pretrained(folder).eval()
    processor = XViTVideoProcessor.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**processor(video, return_tensors="pt", **views)).logits
    num_views = views.get("num_temporal_views", 1) * views.get("num_spatial_crops", 1)
    top = processor.average_view_scores(logits, num_views=num_views)[0].topk(top_k)
    return [(LABELS[index], score) for index, score in zip(top.indices.tolist(), top.values.tolist(), strict=True)]


@pytest.mark.slow
def test_handler_answers_bytes_and_base64_refuses_internal_urls_and_explains_bad_requests(
    folder, real_videos, httpserver, tmp_path
):
    video = real_videos["carphone_pristine"]
    content = Path(video).read_bytes()
    httpserver.expect_request("/clips/carphone.mp4").respond_with_data(content, content_type="video/mp4")
    encoded = base64.b64encode(content).decode()
    requests = [
        {"inputs": "<bytes>", "parameters": {"top_k": 2}},
        {"inputs": encoded, "parameters": {"num_temporal_views": 2, "num_spatial_crops": 3}},
        {"inputs": f"data:video/mp4;base64,{encoded}"},
        {"inputs": "/etc/passwd"},
        {"inputs": httpserver.url_for("/clips/carphone.mp4"), "parameters": {"top_k": 3}},  # 127.0.0.1
        {"inputs": base64.b64encode(b"not a video at all").decode()},
        {"inputs": encoded, "parameters": {"top_k": 0}},
        {"inputs": encoded, "parameters": {"top_k": 2, "temperature": 0.5}},
        {"inputs": 42},
        {"video": encoded},
    ]
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    completed = subprocess.run(
        [sys.executable, "-c", TOOLKIT_SCRIPT, str(folder), video, str(tmp_path / "requests.json")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    answers = json.loads(completed.stdout.strip().splitlines()[-1])

    def assert_answer(answer, expected):
        assert [entry["label"] for entry in answer["answer"]] == [label for label, _ in expected]
        scores = [entry["score"] for entry in answer["answer"]]
        torch.testing.assert_close(torch.tensor(scores), torch.tensor([score for _, score in expected]))

    assert_answer(answers[0], expected_answer(folder, video, 2))
    assert_answer(answers[1], expected_answer(folder, video, 5, num_temporal_views=2, num_spatial_crops=3))
    assert_answer(answers[2], expected_answer(folder, video, 5))
    errors = [answer["error"] for answer in answers[3:]]
    assert "neither an http(s) URL nor a base64-encoded video (local paths are not accepted)" in errors[0]
    # An endpoint fetches no internal address: the local server is refused before any connection.
    url = httpserver.url_for("/clips/carphone.mp4")
    assert errors[1].startswith(f"Could not read the video: Could not download video {url!r}: not a public http(s)")
    assert httpserver.log == []
    errors = errors[:1] + errors[2:]
    assert errors[1].startswith("Could not read the video: ")
    assert errors[2] == "Parameter `top_k` must be a positive integer, got 0."
    assert errors[3].startswith("Unknown parameters ['temperature']; the handler takes ['top_k', ")
    assert "got int" in errors[4]
    assert errors[5] == 'The request must be a JSON object with an "inputs" field holding the video.'
    assert not any("Traceback" in error for error in errors)


def test_video_inputs_are_bytes_or_urls_never_paths():
    assert read_video_input(b"\x00\x01") == b"\x00\x01"
    assert read_video_input("https://example.com/a.mp4") == "https://example.com/a.mp4"
    assert read_video_input(base64.b64encode(b"video").decode()) == b"video"
    for bad in ("", "file:///etc/passwd", "clip.mp4", b""):
        with pytest.raises(ValueError, match="`inputs` is"):
            read_video_input(bad)
    assert read_parameters({"top_k": 3, "num_spatial_crops": 3}) == {"top_k": 3, "num_spatial_crops": 3}
    with pytest.raises(ValueError, match="`num_temporal_views` must be a positive integer, got True"):
        read_parameters({"num_temporal_views": True})


def test_handler_imports_only_the_standard_library_torch_and_transformers():
    tree = ast.parse(HANDLER_SOURCE.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"torch", "transformers"}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("data:video/mp4,AAAAAAAA", "`inputs` is a data: URI that is not base64-encoded (data:video/mp4;base64,...)"),
        ("data:video/mp4", "`inputs` is a data: URI that is not base64-encoded"),
        ("data:video/mp4;base64,", "`inputs` is a string that is neither an http(s) URL nor a base64-encoded video"),
    ],
)
def test_a_data_uri_that_is_not_base64_is_a_one_line_error(inputs, message):
    with pytest.raises(ValueError) as error:  # before: IndexError
        read_video_input(inputs)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.fixture(scope="module")
def handler(folder) -> EndpointHandler:
    return EndpointHandler(str(folder), max_clips=6, batch_size=2)


def test_the_deployer_bounds_the_clips_of_a_request_and_they_run_in_chunks(handler, folder, real_videos):
    video = real_videos["carphone_pristine"]
    content = Path(video).read_bytes()
    batch_sizes = []
    hook = handler.model.register_forward_pre_hook(
        lambda module, args, kwargs: batch_sizes.append(len(kwargs["pixel_values"])), with_kwargs=True
    )
    try:
        answer = handler({"inputs": content, "parameters": {"num_temporal_views": 2, "num_spatial_crops": 3}})
        with pytest.raises(ValueError) as error:  # before: any number of views, in one forward batch
            handler({"inputs": content, "parameters": {"num_temporal_views": 400, "num_spatial_crops": 3}})
    finally:
        hook.remove()
    assert batch_sizes == [2, 2, 2]  # 6 clips, 2 at a time; the refused request never reached the model
    expected = expected_answer(folder, video, 5, num_temporal_views=2, num_spatial_crops=3)
    assert [entry["label"] for entry in answer] == [label for label, _ in expected]
    torch.testing.assert_close(
        torch.tensor([entry["score"] for entry in answer]), torch.tensor([s for _, s in expected])
    )
    assert str(error.value) == (
        "The request asks for 1200 clips (400 temporal views x 3 spatial crops); this endpoint takes at most 6 per"
        " request (XVIT_HANDLER_MAX_CLIPS)."
    )


def test_the_limits_come_from_the_environment_and_must_be_positive(folder, monkeypatch):
    monkeypatch.setenv("XVIT_HANDLER_MAX_CLIPS", "12")
    monkeypatch.setenv("XVIT_HANDLER_BATCH_SIZE", "3")
    endpoint = EndpointHandler(str(folder))
    assert (endpoint.max_clips, endpoint.batch_size) == (12, 3)
    assert EndpointHandler(str(folder), max_clips=4).max_clips == 4  # the argument wins
    monkeypatch.setenv("XVIT_HANDLER_MAX_CLIPS", "lots")
    with pytest.raises(ValueError, match=r"XVIT_HANDLER_MAX_CLIPS \(or the handler's argument\) must be a positive"):
        EndpointHandler(str(folder))
    monkeypatch.delenv("XVIT_HANDLER_MAX_CLIPS")
    with pytest.raises(ValueError, match="XVIT_HANDLER_BATCH_SIZE .* got 0"):
        EndpointHandler(str(folder), batch_size=0)
    monkeypatch.delenv("XVIT_HANDLER_BATCH_SIZE")
    assert (EndpointHandler(str(folder)).max_clips, EndpointHandler(str(folder)).batch_size) == (30, 8)


def test_a_model_answering_nan_gets_an_error_not_nan_scores(handler, real_videos, monkeypatch):
    monkeypatch.setattr(handler, "_logits", lambda pixel_values: torch.full((len(pixel_values), 6), float("nan")))
    with pytest.raises(ValueError, match="The model gives NaN or infinite scores for this video"):
        handler({"inputs": Path(real_videos["carphone_pristine"]).read_bytes()})


def test_a_deployer_may_allow_local_urls_for_local_use(folder, real_videos, httpserver, monkeypatch):
    video = real_videos["carphone_pristine"]
    httpserver.expect_request("/clips/carphone.mp4").respond_with_data(Path(video).read_bytes())
    url = httpserver.url_for("/clips/carphone.mp4")
    answer = EndpointHandler(str(folder), allow_private_urls=True)({"inputs": url, "parameters": {"top_k": 3}})
    expected = expected_answer(folder, video, 3)
    assert [entry["label"] for entry in answer] == [label for label, _ in expected]
    monkeypatch.setenv("XVIT_HANDLER_ALLOW_PRIVATE_URLS", "1")
    assert EndpointHandler(str(folder)).allow_private_urls is True
    monkeypatch.setenv("XVIT_HANDLER_ALLOW_PRIVATE_URLS", "maybe")
    with pytest.raises(ValueError, match="XVIT_HANDLER_ALLOW_PRIVATE_URLS must be 1 or 0, got 'maybe'"):
        EndpointHandler(str(folder))
    monkeypatch.delenv("XVIT_HANDLER_ALLOW_PRIVATE_URLS")
    with pytest.raises(ValueError, match="Could not download video"):  # the default: refused
        EndpointHandler(str(folder))({"inputs": url})
    # A request cannot turn it on.
    with pytest.raises(ValueError, match=r"Unknown parameters \['allow_private_urls'\]"):
        EndpointHandler(str(folder))({"inputs": url, "parameters": {"allow_private_urls": True}})
