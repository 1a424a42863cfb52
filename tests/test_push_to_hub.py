"""Publishing a model folder: the exact checked files, and nothing else, go to a local fake of the Hub's API."""

import os
from pathlib import Path

import pytest
import torch
from fake_hub import FakeHub, serve_fake_hub

from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.errors import ConversionError
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import write_hub_folder
from modeling_xvit.hub.upload import OTHER_FILES_SIZE_LIMIT, files_to_upload, push_to_hub
from modeling_xvit.hub.upload import main as push_main


@pytest.fixture
def fake_hub(httpserver, monkeypatch) -> FakeHub:
    return serve_fake_hub(httpserver, monkeypatch)


@pytest.fixture
def folder(tmp_path, tiny_config) -> Path:
    torch.manual_seed(0)
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32)
    model = XViTForVideoClassification(tiny_config())
    return write_hub_folder(tmp_path / "xvit", model, ModelCardInputs(origin="A test model."), processor)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry under `folder`, hidden ones included: content (or link target) and modification time."""
    entries = {}
    for directory, subdirectories, names in os.walk(folder):
        for name in names + subdirectories:
            path = Path(directory, name)
            content = (
                os.readlink(path).encode() if path.is_symlink() else (b"" if path.is_dir() else path.read_bytes())
            )
            entries[str(path.relative_to(folder))] = (content, path.lstat().st_mtime_ns)
    return entries


def test_upload_sends_exactly_the_dry_run_list_with_glob_like_names_and_no_hidden_file(folder, fake_hub):
    # File names that glob patterns would misread: `*.json` matches every json file (and the hidden token below
    # under allow_patterns), `[ab].json` matches only a.json or b.json.
    (folder / "*.json").write_text('{"star": true}')
    (folder / "[ab].json").write_text('{"brackets": true}')
    (folder / "extra").mkdir()
    (folder / "extra" / "labels.txt").write_text("a\nb\n")
    (folder / ".secrets").mkdir()
    (folder / ".secrets" / "token.json").write_text('{"token": "hf_secret"}')
    (folder / ".env").write_text("HF_TOKEN=hf_secret")

    listed = [file.path_in_repo for file in push_to_hub(folder, "someone/xvit", dry_run=True).files]
    assert fake_hub.requests == []  # a dry run sends nothing
    assert {"*.json", "[ab].json", "extra/labels.txt", "handler.py", "model.safetensors", "README.md"} <= set(listed)
    assert not any("token" in name or name.startswith(".") for name in listed)

    result = push_to_hub(folder, "someone/xvit", commit_message="First upload")
    (commit,) = fake_hub.commits
    assert sorted(commit.files) == listed == [file.path_in_repo for file in result.files]
    for name, content in commit.files.items():
        assert content == (folder / name).read_bytes(), name
    assert commit.summary == "First upload" and commit.repo_id == "someone/xvit" and commit.revision == "main"
    assert fake_hub.created == [{"name": "xvit", "organization": "someone"}]  # no visibility: the account default
    assert result.commit_url.endswith(f"/someone/xvit/commit/{'a' * 40}")


def test_publishing_options_reach_the_hub(folder, fake_hub, capsys):
    exit_code = push_main(
        [
            f"--folder={folder}",
            "--repo-id=someone/xvit",
            "--private",
            "--revision=v1",
            "--create-pr",
            "--commit-message=Converted weights",
        ]
    )
    assert exit_code == 0, capsys.readouterr().err
    assert fake_hub.created[0]["visibility"] == "private"
    assert fake_hub.branches == ["v1"]
    (commit,) = fake_hub.commits
    assert commit.revision == "v1" and commit.create_pr and commit.summary == "Converted weights"
    output = capsys.readouterr().out
    assert "Uploaded to someone/xvit:\n  README.md (" in output and "Pull request: " in output


def test_a_repository_name_without_namespace_goes_to_the_account_the_hub_names(folder, fake_hub):
    push_to_hub(folder, "xvit")  # as Trainer's default, the output folder's name
    (commit,) = fake_hub.commits
    assert fake_hub.created == [{"name": "xvit", "organization": None}]
    assert commit.repo_id == f"{fake_hub.account}/xvit"


def test_a_symlink_is_followed_only_to_a_file_inside_the_folder(folder, fake_hub):
    (folder / "card_copy.md").symlink_to("README.md")
    push_to_hub(folder, "someone/xvit")
    (commit,) = fake_hub.commits
    assert commit.files["card_copy.md"] == (folder / "README.md").read_bytes()


@pytest.mark.parametrize(
    ("name", "make_link", "problem"),
    [
        (
            "notes.txt",
            lambda link, outside: link.symlink_to(outside / "passwd"),
            "a symbolic link to {outside}/passwd",
        ),
        ("extra", lambda link, outside: link.symlink_to(outside, target_is_directory=True), "a symbolic link to"),
        ("loop.txt", lambda link, outside: link.symlink_to(link.name), "a symbolic link that cannot be resolved"),
        ("gone.txt", lambda link, outside: link.symlink_to("nowhere.txt"), "a symbolic link that cannot be resolved"),
    ],
)
def test_symlinks_out_of_the_folder_are_refused_and_nothing_is_sent(
    folder, tmp_path, fake_hub, name, make_link, problem
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    make_link(folder / name, outside)
    before = snapshot(folder)
    with pytest.raises(ConversionError, match="Refusing to publish") as error:
        push_to_hub(folder, "someone/xvit")
    assert f"{name}: {problem.format(outside=outside)}" in str(error.value)
    assert fake_hub.requests == [] and snapshot(folder) == before


@pytest.mark.parametrize("pickled", ["pytorch_model.bin", "xvit.pth", "extra/state.pkl"])
def test_folders_with_pickles_are_refused(folder, pickled, fake_hub, capsys):
    (folder / pickled).parent.mkdir(exist_ok=True)
    torch.save({"weight": torch.zeros(1)}, folder / pickled)
    assert push_main([f"--folder={folder}", "--repo-id=someone/xvit"]) == 1
    errors = capsys.readouterr().err
    assert f"error: Refusing to publish {folder}:\nerror: {pickled}: not among" in errors and "can run code" in errors
    assert fake_hub.requests == []


def test_files_above_the_size_limit_need_allow_large_files(folder, fake_hub):
    with open(folder / "big.txt", "wb") as file:
        file.truncate(OTHER_FILES_SIZE_LIMIT + 1)  # sparse: no disk space used
    with pytest.raises(
        ConversionError, match=r"big.txt: 10,485,761 bytes, above the 10,485,760-byte limit for such files"
    ):
        files_to_upload(folder)
    assert "big.txt" in [file.path_in_repo for file in files_to_upload(folder, allow_large_files=True)]
    assert fake_hub.requests == []


def test_a_failed_upload_reports_it_on_one_line_with_the_retry_command(folder, fake_hub, capsys):
    fake_hub.fail_commits = True
    before = snapshot(folder)
    assert push_main([f"--folder={folder}", "--repo-id=someone/xvit", "--revision=v1"]) == 1
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith(f"error: Uploading {folder} to someone/xvit failed (HfHubHTTPError: ")
    assert error.endswith(
        f"the folder is kept as it was. To retry: python -m modeling_xvit.hub.upload --folder {folder} --repo-id"
        " someone/xvit --revision v1"
    )
    assert snapshot(folder) == before and fake_hub.commits == []


def test_without_a_network_the_upload_fails_on_one_line_with_the_retry_command(folder, monkeypatch, capsys):
    import socket

    with socket.socket() as closed:  # a port nothing listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")
    before = snapshot(folder)
    assert push_main([f"--folder={folder}", "--repo-id=someone/xvit", "--private"]) == 1  # before: a traceback
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith(f"error: Uploading {folder} to someone/xvit failed (ConnectError: ")
    assert error.endswith(
        f"To retry: python -m modeling_xvit.hub.upload --folder {folder} --repo-id someone/xvit --private"
    )
    assert snapshot(folder) == before


def test_a_folder_without_config_or_weights_is_refused(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(ConversionError, match="is not a model folder: it has no config.json"):
        files_to_upload(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConversionError, match="has no .safetensors weights to publish"):
        files_to_upload(tmp_path)


def test_a_name_with_a_control_character_is_refused(folder, fake_hub):
    (folder / "notes.txt\nmodel.safetensors (1 bytes).txt").write_text("looks like another file in the listing")
    with pytest.raises(ConversionError) as error:  # before: accepted, splitting the dry run's listing
        files_to_upload(folder)
    assert "  'notes.txt\\nmodel.safetensors (1 bytes).txt': a name with a control character" in str(error.value)
    assert fake_hub.requests == []


@pytest.mark.parametrize("name", ["notes.txt", "secrets.json", "extra/run.md"])
def test_files_holding_an_access_token_are_refused_unless_allowed(folder, fake_hub, name, capsys):
    token = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"  # the shape of a real token, made up
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_text(f'{{"note": "HF_TOKEN={token}"}}')
    assert push_main([f"--folder={folder}", "--repo-id=someone/xvit"]) == 1  # before: uploaded
    errors = capsys.readouterr().err
    assert f"error: {name}: holds what looks like a Hugging Face access token (hf_...)" in errors
    assert token not in errors and fake_hub.requests == []
    assert push_main([f"--folder={folder}", "--repo-id=someone/xvit", "--allow-token-patterns"]) == 0
    (commit,) = fake_hub.commits
    assert token.encode() in commit.files[name]


def test_text_that_only_resembles_a_token_is_published(folder):
    (folder / "notes.txt").write_text("set hf_token in the config; shape: hf_xxx; names like hf_hub_download_helper")
    assert "notes.txt" in [file.path_in_repo for file in files_to_upload(folder)]


@pytest.mark.parametrize("content", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}"])
def test_weights_files_that_do_not_parse_are_refused(folder, fake_hub, content):
    (folder / "model.safetensors").write_bytes(content)
    with pytest.raises(ConversionError, match=r"model.safetensors: not a valid safetensors file \(") as error:
        push_to_hub(folder, "someone/xvit")  # before: a 0-byte .safetensors was uploaded
    assert "Refusing to publish" in str(error.value) and fake_hub.requests == []


@pytest.mark.slow  # runs the training script
def test_a_training_run_that_cannot_reach_the_hub_ends_with_one_line_and_keeps_its_folder(tmp_path):
    import socket
    import subprocess
    import sys

    from training_videos import tiny_run, write_video_folder

    with socket.socket() as closed:  # a port nothing listens on: no network
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    videos = write_video_folder(tmp_path / "videos", {"train": 2})
    output_dir = tmp_path / "run"
    arguments = tiny_run(output_dir, "--data_dir", str(videos), "--do_train", "--max_steps", "1")
    arguments += ["--push_to_hub", "--hub_model_id", "someone/xvit-run"]
    environment = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_TOKEN": "hf_fake_token_for_tests"}
    script = Path(__file__).resolve().parents[1] / "examples" / "run_video_classification.py"
    completed = subprocess.run(
        [sys.executable, str(script), *arguments], env=environment, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]  # before: an 80-line httpx traceback
    last = completed.stderr.strip().splitlines()[-1]
    upload = output_dir / "hub_upload"
    assert last.startswith(f"error: Uploading {upload} to someone/xvit-run failed (ConnectError: ")
    assert f"the folder is kept as it was. To retry: python -m modeling_xvit.hub.upload --folder {upload}" in last
    assert (upload / "model.safetensors").is_file() and (output_dir / "model.safetensors").is_file()
