"""Writing model folders: the one place that knows what a complete XViT folder for the Hub holds.

The converters, the training script and the demo model all write their folders with `write_hub_folder`:

    from modeling_xvit.hub.card import ModelCardInputs
    from modeling_xvit.hub.folder import write_hub_folder

    write_hub_folder("xvit-finetuned", model, ModelCardInputs(model_id="you/xvit-finetuned", ...), processor)

The folder holds the weights (safetensors only), `config.json` (with `auto_map` for AutoConfig, AutoModel and
AutoModelForVideoClassification, the label names, and `custom_pipelines`: the pipeline that scores every view of a
video), `video_preprocessor_config.json` and `preprocessor_config.json` (each with its `auto_map`), the remote-code
files, the Inference Endpoints `handler.py` and the model card `README.md`.
`config.json` is written last, so a folder whose writer was killed never loads as a model, and by default the whole
folder appears at once (`atomic_output_dir`): a failed write leaves nothing.

A folder of weights and configs (the demo model as the repository holds it) gets its code files, handler and
`auto_map` from `write_code_files`, or from the command line:

    python -m modeling_xvit.hub.folder examples/xvit-motion-small
"""

import argparse
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from glob import escape
from pathlib import Path

import torch
from transformers.dynamic_module_utils import get_relative_import_files

from modeling_xvit import XViTConfig, XViTForVideoClassification, XViTImageProcessor, XViTModel, XViTVideoProcessor
from modeling_xvit.errors import ConversionError, exit_status
from modeling_xvit.hub.card import ModelCardInputs, render_model_card
from modeling_xvit.pipeline_xvit import CUSTOM_PIPELINES

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
PROCESSOR_CONFIG_NAME = "video_preprocessor_config.json"
IMAGE_PROCESSOR_CONFIG_NAME = "preprocessor_config.json"
HANDLER_NAME = "handler.py"
CARD_NAME = "README.md"
# The Inference Endpoints handler copied into every folder (it imports only the standard library, torch, transformers).
HANDLER_SOURCE = Path(__file__).with_name(HANDLER_NAME)


def _reference(cls: type) -> str:
    """`module.Class` as `auto_map` names a class of a flat remote-code file."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


# The only place that says which Auto class loads which class of the folder's remote code, config file by config file.
# The backbone (AutoModel) loads from a classifier's folder too. The image processor's config is there for the
# pipeline: `pipeline(..., batch_size=2)` batches only a model with an image processor (or a tokenizer or feature
# extractor), even when it preprocesses with the video processor.
AUTO_MAP = {
    CONFIG_NAME: {
        "AutoConfig": _reference(XViTConfig),
        "AutoModel": _reference(XViTModel),
        "AutoModelForVideoClassification": _reference(XViTForVideoClassification),
    },
    PROCESSOR_CONFIG_NAME: {"AutoVideoProcessor": _reference(XViTVideoProcessor)},
    IMAGE_PROCESSOR_CONFIG_NAME: {"AutoImageProcessor": _reference(XViTImageProcessor)},
}


# --- The output location ------------------------------------------------------------------------------------------


def check_output_dir(output_dir: str | os.PathLike) -> Path:
    """Refuse, before any work is done, an output folder that exists and is not empty or that cannot be written.

    Also removes the staging folders that interrupted runs left next to it (see `atomic_output_dir`).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ConversionError(f"Output folder {output_dir} already exists and is not empty; choose another one.")
    _check_writable(output_dir)
    remove_stale_partial_folders(output_dir)
    return output_dir


def _check_writable(output_dir: Path) -> None:
    """Create and remove a folder where `output_dir` will be made (as root, permission bits alone prove nothing)."""
    ancestor = output_dir.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".xvit-write-test.", dir=ancestor))
    except OSError as error:
        raise ConversionError(
            f"Cannot write the output folder {output_dir}: {ancestor} does not accept new folders ({error.strerror})."
        ) from None


def _partial_folders(output_dir: Path) -> list[Path]:
    pattern = f".{escape(output_dir.name)}.*.partial"
    return [path for path in output_dir.parent.glob(pattern) if path.is_dir() and not path.is_symlink()]


def remove_stale_partial_folders(output_dir: str | os.PathLike) -> list[Path]:
    """Delete the `.NAME.xxxx.partial` staging folders of `output_dir` whose writer is gone (killed mid-write).

    A writer holds a lock on its staging folder for as long as it runs, and the kernel drops the lock when the
    process dies, so a folder that can be locked is stale and a folder still being written is left alone.
    """
    removed = []
    for staging in _partial_folders(Path(output_dir)):
        descriptor = os.open(staging, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another process is writing it
        else:
            shutil.rmtree(staging)
            removed.append(staging)
            logger.warning(f"Removed {staging}, left behind by an interrupted run.")
        finally:
            os.close(descriptor)
    return removed


@contextmanager
def atomic_output_dir(output_dir: str | os.PathLike) -> Iterator[Path]:
    """A staging folder `.NAME.xxxx.partial` next to `output_dir` that becomes `output_dir` only if the block succeeds.

    The staging folder is locked while this process lives, so that `remove_stale_partial_folders` tells an
    interrupted run's leftovers from a run in progress.
    """
    output_dir = check_output_dir(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent))
    lock = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; it should look like any new folder
        yield staging
        if output_dir.exists():
            output_dir.rmdir()
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.close(lock)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# --- The folder -----------------------------------------------------------------------------------------------------


def default_video_processor(config: XViTConfig) -> XViTVideoProcessor:
    """The video processor for a model without a recipe of its own: `config.num_frames` frames, the short side resized
    to `config.image_size` and a centre crop of that size (the original's test pipeline), segment sampling."""
    size = config.image_size
    return XViTVideoProcessor(
        num_frames=config.num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def _check_processor_fits(processor: XViTVideoProcessor, config: XViTConfig) -> None:
    crop = (processor.crop_size["height"], processor.crop_size["width"])
    if crop != (config.image_size, config.image_size) or processor.num_frames != config.num_frames:
        raise ConversionError(
            f"The video processor makes {processor.num_frames}-frame clips of {crop[0]} x {crop[1]} pixels but the"
            f" model takes {config.num_frames} frames of {config.image_size} x {config.image_size}."
        )


def image_processor_for(video_processor: XViTVideoProcessor) -> XViTImageProcessor:
    """The image processor with the video processor's resize, crop, normalisation and clip sampling (one view of
    decoded frames): the folder's `preprocessor_config.json`."""
    options = video_processor.to_dict()
    return XViTImageProcessor(
        **{name: options[name] for name in XViTImageProcessor.valid_kwargs.__annotations__ if name in options}
    )


# --- The remote code ------------------------------------------------------------------------------------------------


def code_files() -> list[Path]:
    """The package's remote-code files that a folder carries: the modules `AUTO_MAP` and `CUSTOM_PIPELINES` name and
    those they import."""
    package = Path(__file__).resolve().parents[1]
    modules = {package / f"{ref.split('.')[0]}.py" for entries in AUTO_MAP.values() for ref in entries.values()}
    modules |= {package / f"{task['impl'].split('.')[0]}.py" for task in CUSTOM_PIPELINES.values()}
    imported = {Path(path).resolve() for module in modules for path in get_relative_import_files(module)}
    return sorted(modules | imported)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _write_text_atomically(path: Path, text: str) -> None:
    _write_atomically(path, text.encode("utf-8"))


def _json_text(config: Mapping) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _with_auto_map(config: dict, config_name: str) -> dict:
    return {**config, "auto_map": {**(config.get("auto_map") or {}), **AUTO_MAP[config_name]}}


def _write_code(folder: Path) -> None:
    """The code files and the handler, and `auto_map` in the processor configs present; files that already hold what
    would be written are left untouched (a committed folder stays unchanged)."""
    for source in (*code_files(), HANDLER_SOURCE):
        target = folder / source.name
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            _write_atomically(target, source.read_bytes())
    for name in (PROCESSOR_CONFIG_NAME, IMAGE_PROCESSOR_CONFIG_NAME):
        if (folder / name).is_file():
            config = json.loads((folder / name).read_text(encoding="utf-8"))
            if _with_auto_map(config, name) != config:
                _write_text_atomically(folder / name, _json_text(_with_auto_map(config, name)))


def write_code_files(folder: str | os.PathLike) -> Path:
    """(Re)write the remote code of a model folder that holds the weights and configs: the package's code files
    (`code_files`), the Inference Endpoints `handler.py`, and `auto_map` (`AUTO_MAP`) in each config present,
    `config.json` last. Afterwards the folder loads with `trust_remote_code=True` where `modeling_xvit` is not
    installed. Files that already hold what would be written are left untouched.

    `write_hub_folder` writes every folder's code with it; the demo model's folder, committed without code, gets its
    code from it when the demo, the Space or a push needs it.
    """
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ConversionError(f"{folder} is not a model folder: it has no {CONFIG_NAME}.")
    _write_code(folder)
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    if _with_auto_map(config, CONFIG_NAME) != config:
        _write_text_atomically(folder / CONFIG_NAME, _json_text(_with_auto_map(config, CONFIG_NAME)))
    return folder


def _is_weights_file(name: str) -> bool:
    """`model.safetensors`, or the shards `model-00001-of-00002.safetensors` and their index."""
    return name == "model.safetensors.index.json" or (name.startswith("model") and name.endswith(".safetensors"))


def is_hub_folder_file(name: str) -> bool:
    """Whether `name` is the name of a file that `write_hub_folder` writes: weights, configs, code, handler, card."""
    names = {*AUTO_MAP, HANDLER_NAME, CARD_NAME, *(path.name for path in code_files())}
    return name in names or _is_weights_file(name)


def hub_folder_files(folder: str | os.PathLike) -> list[Path]:
    """The files of `folder` that make its Hub folder (`is_hub_folder_file`), without what else lies beside them,
    such as a training run's checkpoints, logs and predictions."""
    return sorted(path for path in Path(folder).iterdir() if path.is_file() and is_hub_folder_file(path.name))


# --- Writing a folder -----------------------------------------------------------------------------------------------


def _fill_folder(
    folder: Path,
    model: XViTForVideoClassification,
    video_processor: XViTVideoProcessor,
    card_text: str,
    check: Callable[[Path], None] | None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Write every file of the folder, `config.json` last, then run `check` on it. The model and the processors are
    saved into a hidden scratch folder first, because `save_pretrained` writes `config.json` before the weights."""
    (folder / CONFIG_NAME).unlink(missing_ok=True)  # rewriting a folder in place: not a model until done
    scratch = Path(tempfile.mkdtemp(prefix=".writing.", dir=folder))
    try:
        model.save_pretrained(scratch, state_dict=state_dict)  # safetensors weights and the config
        video_processor.save_pretrained(scratch)
        image_processor_for(video_processor).save_pretrained(scratch)
        config = json.loads((scratch / CONFIG_NAME).read_text(encoding="utf-8"))
        (scratch / CONFIG_NAME).unlink()
        for path in scratch.iterdir():
            # Transformers writes the weights through a private temporary file (mode 600): give every file the mode
            # any new file gets here.
            path.chmod(0o666 & ~_umask())
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _write_code(folder)
    _write_text_atomically(folder / CARD_NAME, card_text)
    config = {**config, "custom_pipelines": CUSTOM_PIPELINES}  # the multi-view pipeline (pipeline_xvit.py)
    _write_text_atomically(folder / CONFIG_NAME, _json_text(_with_auto_map(config, CONFIG_NAME)))
    if check is not None:
        check(folder)


def write_hub_folder(
    output_dir: str | os.PathLike,
    model: XViTForVideoClassification,
    card: ModelCardInputs,
    video_processor: XViTVideoProcessor | None = None,
    *,
    atomic: bool = True,
    check: Callable[[Path], None] | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write the complete Hub folder of `model` to `output_dir` and return its path.

    Args:
        output_dir: the folder to create.
        model: the video classifier whose weights and config are saved.
        card: what the model card says beyond the config (see `modeling_xvit.hub.card.ModelCardInputs`).
        video_processor: the processor reproducing the model's data pipeline; default `default_video_processor`.
            Its clip length and crop size must be the model's.
        atomic: build the folder next to `output_dir` and move it in place when complete; `output_dir` must then not
            exist or be empty. With `atomic=False` the files are written into `output_dir` (created if needed) and
            replace files of the same names, for example in a training run's output folder.
        check: called with the complete folder before it is moved into place (for example
            `modeling_xvit.hub.verify.check_hub_folder`); raising discards an atomic folder.
        state_dict: the weights to save instead of `model.state_dict()`, such as the full weights that
            `accelerator.get_state_dict` gathers from the shards of an FSDP-wrapped model (`save_pretrained` empties
            the mapping as it writes).
    """
    if not isinstance(model, XViTForVideoClassification):
        raise ConversionError(
            f"A Hub folder holds a video classifier (XViTForVideoClassification), got {type(model).__name__}; the"
            " backbone alone loads from it with AutoModel."
        )
    video_processor = video_processor or default_video_processor(model.config)
    _check_processor_fits(video_processor, model.config)
    card_text = render_model_card(model.config, card)  # fails before anything is written
    if atomic:
        with atomic_output_dir(output_dir) as staging:
            _fill_folder(staging, model, video_processor, card_text, check, state_dict)
    else:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        _fill_folder(Path(output_dir), model, video_processor, card_text, check, state_dict)
    return Path(output_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the code files, handler.py and auto_map of a model folder.")
    parser.add_argument("folder", help="a folder holding the weights and configs (config.json, ...)")
    args = parser.parse_args(argv)
    return exit_status(lambda: print(f"Wrote the code files of {write_code_files(args.folder)}"))


if __name__ == "__main__":
    sys.exit(main())
