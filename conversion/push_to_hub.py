"""Publish a converted XViT folder on the Hugging Face Hub, safetensors only.

    python -m conversion.push_to_hub --folder xvit-b16-16-k600 --repo-id your-name/xvit-b16-16-k600 --dry-run

Only configs, safetensors weights, code and text are published: a folder holding pickle-based files (.bin, .pth,
...), which could run code when loaded, is refused.
"""

import argparse
import sys
from pathlib import Path

from conversion.convert_original_xvit import ConversionError

PUBLISHED_SUFFIXES = (".json", ".safetensors", ".py", ".md", ".txt")


def files_to_upload(folder: str | Path) -> list[str]:
    """The files of `folder` that would be published (hidden files skipped), after checking that all are safe."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ConversionError(f"{folder} is not a model folder: it has no config.json.")
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    refused = [name for name in files if not name.endswith(PUBLISHED_SUFFIXES)]
    if refused:
        raise ConversionError(
            f"Refusing to publish {folder}: {refused} are not among {list(PUBLISHED_SUFFIXES)}; pickle-based weights"
            " (.bin, .pth, .pt, .ckpt, .pkl) can run code when loaded. Keep only the safetensors weights."
        )
    if not any(name.endswith(".safetensors") for name in files):
        raise ConversionError(f"{folder} has no .safetensors weights to publish.")
    return files


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    commit_message: str = "Upload XViT converted to Transformers",
    dry_run: bool = False,
) -> list[str]:
    """Create `repo_id` if needed and upload the checked files of `folder`; with `dry_run`, only list them."""
    files = files_to_upload(folder)
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), allow_patterns=files, commit_message=commit_message)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", required=True, help="A folder written by convert_original_xvit.")
    parser.add_argument("--repo-id", required=True, help="Hub repository, e.g. your-name/xvit-b16-16-k600.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--dry-run", action="store_true", help="List what would be uploaded; upload nothing.")
    args = parser.parse_args(argv)
    try:
        files = push_to_hub(args.folder, args.repo_id, private=args.private, dry_run=args.dry_run)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    action = "Would upload" if args.dry_run else "Uploaded"
    print(f"{action} to {args.repo_id}:\n" + "\n".join(f"  {name}" for name in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
