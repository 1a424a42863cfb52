"""Publish an XViT model folder on the Hugging Face Hub: exactly the checked files, safetensors only.

    python -m modeling_xvit.hub.upload --folder xvit-b16-16-k600 --repo-id your-name/xvit-b16-16-k600 --dry-run

Every file is checked before anything is sent. Only configs, safetensors weights, code and text are published: a
folder holding pickle-based files (.bin, .pth, ...), which could run code when loaded, is refused, and so is a
.safetensors file that does not parse. A symbolic link is followed only to a file inside the folder; one that leads out
of it (or to a folder, or nowhere) is refused. A name with a control character (a newline could make the listing show
other files) is refused. A file holding what looks like a Hugging Face access token (`hf_` and 30 or more letters and
digits) is refused unless --allow-token-patterns. Files larger than the size limits are refused unless
--allow-large-files. Hidden files and folders are left out. The checked files are uploaded as one commit with one
explicit operation per file, so the dry run's list is exactly what an upload sends. A failed upload leaves the folder
as it was and says the command that retries it.
"""

import argparse
import importlib
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError
from safetensors import SafetensorError, safe_open

from modeling_xvit.errors import ConversionError, exit_status
from modeling_xvit.hub.folder import CONFIG_NAME

PUBLISHED_SUFFIXES = (".json", ".safetensors", ".py", ".md", ".txt")
# Larger files are refused unless `allow_large_files`: a 5 GiB weights file holds a ViT-H in float32 twice over, and
# configs, code and the card stay far below 10 MiB.
SIZE_LIMITS = {".safetensors": 5 * 2**30}
OTHER_FILES_SIZE_LIMIT = 10 * 2**20
DEFAULT_COMMIT_MESSAGE = "Upload XViT model folder"
# A Hugging Face user access token (`hf_` and 34 letters and digits today); a little shorter still looks like one.
TOKEN_PATTERN = re.compile(rb"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}")
UPLOAD_COMMAND = "python -m modeling_xvit.hub.upload"


def _client_request_errors() -> tuple[type[Exception], ...]:
    """The errors of a request that got no answer (refused, unreachable, timed out) of the HTTP client that
    huggingface_hub uses: httpx before version 2, httpx2 since; neither is an OSError."""
    errors = []
    for client in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(client).RequestError)
        except ImportError:
            pass
    return tuple(errors)


@dataclass(frozen=True)
class PublishedFile:
    path_in_repo: str  # POSIX path relative to the folder (a symlink's own name)
    local_path: Path  # the resolved file that is read
    size: int


class PushResult(NamedTuple):
    files: list[PublishedFile]
    commit_url: str | None  # None for a dry run
    pull_request_url: str | None


def _size_limit(name: str) -> int:
    return SIZE_LIMITS.get(Path(name).suffix, OTHER_FILES_SIZE_LIMIT)


def _content_problem(path: Path, target: Path, allow_token_patterns: bool) -> str | None:
    """Why the content of a file cannot be published: weights that do not parse, or text holding an access token."""
    if path.name.endswith(".safetensors"):
        try:
            with safe_open(target, "pt"):
                pass
        except (SafetensorError, OSError) as error:
            return f"not a valid safetensors file ({error})"
    elif not allow_token_patterns and TOKEN_PATTERN.search(target.read_bytes()):
        return "holds what looks like a Hugging Face access token (hf_...); remove it, or pass --allow-token-patterns"
    return None


def _check_file(
    path: Path, root: Path, allow_large_files: bool, allow_token_patterns: bool
) -> tuple[Path | None, str | None]:
    """The file that `path` stands for, or why it cannot be published: a symlink that leaves `root` (or loops, or
    leads nowhere or to a folder), a kind of file that may hold pickles, a file above the size limit, a content
    refused by `_content_problem`."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # a broken link or a loop (RuntimeError before Python 3.13)
        return None, f"a symbolic link that cannot be resolved ({error})"
    if not target.is_relative_to(root):
        return None, f"a symbolic link to {target}, outside the folder"
    if not target.is_file():
        return None, f"not a regular file ({target})" if path.is_symlink() else "not a regular file"
    if not path.name.endswith(PUBLISHED_SUFFIXES):
        return None, (
            f"not among {list(PUBLISHED_SUFFIXES)} (pickle-based weights such as .bin, .pth, .pt, .ckpt or .pkl can"
            " run code when loaded: keep only the safetensors weights)"
        )
    size, limit = target.stat().st_size, _size_limit(path.name)
    if size > limit and not allow_large_files:
        return None, f"{size:,} bytes, above the {limit:,}-byte limit for such files (pass --allow-large-files)"
    problem = _content_problem(path, target, allow_token_patterns)
    return (None, problem) if problem else (target, None)


def _has_control_character(name: str) -> bool:
    return any(ord(character) < 32 or 127 <= ord(character) < 160 for character in name)


def files_to_upload(
    folder: str | os.PathLike, allow_large_files: bool = False, allow_token_patterns: bool = False
) -> list[PublishedFile]:
    """The files of `folder` that would be published, after checking every one of them; hidden entries are skipped.

    Raises `ConversionError` listing every file that cannot be published and why.
    """
    folder = Path(folder)
    if not folder.is_dir() or not (folder / CONFIG_NAME).is_file():
        raise ConversionError(f"{folder} is not a model folder: it has no {CONFIG_NAME}.")
    root = folder.resolve()
    files, refused = [], []
    for directory, subdirectories, names in os.walk(folder):  # never descends into linked folders
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        linked_folders = [name for name in subdirectories if Path(directory, name).is_symlink()]
        for name in [name for name in sorted(names) if not name.startswith(".")] + linked_folders:
            path = Path(directory, name)
            relative = path.relative_to(folder).as_posix()
            if _has_control_character(relative):
                refused.append(f"{relative!r}: a name with a control character (a newline, a tab, ...)")
                continue
            target, problem = _check_file(path, root, allow_large_files, allow_token_patterns)
            if problem:
                refused.append(f"{relative}: {problem}")
            else:
                files.append(PublishedFile(relative, target, target.stat().st_size))
    if refused:
        raise ConversionError(f"Refusing to publish {folder}:\n  " + "\n  ".join(refused))
    if not any(file.path_in_repo.endswith(".safetensors") for file in files):
        raise ConversionError(f"{folder} has no .safetensors weights to publish.")
    return sorted(files, key=lambda file: file.path_in_repo)


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    allow_large_files: bool = False,
    allow_token_patterns: bool = False,
    dry_run: bool = False,
    token: str | None = None,
) -> PushResult:
    """Create `repo_id` if needed and upload the checked files of `folder` as one commit; a dry run only lists them.

    `revision` is a branch (created if missing); `create_pr` opens a pull request instead of committing to it. The
    local folder is only read. Raises `ConversionError` for a folder that cannot be published, or, on one line, for a
    failed upload (the Hub refused it or could not be reached) with the command that retries it.
    """
    files = files_to_upload(folder, allow_large_files, allow_token_patterns)
    if dry_run:
        return PushResult(files, None, None)
    api = HfApi(token=token)
    operations = [CommitOperationAdd(file.path_in_repo, str(file.local_path)) for file in files]
    try:
        # None: the account's default visibility. The Hub answers with the full id (a bare name gets the account's).
        repo_id = api.create_repo(repo_id, private=private or None, exist_ok=True).repo_id
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id, operations, commit_message=commit_message, revision=revision, create_pr=create_pr
        )
    except (HfHubHTTPError, OSError, ValueError, *_client_request_errors()) as error:
        options = {
            "--private": private,
            "--revision": revision,
            "--create-pr": create_pr,
            "--commit-message": commit_message if commit_message != DEFAULT_COMMIT_MESSAGE else None,
            "--allow-large-files": allow_large_files,
            "--allow-token-patterns": allow_token_patterns,
        }
        retry = retry_command(folder, repo_id, options)
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ConversionError(
            f"Uploading {folder} to {repo_id} failed ({type(error).__name__}: {reason}); the folder is kept as it"
            f" was. To retry: {retry}"
        ) from None
    return PushResult(files, commit.commit_url, commit.pr_url)


def retry_command(folder: str | os.PathLike, repo_id: str, options: dict[str, str | bool | None]) -> str:
    """The command that uploads `folder` to `repo_id` again with the same `options` (flag: value, True or unset)."""
    words = [*shlex.split(UPLOAD_COMMAND), "--folder", str(folder), "--repo-id", repo_id]
    for flag, value in options.items():
        if value is True:
            words.append(flag)
        elif value:
            words += [flag, str(value)]
    return shlex.join(words)


# --- Command line (shared with the converters' --push-to-hub) ------------------------------------------------------


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    """The publishing options every script that uploads a folder takes."""
    group = parser.add_argument_group("publishing")
    group.add_argument("--private", action="store_true", help="Create the repository as private.")
    group.add_argument("--revision", help="Branch to commit to (created if missing; default main).")
    group.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    group.add_argument("--commit-message", default=DEFAULT_COMMIT_MESSAGE, help="Commit message.")
    group.add_argument(
        "--allow-large-files",
        action="store_true",
        help=f"Publish files above the size limits ({SIZE_LIMITS['.safetensors'] >> 30} GiB for weights,"
        f" {OTHER_FILES_SIZE_LIMIT >> 20} MiB for other files).",
    )
    group.add_argument(
        "--allow-token-patterns",
        action="store_true",
        help="Publish files holding text that looks like a Hugging Face access token (hf_...), on purpose.",
    )
    group.add_argument("--dry-run", action="store_true", help="List exactly what would be uploaded; upload nothing.")


def publish(folder: str | os.PathLike, repo_id: str, args: argparse.Namespace) -> None:
    """Upload `folder` with the options of `add_upload_arguments` and print what was (or would be) sent."""
    result = push_to_hub(
        folder,
        repo_id,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
        allow_large_files=args.allow_large_files,
        allow_token_patterns=args.allow_token_patterns,
        dry_run=args.dry_run,
    )
    print(describe_push(result, repo_id))


def describe_push(result: PushResult, repo_id: str) -> str:
    """What was (or, for a dry run, would be) uploaded: one line per file, then the commit or pull request."""
    action = "Would upload" if result.commit_url is None else "Uploaded"
    lines = [f"{action} to {repo_id}:", *(f"  {file.path_in_repo} ({file.size:,} bytes)" for file in result.files)]
    if result.commit_url:
        lines.append(f"Commit: {result.commit_url}")
    if result.pull_request_url:
        lines.append(f"Pull request: {result.pull_request_url}")
    return "\n".join(lines)


def add_folder_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the scripts that write a folder (the converters): checking and publishing it."""
    parser.add_argument(
        "--skip-folder-check",
        action="store_true",
        help="Do not load the written folder in a fresh process to check it (python -m modeling_xvit.hub.verify).",
    )
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="Upload the folder to this Hub repository.")
    add_upload_arguments(parser)


def publish_if_asked(output_dir: Path, args: argparse.Namespace) -> Path:
    """Upload a converter's output folder when `--push-to-hub` was given."""
    if args.push_to_hub:
        publish(output_dir, args.push_to_hub, args)
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", required=True, help="A folder written by one of the converters or a training run.")
    parser.add_argument("--repo-id", required=True, help="Hub repository, e.g. your-name/xvit-b16-16-k600.")
    add_upload_arguments(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: publish(args.folder, args.repo_id, args))


if __name__ == "__main__":
    sys.exit(main())
