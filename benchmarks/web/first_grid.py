"""Time from page load to the first grid (64 samples) of a model's browser page, in headless Chromium.

    python benchmarks/web/first_grid.py MODEL_DIR [--loads 5] [--json out.json] [--screenshot page.png]
        [--screenshot-widths 360,1200] [--digit tests/data/mnist-subset]

``--screenshot`` saves the whole page after the loads (a dropped digit with ``--digit``, and a walk); with
``--screenshot-widths`` one per window width, the width added to the file name (page-360.png, ...).

Two kinds of load, ``--loads`` of each. Cold: a fresh browser with an empty profile (nothing cached, no
compiled wasm kept), one navigation. Warm: one browser, after a first load that is not counted, a new
navigation to the page each time (about:blank between), so whatever the server's headers let the browser keep
is reused. The figure is ``performance.now()`` when the grid is drawn: from navigation start through loading
the page, onnxruntime-web and the sampler graph, drawing z from the seed, running the sampler at batch 64 and
painting the grid. Uses Debian's chromium and chromedriver through selenium, single-threaded (no isolation
headers), the page served by ``avb-zoo serve``'s server.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from avb_zoo.web.bundle import export_web
from avb_zoo.web.serve import make_server
from avb_zoo.web.vendor import ORT_WEB_VERSION

CHROMIUM, CHROMEDRIVER = "/usr/lib/chromium/chromium", "/usr/bin/chromedriver"


def wait(driver, key: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = driver.execute_script("return window.avbZoo || null")
        if page and page.get(key):
            return page
        time.sleep(0.02)
    raise SystemExit(f"page not ready: {driver.find_element('tag name', 'body').text[:500]}")


def start_browser(profile: Path):
    """Headless Chromium with its own profile folder (so a new one starts with an empty cache)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,1250",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def load(driver, url: str) -> tuple[float, dict, int]:
    """One navigation to the page: ms to the first grid, its parts, and the bytes that came over the network."""
    driver.get(url)
    page = wait(driver, "firstGridMs")
    sent = driver.execute_script(
        "return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]"
        ".reduce((n, e) => n + (e.transferSize || 0), 0)"
    )
    return page["firstGridMs"], page["timings"], int(sent)


def save_page(driver, width: int, path: Path) -> None:
    """A screenshot of the whole page (not only the window) at a window ``width`` px wide."""
    driver.set_window_size(width, 900)
    time.sleep(0.3)  # the layout settles
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def first_test_digit(data_dir: Path) -> bytes:
    """The first MNIST test image as a PNG (the idx file of the committed subset)."""
    raw = gzip.decompress((data_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    pixels = np.frombuffer(raw[16 : 16 + 784], dtype=np.uint8).reshape(28, 28)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--screenshot-widths", default="1000", help="window widths in px, comma-separated")
    parser.add_argument("--digit", type=Path, default=None, help="MNIST folder: drop its first test digit first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_web(args.model, Path(tmp) / "page")
        server = make_server(folder, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        cold, cold_parts, cold_bytes = [], [], []
        for _ in range(args.loads):
            driver = start_browser(Path(tmp) / f"profile-{len(cold)}")
            try:
                ms, part, sent = load(driver, url)
            finally:
                driver.quit()
            cold.append(ms)
            cold_parts.append(part)
            cold_bytes.append(sent)
        driver = start_browser(Path(tmp) / "profile-warm")
        times, parts, warm_bytes = [], [], []
        try:
            load(driver, url)  # the first load fills the cache; not counted
            for _ in range(args.loads):
                driver.get("about:blank")
                ms, part, sent = load(driver, url)
                times.append(ms)
                parts.append(part)
                warm_bytes.append(sent)
            if args.digit is not None:
                data = base64.b64encode(first_test_digit(args.digit)).decode()
                driver.execute_script(
                    """const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
                    const dt = new DataTransfer(); dt.items.add(new File([bytes], "digit.png", {type: "image/png"}));
                    document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt}));""",
                    data,
                )
                wait(driver, "encoded")
            driver.execute_script("return window.avbZoo.walkTo(0, 7)")
            wait(driver, "walk")
            if args.screenshot is not None:
                widths = [int(w) for w in args.screenshot_widths.split(",")]
                for width in widths:
                    path = args.screenshot
                    if len(widths) > 1:
                        path = path.with_name(f"{path.stem}-{width}{path.suffix}")
                    save_page(driver, width, path)
            browser = driver.capabilities.get("browserVersion")
        finally:
            driver.quit()
            server.shutdown()
    page_json = json.loads((Path(args.model) / "config.json").read_text())
    result = {
        "model": page_json.get("id"),
        "model_dir": str(args.model),
        "batch": 64,
        "cold_first_grid_ms": [round(t, 1) for t in cold],
        "cold_first_grid_ms_median": round(statistics.median(cold), 1),
        "cold_median_parts_ms": {k: round(statistics.median(p[k] for p in cold_parts), 1) for k in cold_parts[0]},
        "cold_bytes_transferred": cold_bytes,
        "warm_first_grid_ms": [round(t, 1) for t in times],
        "warm_first_grid_ms_median": round(statistics.median(times), 1),
        "warm_median_parts_ms": {k: round(statistics.median(p[k] for p in parts), 1) for k in parts[0]},
        "warm_bytes_transferred": warm_bytes,
        "parts": "scriptsMs: navigation start to the page's script running (page, manifest, ort script); "
        "sessionMs: onnxruntime-web's wasm start and the sampler's session; gridMs: z, the sampler at batch 64, "
        "painting",
        "browser": f"headless Chromium {browser} (Debian), selenium, single-threaded wasm",
        "onnxruntime_web": ORT_WEB_VERSION,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
