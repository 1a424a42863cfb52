"""The checks that `verify_hub_folder` runs in a fresh process, as a Hub user's machine would load the folder.

`verify_hub_folder` runs this file's text with `python -c` in an empty working folder, offline, with a fresh modules
cache and `modeling_xvit` made unimportable, so that everything must come from the folder's own remote code. It
prints one line per check, `CHECK_PREFIX` followed by a JSON object `{"name", "ok", "detail"}`. It imports only the
standard library, torch and transformers.

    python -c "$(cat modeling_xvit/hub/checks.py)" FOLDER VIDEO   (or: python modeling_xvit/hub/checks.py ...)
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

CHECK_PREFIX = "xvit-hub-check "
SCORE_TOLERANCE = 1e-4


def _is_remote_code(obj) -> bool:
    return type(obj).__module__.startswith("transformers_modules.")


def _require_remote_code(obj) -> str:
    if not _is_remote_code(obj):
        raise AssertionError(f"{type(obj).__module__}.{type(obj).__name__} is not the folder's remote code")
    return type(obj).__name__


def _check_predictions(predictions, labels: dict, top_k: int) -> None:
    if not isinstance(predictions, list) or len(predictions) != top_k:
        raise AssertionError(f"expected a list of {top_k} predictions, got {predictions!r}")
    scores = [prediction["score"] for prediction in predictions]
    if not all(math.isfinite(score) for score in scores):
        raise AssertionError(f"non-finite scores (the model answers NaN or infinity): {predictions!r}")
    if scores != sorted(scores, reverse=True) or not all(
        prediction["label"] in labels.values() for prediction in predictions
    ):
        raise AssertionError(f"predictions not sorted by score or with unknown labels: {predictions!r}")


def _load_endpoint_handler(folder: str):
    """Import handler.py as the Inference Endpoints toolkit does: the folder first on sys.path, module `handler`."""
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("handler", Path(folder) / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    return module.EndpointHandler(folder)


def run_checks(folder: str, video: str) -> list[tuple[str, Callable[[], str]]]:
    """The named checks, each a function returning a short description or raising."""
    from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification, AutoVideoProcessor, pipeline

    found = {}

    def config() -> str:
        found["config"] = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        return f"{_require_remote_code(found['config'])}, {found['config'].num_labels} labels"

    def model() -> str:
        return _require_remote_code(AutoModel.from_pretrained(folder, trust_remote_code=True))

    def classifier() -> str:
        return _require_remote_code(AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True))

    def processor() -> str:
        return _require_remote_code(AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True))

    def video_pipeline() -> str:
        classify = pipeline("video-classification", model=folder, trust_remote_code=True)
        _require_remote_code(classify.model)
        _require_remote_code(classify.video_processor)
        found["top_k"] = min(5, classify.model.config.num_labels)
        found["classify"] = classify
        found["pipeline"] = classify(video, top_k=found["top_k"])
        _check_predictions(found["pipeline"], classify.model.config.id2label, found["top_k"])
        return f"top-1 {found['pipeline'][0]['label']!r} ({found['pipeline'][0]['score']:.3f})"

    def batched_pipeline() -> str:
        if "pipeline" not in found:
            raise AssertionError("the pipeline did not load or answer")
        batched = found["classify"]([video] * 3, batch_size=2, top_k=found["top_k"])
        expected = found["pipeline"]
        for answer in batched:
            _check_predictions(answer, found["classify"].model.config.id2label, found["top_k"])
            if [entry["label"] for entry in answer] != [entry["label"] for entry in expected] or max(
                abs(a["score"] - b["score"]) for a, b in zip(answer, expected, strict=True)
            ) > SCORE_TOLERANCE:
                raise AssertionError(f"batched, the pipeline answers {answer!r}; one at a time {expected!r}")
        return "3 videos in batches of 2, the same answers as one at a time"

    def endpoint_handler() -> str:
        handler = _load_endpoint_handler(folder)
        top_k = found.get("top_k", 1)
        answer = handler({"inputs": Path(video).read_bytes(), "parameters": {"top_k": top_k}})
        _check_predictions(answer, handler.model.config.id2label, top_k)
        expected = found.get("pipeline")
        if expected is not None and (
            [entry["label"] for entry in answer] != [entry["label"] for entry in expected]
            or max(abs(a["score"] - b["score"]) for a, b in zip(answer, expected, strict=True)) > SCORE_TOLERANCE
        ):
            raise AssertionError(f"the handler answers {answer!r} where the pipeline answers {expected!r}")
        return f"top-1 {answer[0]['label']!r} ({answer[0]['score']:.3f}), same as the pipeline"

    def package_not_imported() -> str:
        loaded = [name for name, module in sys.modules.items() if name.startswith("modeling_xvit") and module]
        if loaded:
            raise AssertionError(f"the installed package was imported: {loaded}")
        return "everything came from the folder"

    return [
        ("AutoConfig", config),
        ("AutoModel", model),
        ("AutoModelForVideoClassification", classifier),
        ("AutoVideoProcessor", processor),
        ('pipeline("video-classification")', video_pipeline),
        ("pipeline batch_size=2", batched_pipeline),
        ("Inference Endpoints handler", endpoint_handler),
        ("no modeling_xvit import", package_not_imported),
    ]


def _exit_with_parent() -> None:
    """End this process as soon as the process that started it is gone: a converter killed during its folder check
    (even by SIGKILL, which it cannot pass on) must not leave the check running."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:  # an orphan is adopted by another process
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="The model folder to load.")
    parser.add_argument("video", help="A video for the pipeline and the handler.")
    args = parser.parse_args(argv)
    _exit_with_parent()
    sys.modules["modeling_xvit"] = None  # `import modeling_xvit` now fails: only the folder's code can be used
    for name, check in run_checks(args.folder, args.video):
        try:
            result = {"name": name, "ok": True, "detail": check()}
        except Exception as error:  # every check reports, whatever broke
            result = {"name": name, "ok": False, "detail": f"{type(error).__name__}: {error}"}
        print(CHECK_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
