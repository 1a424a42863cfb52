"""The README's screenshot of the Space: the page as a user sees it after classifying a video, in headless Chromium.

    python examples/space/screenshot.py --video clip.mp4 [--model FOLDER_OR_HUB_ID] [--videos DIR] \\
        [--num-temporal-views 2 --num-spatial-crops 3] [--output examples/space/screenshot.png]

Serves the app on 127.0.0.1, opens it in headless Chromium (the Debian package `chromium`, or `--chromium PATH`),
uploads `--video`, sets the views (under **Views**) when asked, presses Classify, waits for the labels and the strip
of frames, and saves the whole page as a PNG reduced to 256 colours. Needs the `screenshot` extra (`pip install -e
".[screenshot]"`: Gradio and Playwright's Python driver; Playwright's own browser download is not used).
"""

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from app import STRIP_ID, TOP_K_ID, build_app, launch

DEFAULT_OUTPUT = Path(__file__).with_name("screenshot.png")
# A headless browser that stays off the network: no QUIC, sync, component updates or first-run pages.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
TIMEOUT_MS = 120_000


def set_views(page, num_temporal_views: int | None, num_spatial_crops: int | None) -> None:
    """Set the page's view controls (in the closed **Views** accordion) to the given values."""
    if num_temporal_views is None and num_spatial_crops is None:
        return
    page.get_by_text("Views", exact=True).click()
    if num_temporal_views is not None:
        page.get_by_label("number input for Clips over time").fill(str(num_temporal_views))
        page.get_by_label("number input for Clips over time").press("Enter")
    if num_spatial_crops is not None:
        page.get_by_label(str(num_spatial_crops), exact=True).check()


def take_screenshot(
    url: str,
    video: Path,
    output: Path,
    chromium: str,
    width: int,
    num_temporal_views: int | None = None,
    num_spatial_crops: int | None = None,
) -> None:
    """Open `url`, classify `video` through the page with the given views (default the page's) and save the whole
    page to `output` (PNG, 256 colours)."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(url)
            page.locator("input[type=file]").first.set_input_files(video)
            page.locator("video").first.wait_for(timeout=TIMEOUT_MS)
            set_views(page, num_temporal_views, num_spatial_crops)
            page.get_by_role("button", name="Classify").click()
            page.locator(f"#{STRIP_ID} img").wait_for(timeout=TIMEOUT_MS)
            page.locator(f"#{TOP_K_ID} .bar").first.wait_for(timeout=TIMEOUT_MS)
            page.wait_for_timeout(500)  # the label bars animate in
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output), full_page=True)
        finally:
            browser.close()
    with Image.open(output) as picture:
        reduced = picture.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    reduced.save(output, optimize=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, required=True, help="the video to classify on the page")
    parser.add_argument("--model", help="a model folder or a Hub model id (default: the app's default)")
    parser.add_argument("--videos", type=Path, help="a folder of example videos shown on the page")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"the PNG (default {DEFAULT_OUTPUT})")
    parser.add_argument("--chromium", default=shutil.which("chromium"), help="the Chromium binary (default: chromium)")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in pixels (default 1280)")
    parser.add_argument("--num-temporal-views", type=int, help="clips over time (default: the model's)")
    parser.add_argument("--num-spatial-crops", type=int, choices=[1, 3], help="crops per clip (default: the model's)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.chromium:
        print("error: no chromium on PATH: `apt-get install chromium`, or pass --chromium PATH.", file=sys.stderr)
        return 1
    if not args.video.is_file():
        print(f"error: --video {args.video}: no such file.", file=sys.stderr)
        return 1
    try:
        demo = build_app(args.model, args.videos)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    launch(demo, host="127.0.0.1", block=False)
    try:
        take_screenshot(
            demo.local_url,
            args.video,
            args.output,
            args.chromium,
            args.width,
            args.num_temporal_views,
            args.num_spatial_crops,
        )
    finally:
        demo.close()
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
