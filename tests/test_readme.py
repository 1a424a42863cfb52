"""The README is a front door: short, its links into docs/ resolve, and its quick start and CPU fine-tuning example
run as written (with `.venv/bin/...` pointing at this interpreter's environment); so do the docs' export examples."""

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import offline_environment, started

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

# Every code block of the README, by "section #n" (n counts the blocks of that section from 1), is either run here or
# named with the reason it is not: a new block must be added to one of these.
RUN_AS_WRITTEN = {
    "Quick start #1",
    "Quick start #2",
    "Fine-tune on a CPU in a few minutes #1",
    "Fine-tune on a CPU in a few minutes #2",
}
NOT_RUN_HERE = {
    "Two commands #1": "`make demo` and `make test`: the test suite is what `make test` runs",
    "Install #1": "`make install` builds the environment these tests already run in",
    "Development #1": "the make targets of the test suite, lint and benchmarks",
    "Citation #1": "BibTeX, not a command",
}
# Python blocks of docs/ run here as written, by (document, "section #n"); the others need a GPU, a checkpoint that is
# not in the repository, data or the network, or are fragments of a larger program.
DOCS_RUN_AS_WRITTEN = {
    ("export-and-deployment.md", "torch.export #1"),
    ("export-and-deployment.md", "ONNX #1"),
    ("export-and-deployment.md", "int8 dynamic quantisation #1"),
    ("export-and-deployment.md", "PEFT adapters #1"),
}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^(#{1,6}) (.+)$", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def code_blocks(text: str) -> dict[str, str]:
    """The fenced code blocks of a Markdown text by "section #n", where section is the heading above the block."""
    headings = [(match.start(), match.group(2).strip()) for match in HEADING.finditer(text)]
    blocks, counts = {}, {}
    for match in FENCE.finditer(text):
        section = next((title for start, title in reversed(headings) if start < match.start()), "(top)")
        counts[section] = counts.get(section, 0) + 1
        blocks[f"{section} #{counts[section]}"] = match.group(2)
    return blocks


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())  # a "# comment" inside a code block is not a heading
    return {github_anchor(match.group(2)) for match in HEADING.finditer(text)}


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines < MAX_README_LINES, f"README.md has {lines} lines, over {MAX_README_LINES}: move text to docs/"


def test_every_readme_block_is_run_or_named():
    blocks = set(code_blocks(README.read_text()))
    unnamed = blocks - RUN_AS_WRITTEN - set(NOT_RUN_HERE)
    gone = (RUN_AS_WRITTEN | set(NOT_RUN_HERE)) - blocks
    assert not unnamed, f"README blocks neither run nor named in tests/test_readme.py: {sorted(unnamed)}"
    assert not gone, f"blocks named in tests/test_readme.py that the README no longer has: {sorted(gone)}"


def test_readme_links_every_docs_file():
    linked = {(README.parent / link.split("#")[0]).resolve() for link in relative_links(README)}
    unlinked = [path.name for path in sorted(DOCS.glob("*.md")) if path.resolve() not in linked]
    assert not unlinked, f"docs not reachable from the README's table of contents: {unlinked}"


@pytest.mark.parametrize("document", [README, *sorted(DOCS.glob("*.md"))], ids=lambda path: path.name)
def test_relative_links_resolve(document):
    broken = []
    for link in relative_links(document):
        target, _, anchor = link.partition("#")
        path = (document.parent / target).resolve() if target else document
        if not path.exists():
            broken.append(f"{link} (no file {path})")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link} (no heading #{anchor} in {path.name})")
    assert not broken, f"{document.name}: broken links: {broken}"


def make_clone(folder: Path) -> Path:
    """`folder` made to look like the repository root to the README's commands: `examples/` is the repository's, and
    `.venv` is the environment these tests run in."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the README's commands run `.venv/bin/...`: run the tests from a virtual environment")
    (folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    return folder


@pytest.fixture
def clone(tmp_path) -> Path:
    return make_clone(tmp_path)


def start(command: list[str], cwd: Path) -> contextlib.AbstractContextManager[subprocess.Popen]:
    return started(command, cwd=cwd, env=offline_environment(cwd))


def finish(process: subprocess.Popen, timeout: int) -> str:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    return stdout


def run(command: list[str], cwd: Path, timeout: int) -> str:
    with start(command, cwd) as process:
        return finish(process, timeout)


@pytest.fixture(scope="module")
def docs_examples(request, tmp_path_factory) -> Iterator[dict[tuple[str, str], subprocess.Popen]]:
    """The docs' blocks that this session's tests run, started side by side (most of each one's time is the import
    of torch and transformers, on one core), each as written in a clone of its own."""
    selected = {
        (item.callspec.params["document"], item.callspec.params["name"])
        for item in request.session.items
        if item.module is request.module and item.originalname == "test_docs_examples_run_as_written"
    }
    with contextlib.ExitStack() as stack:
        processes = {}
        for document, name in sorted(selected):
            clone = make_clone(tmp_path_factory.mktemp("docs-example"))
            (clone / "block.py").write_text(code_blocks((DOCS / document).read_text())[name])
            processes[document, name] = stack.enter_context(start([".venv/bin/python", "block.py"], clone))
        yield processes


@pytest.mark.slow
def test_quick_start_runs_as_written(clone):
    blocks = code_blocks(README.read_text())
    with contextlib.ExitStack() as stack:
        processes = []
        for name in sorted(RUN_AS_WRITTEN):
            if name.startswith("Quick start"):
                script = clone / f"{name.replace(' ', '_').replace('#', '')}.py"
                script.write_text(blocks[name])
                processes.append(stack.enter_context(start([".venv/bin/python", script.name], clone)))
        pipeline_output, model_output = (finish(process, timeout=300) for process in processes)  # run side by side
    assert re.findall(r"'label': '(\w+)'", pipeline_output)[0] == "left"  # examples/space/videos/left.mp4
    assert model_output.splitlines()[-1] == "up"


@pytest.mark.slow
@pytest.mark.usefixtures("docs_examples")  # the docs' blocks run beside it, while its commands run one after another
def test_cpu_fine_tuning_runs_as_written(clone):
    blocks = code_blocks(README.read_text())
    training = blocks["Fine-tune on a CPU in a few minutes #1"]
    run(["bash", "-e", "-c", training], clone, timeout=600)
    output_dirs = re.findall(r"--output_dir (\S+)", training)
    results = json.loads((clone / output_dirs[0] / "all_results.json").read_text())
    # Two of the demo model's own directions with a new classifier: learned in a few steps.
    assert results["eval_top1_accuracy"] >= 0.9 and results["test_top1_accuracy"] >= 0.9, results
    (clone / "classify.py").write_text(blocks["Fine-tune on a CPU in a few minutes #2"])
    output = run([".venv/bin/python", "classify.py"], clone, timeout=300)
    assert re.findall(r"'label': '(\w+)'", output) == ["right"]  # examples/space/videos/right.mp4


@pytest.mark.slow
@pytest.mark.parametrize("document, name", sorted(DOCS_RUN_AS_WRITTEN))
def test_docs_examples_run_as_written(docs_examples, document, name):
    output = finish(docs_examples[document, name], timeout=300)
    if name.startswith(("ONNX", "torch.export")):  # the largest logit differences from the model in torch
        assert all(float(line) < 1e-4 for line in output.splitlines()), output
    elif name.startswith("PEFT"):
        # LoRA r=8 on the backbone's 4 layers x (q_proj, v_proj) of width 64 (8,192) and the classifier (260); the
        # demo model averages its frames (no temporal head), and tests/test_peft.py checks the head is left out.
        assert "trainable params: 8,452 " in output and output.splitlines()[-1] == "XViTForVideoClassification", output
    else:  # "float32: accuracy 1.000 on 100 clips, ...", the same for int8
        accuracies = [float(accuracy) for accuracy in re.findall(r"accuracy ([\d.]+)", output)]
        assert len(accuracies) == 2 and min(accuracies) >= 0.9, output
