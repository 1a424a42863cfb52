"""Publish an XViT model folder on the Hugging Face Hub: exactly the checked files, safetensors only.

    python -m modeling_xvit.hub.upload --folder xvit-b16-16-k600 --repo-id your-name/xvit-b16-16-k600 --dry-run

Every file is checked before anything is sent. Only configs, safetensors weights, code and text are published: a
folder holding pickle-based files (.bin, .pth, ...), which could run code when loaded, is refused. A symbolic link is
followed only to a file inside the folder; one that leads out of it (or to a folder, or nowhere) is refused. Files
larger than the size limits are refused unless --allow-large-files. Hidden files and folders are left out. The
checked files are uploaded as one commit with one explicit operation per file, so the dry run's list is exactly what
an upload sends.
"""

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from modeling_xvit.errors import ConversionError, exit_status
from modeling_xvit.hub.folder import CONFIG_NAME

PUBLISHED_SUFFIXES = (".json", ".safetensors", ".py", ".md", ".txt")
# Larger files are refused unless `allow_large_files`: a 5 GiB weights file holds a ViT-H in float32 twice over, and
# configs, code and the card stay far below 10 MiB.
SIZE_LIMITS = {".safetensors": 5 * 2**30}
OTHER_FILES_SIZE_LIMIT = 10 * 2**20
DEFAULT_COMMIT_MESSAGE = "Upload XViT model folder"


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


def _check_file(path: Path, root: Path, allow_large_files: bool) -> tuple[Path | None, str | None]:
    """The file that `path` stands for, or why it cannot be published: a symlink that leaves `root` (or loops, or
    leads nowhere or to a folder), a kind of file that may hold pickles, a file above the size limit."""
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
    return target, None


def files_to_upload(folder: str | os.PathLike, allow_large_files: bool = False) -> list[PublishedFile]:
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
            target, problem = _check_file(path, root, allow_large_files)
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
    dry_run: bool = False,
    token: str | None = None,
) -> PushResult:
    """Create `repo_id` if needed and upload the checked files of `folder` as one commit; a dry run only lists them.

    `revision` is a branch (created if missing); `create_pr` opens a pull request instead of committing to it. The
    local folder is only read. Raises `ConversionError` for a folder that cannot be published or a failed upload.
    """
    files = files_to_upload(folder, allow_large_files)
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
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise ConversionError(f"Uploading {folder} to {repo_id} failed (the folder is unchanged): {error}") from None
    return PushResult(files, commit.commit_url, commit.pr_url)


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
