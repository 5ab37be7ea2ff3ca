"""The page in headless Chromium (Debian's chromium and chromedriver, driven by selenium), offline.

The grid for a seed must equal what `avb-zoo sample --seed` writes, a dropped PNG of any kind (8 or 16 bits,
grey, palette, colour, with alpha) must give the input, reconstruction and posterior draws that `load_images`,
`avb-zoo reconstruct` and `avb-zoo encode` give, and bad input (a decompression bomb, a damaged file, a broken
folder, a bad seed) must leave a message on the page and no stale result. `serve` is tried as a browser meets
it: links out of the folder and other Host names are refused. The layout must fit a 360-px phone.
Skips, saying why, where Chromium, chromedriver, selenium or the prepared onnxruntime-web is missing.
``AVB_ZOO_SCREENSHOT=PATH`` saves a screenshot of the page after a walk and a drop; ``AVB_ZOO_SCREENSHOTS=DIR``
saves web-page-360.png and web-page-500.png there from the phone-width test.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from PIL import Image
from png_files import bomb, every_kind, header, png
from web_fixtures import TOY, require_runtime

from avb_zoo.web.bundle import export_web
from avb_zoo.web.serve import make_server

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium")) if p and Path(p).is_file()), None)
CHROMEDRIVER = shutil.which("chromedriver")
TOLERANCE = 1e-4  # max abs difference in pixel probability, page vs onnxruntime in Python


def start_browser(*extra: str):
    """Headless Chromium through Debian's chromedriver (never selenium's own download of a browser)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
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
        "--window-size=1000,900",
    ):
        options.add_argument(arg)
    for arg in extra:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for console_errors()
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A root served on 127.0.0.1 holding the toy's page and broken copies of it, one folder each."""
    require_runtime()
    root = tmp_path_factory.mktemp("site")
    export_web(TOY, root / "toy")
    for name in ("no-encoder", "no-sampler", "bad-width", "no-wasm", "no-model", "bad-graph"):
        shutil.copytree(root / "toy", root / name)
    (root / "no-encoder/model/encoder.onnx").unlink()
    (root / "no-sampler/model/sampler.onnx").unlink()
    page = json.loads((root / "bad-width/model/page.json").read_text())
    page["latent_dim"] = 3
    (root / "bad-width/model/page.json").write_text(json.dumps(page))
    (root / "no-wasm/ort/ort-wasm-simd-threaded.wasm").unlink()
    shutil.rmtree(root / "no-model/model")
    (root / "bad-graph/model/sampler.onnx").write_bytes(b"these bytes are not an ONNX graph")
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("outside the site")
    (root / "leak.txt").symlink_to(secret)
    (root / "outside").symlink_to(secret.parent)
    server = make_server(root, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(site):
    driver = start_browser()
    yield driver
    driver.quit()


def state(driver, key: str | None = None, timeout: float = 20.0):
    """window.avbZoo once the page's start-up is done (or ``key`` is set), failing with what the page shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = driver.execute_script("return window.avbZoo || null")
        if page and (page.get(key) if key else page.get("done")):
            return page
        time.sleep(0.05)
    raise AssertionError(f"page not ready within {timeout}s; it shows: {driver.find_element('tag name', 'body').text}")


def console_errors(driver) -> list[str]:
    """The console's errors since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def reuse_or_open_toy(driver, site: str) -> None:
    """The toy page as an earlier test left it if it is ready and shows no error, else freshly opened."""
    fresh = (
        "return window.avbZoo && window.avbZoo.ready && !window.avbZoo.error && location.pathname === '/toy/index.html'"
    )
    if not driver.execute_script(fresh):
        open_page(driver, f"{site}/toy/index.html")


def open_page(driver, url: str):
    driver.get(url)
    return state(driver)


def cli(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


def png_bytes(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=None).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def drop(driver, name: str, data: bytes, mime: str = "image/png") -> dict:
    """Drop a file on the page's drop zone (a real drop event carrying the file), then the page's state."""
    driver.execute_script("window.avbZoo.encoded = null; window.avbZoo.encodeError = null;")
    driver.execute_script(
        """
        const [name, b64, mime] = arguments;
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: mime }));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
        """,
        name,
        base64.b64encode(data).decode(),
        mime,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = driver.execute_script("return window.avbZoo")
        if page.get("encoded") or page.get("encodeError"):
            return page
        time.sleep(0.05)
    raise AssertionError("the page neither encoded the image nor said why")


def test_grid_equals_the_cli_for_the_same_seed(browser, site, tmp_path):
    console_errors(browser)
    page = open_page(browser, f"{site}/toy/index.html")
    assert console_errors(browser) == []  # the content security policy lets through all the page needs
    assert page["error"] is None and page["ready"] and page["threads"] == 1  # not isolated: single-threaded
    assert "toy-avb-v1" in browser.title
    metrics = browser.find_element("id", "metrics").text
    assert (
        "log p(x) = -1.413 nats (AIS, 2000 steps x 1000 chains; Monte Carlo s.e. 0.0047, spread s.e. 0.01 "
        "over 4 test images)" in metrics
    ), metrics
    for seed in ("0", "-12345"):
        if seed != "0":
            field = browser.find_element("id", "seed")
            field.clear()
            field.send_keys(seed)
            browser.execute_script("window.avbZoo.grid = null")
            browser.find_element("id", "sample").click()
            page = state(browser, "grid")
        cli("sample", str(TOY), "-n", "64", "--seed", seed, "--npy", str(tmp_path / "s.npy"), "--provider", "cpu")
        expected = np.load(tmp_path / "s.npy")
        got = np.array(page["grid"], dtype=np.float32).reshape(expected.shape)
        diff = float(np.abs(got - expected).max())
        print(f"seed {seed}: max abs difference page vs `avb-zoo sample` = {diff:.3g}")
        assert diff <= TOLERANCE and page["seed"] == seed
        assert f"grid of seed {seed}" in browser.find_element("id", "seed-shown").text
    for typed in ("1.5", "abc"):
        field = browser.find_element("id", "seed")
        field.clear()
        field.send_keys(typed)
        browser.find_element("id", "sample").click()
        assert f'The seed must be a whole number, got "{typed}".' in state(browser, "error")["error"]
        assert "grid of seed -12345" in browser.find_element("id", "seed-shown").text  # the last grid stays


def test_enter_in_the_seed_box_samples(browser, site, tmp_path):
    from selenium.webdriver.common.keys import Keys

    open_page(browser, f"{site}/toy/index.html")
    field = browser.find_element("id", "seed")
    field.clear()
    browser.execute_script("window.avbZoo.grid = null")
    field.send_keys("77", Keys.ENTER)
    page = state(browser, "grid")
    assert page["seed"] == "77" and browser.current_url.endswith("/toy/index.html")  # no form submission
    cli("sample", str(TOY), "-n", "64", "--seed", "77", "--npy", str(tmp_path / "s.npy"), "--provider", "cpu")
    assert np.abs(np.array(page["grid"]).reshape(64, -1) - np.load(tmp_path / "s.npy")).max() <= TOLERANCE
    field.clear()
    field.send_keys(Keys.ENTER)
    assert "The seed box is empty" in state(browser, "error")["error"]


def test_dragging_between_cells_walks_between_their_codes(browser, site):
    from selenium.webdriver import ActionChains

    page = open_page(browser, f"{site}/toy/index.html")
    grid = browser.find_element("id", "grid")
    cell = grid.size["width"] / 8
    start, end = (-grid.size["width"] / 2 + cell / 2, -grid.size["height"] / 2 + cell / 2), None
    end = (start[0] + 3 * cell, start[1] + 1 * cell)  # cell 0 -> cell 11 (row 1, column 3)
    chain = ActionChains(browser).move_to_element_with_offset(grid, *map(int, start)).click_and_hold()
    chain.move_to_element_with_offset(grid, *map(int, end)).release().perform()
    walk = state(browser, "walk")["walk"]
    assert (walk["from"], walk["to"]) == (0, 11)
    frames = np.array(walk["probs"]).reshape(10, -1)
    grid_probs = np.array(page["grid"]).reshape(64, -1)
    np.testing.assert_allclose(frames[0], grid_probs[0], atol=1e-6)
    np.testing.assert_allclose(frames[-1], grid_probs[11], atol=1e-6)


def test_a_dropped_png_gives_the_clis_reconstruction(browser, site, tmp_path):
    open_page(browser, f"{site}/toy/index.html")
    image = np.array([[0, 255], [255, 255]], dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(png_bytes(image, "L"))
    page = drop(browser, "x.png", (tmp_path / "x.png").read_bytes())
    assert page["encodeError"] is None
    cli(
        "reconstruct",
        str(TOY),
        str(tmp_path / "x.png"),
        "--out",
        str(tmp_path / "r.png"),
        "--npy",
        str(tmp_path / "r.npy"),
    )
    cli("encode", str(TOY), str(tmp_path / "x.png"), "--samples", "9", "--out", str(tmp_path / "z.npy"))
    probs = np.array(page["encoded"]["probs"], dtype=np.float32).reshape(9, -1)
    recon_diff = float(np.abs(probs[0] - np.load(tmp_path / "r.npy")[0]).max())
    z_diff = float(np.abs(np.array(page["encoded"]["z"]).reshape(9, -1) - np.load(tmp_path / "z.npy")[0]).max())
    print(f"dropped PNG: reconstruction max abs difference {recon_diff:.3g}, posterior z {z_diff:.3g}")
    assert recon_diff <= TOLERANCE and z_diff <= TOLERANCE
    # an RGB image reads as Pillow's luma, as the CLI reads it
    rgb = np.array([[[10, 200, 30], [255, 0, 0]], [[0, 0, 255], [90, 90, 90]]], dtype=np.uint8)
    page = drop(browser, "rgb.png", png_bytes(rgb, "RGB"))
    (tmp_path / "rgb.png").write_bytes(png_bytes(rgb, "RGB"))
    cli(
        "reconstruct",
        str(TOY),
        str(tmp_path / "rgb.png"),
        "--out",
        str(tmp_path / "r.png"),
        "--npy",
        str(tmp_path / "r.npy"),
    )
    assert np.abs(np.array(page["encoded"]["probs"][:4]) - np.load(tmp_path / "r.npy")[0]).max() <= TOLERANCE
    if os.environ.get("AVB_ZOO_SCREENSHOT"):  # the README's picture: after a walk and this drop
        browser.execute_script("return window.avbZoo.walkTo(0, 7)")
        state(browser, "walk")
        browser.set_window_size(1000, 1250)
        browser.save_screenshot(os.environ["AVB_ZOO_SCREENSHOT"])
        browser.set_window_size(1000, 900)


def test_every_kind_of_png_is_read_as_load_images_reads_it(browser, site, tmp_path):
    """8- and 16-bit grey, palette (with and without transparency), RGB, grey+alpha, RGBA, interlaced: the
    page's input equals load_images' exactly; a 16-bit file's reconstruction equals `avb-zoo reconstruct`."""
    import warnings

    from avb_zoo.runtime.inputs import load_images

    open_page(browser, f"{site}/toy/index.html")
    for name, data in every_kind(2, 2, seed=3).items():
        (tmp_path / name).write_bytes(data)
        page = drop(browser, name, data)
        assert page["encodeError"] is None, f"{name}: {page['encodeError']}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "made grey", "looks inverted": the values are what matters here
            expected = load_images(tmp_path / name, (1, 2, 2))[0]
        got = np.array(page["encoded"]["x"], dtype=np.float32)
        assert np.array_equal(got, expected), f"{name}: page {got}, load_images {expected}"
    levels = np.array([[1, 300], [40000, 65534]])  # not multiples of 257: an 8-bit canvas would round them
    (tmp_path / "g16.png").write_bytes(png(levels, 16, 0))
    page = drop(browser, "g16.png", (tmp_path / "g16.png").read_bytes())
    np.testing.assert_array_equal(page["encoded"]["x"], (levels.reshape(-1) / 65535).astype(np.float32))
    cli(
        "reconstruct",
        str(TOY),
        str(tmp_path / "g16.png"),
        "--out",
        str(tmp_path / "r.png"),
        "--npy",
        str(tmp_path / "r.npy"),
    )
    cli("encode", str(TOY), str(tmp_path / "g16.png"), "--samples", "9", "--out", str(tmp_path / "z.npy"))
    recon_diff = float(np.abs(np.array(page["encoded"]["probs"][:4]) - np.load(tmp_path / "r.npy")[0]).max())
    z_diff = float(np.abs(np.array(page["encoded"]["z"]).reshape(9, -1) - np.load(tmp_path / "z.npy")[0]).max())
    print(f"16-bit PNG: reconstruction max abs difference {recon_diff:.3g}, posterior z {z_diff:.3g}")
    assert recon_diff <= TOLERANCE and z_diff <= TOLERANCE


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """A valid 16000x16000 PNG (about 250 kB, 256 M pixels) and a 30000x30000 one cut after its first data."""
    return {
        "bomb16k.png": bomb(16000, 16000),
        "bomb30k.png": bomb(30000, 100)[:50_000].replace(header(30000, 100), header(30000, 30000)),
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "bomb16k.png",
            "bomb16k.png declares 16,000x16,000 = 256,000,000 pixels; input images are at most 67,108,864 pixels.",
        ),
        (
            "bomb30k.png",
            "bomb30k.png declares 30,000x30,000 = 900,000,000 pixels; input images are at most 67,108,864 pixels.",
        ),
    ],
)
def test_a_decompression_bomb_is_refused_from_its_header_at_once(browser, site, bombs, name, message):
    reuse_or_open_toy(browser, site)
    started = time.monotonic()
    page = drop(browser, name, bombs[name])
    seconds = time.monotonic() - started
    print(
        f"{name} ({len(bombs[name]):,} bytes): refused in {seconds:.2f} s (the file's transfer into the page included)"
    )
    assert page["encodeError"] == message and seconds < 1.0
    browser.find_element("id", "sample").click()  # the page is still usable
    assert state(browser, "grid")["error"] is None


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("big.png", png_bytes(np.zeros((3, 3), np.uint8), "L"), "big.png is 3x3 pixels; the model takes 2x2"),
        ("notes.txt", b"not an image at all", "notes.txt is not a PNG image"),
        (
            "broken.png",
            b"\x89PNG\r\n\x1a\n" + b"\0" * 20,
            "broken.png is not a readable PNG image: it has no image header",
        ),
        (
            "cut.png",
            png_bytes(np.zeros((2, 2), np.uint8), "L")[:45],
            "cut.png is not a readable PNG image: the file is truncated",
        ),
        (
            "crc.png",
            png_bytes(np.zeros((2, 2), np.uint8), "L")[:-17]
            + b"\xff"
            + png_bytes(np.zeros((2, 2), np.uint8), "L")[-16:],
            "crc.png is not a readable PNG image: its IDAT chunk fails its checksum",
        ),
        ("a-very-long-file-name-" * 8 + ".png", b"GIF89a", "is not a PNG image"),
    ],
)
def test_bad_images_get_a_message_and_clear_the_old_result(browser, site, name, data, message):
    reuse_or_open_toy(browser, site)
    browser.execute_script("document.getElementById('seed').value = '0'")  # whatever an earlier test typed
    assert drop(browser, "good.png", png_bytes(np.array([[0, 255], [255, 0]], np.uint8), "L"))["encoded"]
    assert browser.find_element("id", "results").is_displayed()
    page = drop(browser, name, data)
    assert page["encodeError"] is not None and message in page["encodeError"]
    assert message in browser.find_element("id", "encode-message").text
    assert page["encoded"] is None and not browser.find_element("id", "results").is_displayed()  # no stale result
    assert page["grid"] is not None and page["error"] is None
    box = browser.find_element("id", "encode-message")
    assert box.rect["x"] + box.rect["width"] <= browser.execute_script("return innerWidth")  # long names wrap


def test_reading_shows_a_status_while_it_works(browser, site):
    """Between the drop and the result the page says it is reading the file."""
    open_page(browser, f"{site}/toy/index.html")
    seen = browser.execute_script(
        """
        const box = document.getElementById("encode-status");
        const seen = [];
        new MutationObserver(() => { if (!box.hidden) seen.push(box.textContent); })
          .observe(box, { attributes: true, childList: true });
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(arguments[0])], "slow.png", { type: "image/png" }));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
        window.avbZoo.seen = seen;
        return seen.length ? seen : (document.getElementById("encode-status").hidden ? [] : [box.textContent]);
        """,
        list(png_bytes(np.array([[0, 255], [255, 0]], np.uint8), "L")),
    )
    page = state(browser, "encoded")
    assert "reading slow.png..." in seen + page.get("seen", [])
    assert not browser.find_element("id", "encode-status").is_displayed()  # gone once done


@pytest.mark.parametrize(
    ("folder", "where", "message"),
    [
        ("no-encoder", "encode-message", "model/encoder.onnx is missing from this folder (HTTP 404)"),
        ("no-sampler", "message", "model/sampler.onnx is missing from this folder (HTTP 404)"),
        ("bad-width", "message", "model/sampler.onnx takes z of width 2, but model/page.json gives 3"),
        (
            "no-wasm",
            "message",
            "ort/ort-wasm-simd-threaded.wasm is missing from this folder (HTTP 404): onnxruntime-web cannot start",
        ),
        ("no-model", "message", "This folder has no model: model/page.json and model/config.json are missing"),
        ("bad-graph", "message", "model/sampler.onnx is not a usable ONNX graph"),
    ],
)
def test_a_broken_folder_says_what_is_wrong(browser, site, folder, where, message):
    console_errors(browser)
    page = open_page(browser, f"{site}/{folder}/index.html")
    assert not page["ready"]
    assert message in browser.find_element("id", where).text
    errors = console_errors(browser)
    assert len(errors) <= 2, errors  # the failed request itself (and its probe), not a cascade
    if folder == "no-encoder":
        assert page["grid"] is not None  # sampling still works without the encoder
    else:
        assert not browser.find_element("id", "grid").is_displayed()  # no empty canvas where the grid would be


def test_serve_refuses_links_out_and_other_host_names(browser, site):
    """As a browser meets `serve`: a link to a file outside the folder and a folder link give 404, folders
    are not listed, and the same server under another name (what a rebinding DNS name looks like) gives 403."""
    for path in ("leak.txt", "outside/secret.txt", "outside/", "toy/model/"):
        browser.get(f"{site}/{path}")
        body = browser.find_element("tag name", "body").text
        assert "404" in body and "outside the site" not in body and "page.json" not in body, (path, body)
    port = site.rsplit(":", 1)[1]
    browser.get(f"http://localhost:{port}/toy/index.html")
    body = browser.find_element("tag name", "body").text
    assert "403" in body and "avbZoo" not in browser.page_source


@pytest.mark.parametrize("width", [360, 500])
def test_the_page_fits_a_phone(browser, site, width):
    """No sideways scrolling at 360 px: the grid, the drop box and the messages shrink or wrap; a drag still
    picks the cells under the pointer."""
    from selenium.webdriver import ActionChains

    browser.set_window_size(width, 900)
    try:
        open_page(browser, f"{site}/toy/index.html")
        drop(browser, "x.png", png_bytes(np.array([[0, 255], [255, 0]], np.uint8), "L"))
        inner, scroll = browser.execute_script("return [innerWidth, document.documentElement.scrollWidth]")
        assert scroll <= inner, f"the page is {scroll} px wide in a {inner}-px window"
        for element in ("grid", "drop", "recon", "posterior", "pad", "metrics"):
            rect = browser.find_element("id", element).rect
            assert rect["x"] >= 0 and rect["x"] + rect["width"] <= inner, (element, rect)
        grid = browser.find_element("id", "grid")
        browser.execute_script("arguments[0].scrollIntoView()", grid)
        cell = grid.size["width"] / 8
        start = (-grid.size["width"] / 2 + cell / 2, -grid.size["height"] / 2 + cell / 2)
        end = (start[0] + 3 * cell, start[1] + 1 * cell)
        chain = ActionChains(browser).move_to_element_with_offset(grid, *map(int, start)).click_and_hold()
        chain.move_to_element_with_offset(grid, *map(int, end)).release().perform()
        walk = state(browser, "walk")["walk"]
        assert (walk["from"], walk["to"]) == (0, 11)
        shots = os.environ.get("AVB_ZOO_SCREENSHOTS")
        if shots:
            browser.save_screenshot(str(Path(shots) / f"web-page-{width}.png"))
    finally:
        browser.set_window_size(1000, 900)


def test_no_webassembly_gets_a_message(browser, site):
    """A browser without WebAssembly (the global removed before any script runs) gets a message, not a blank page."""
    added = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete globalThis.WebAssembly;"}
    )
    try:
        page = open_page(browser, f"{site}/toy/index.html")
        assert "This browser has no WebAssembly" in browser.find_element("id", "message").text
        assert page["grid"] is None
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


def test_cross_origin_isolated_runs_threads_and_draws_the_same_grid(browser, site, tmp_path):
    """Served with COOP/COEP (`avb-zoo serve --isolated`) the page runs onnxruntime-web on threads: same grid."""
    server = make_server(Path(tmp_path), 0, isolated=True)
    export_web(TOY, tmp_path / "toy")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = open_page(browser, f"http://127.0.0.1:{server.server_address[1]}/toy/index.html")
    finally:
        server.shutdown()
        server.server_close()
    assert page["error"] is None and browser.execute_script("return self.crossOriginIsolated") is True
    cli("sample", str(TOY), "-n", "64", "--seed", "0", "--npy", str(tmp_path / "s.npy"), "--provider", "cpu")
    diff = float(np.abs(np.array(page["grid"]).reshape(64, -1) - np.load(tmp_path / "s.npy")).max())
    print(f"isolated, {page['threads']} threads: max abs difference page vs `avb-zoo sample` = {diff:.3g}")
    assert page["threads"] > 1 or os.cpu_count() == 1
    assert diff <= TOLERANCE


def test_a_drawing_is_encoded_as_the_cli_encodes_it(browser, site, tmp_path):
    """Strokes on the drawing pad, then 'Encode the drawing': the same reconstruction as the CLI for those pixels."""
    from selenium.webdriver import ActionChains

    open_page(browser, f"{site}/toy/index.html")
    browser.execute_script("window.avbZoo.encoded = null")
    pad = browser.find_element("id", "pad")
    browser.execute_script("arguments[0].scrollIntoView()", pad)
    quarter = (-pad.size["width"] // 4, -pad.size["height"] // 4)
    chain = ActionChains(browser).move_to_element_with_offset(pad, *quarter).click_and_hold()
    chain.move_to_element_with_offset(pad, 0, 0).release().perform()
    browser.find_element("id", "encode-drawing").click()
    page = state(browser, "encoded")
    x = np.array([page["encoded"]["x"]], dtype=np.float32)
    assert x.max() == 1.0 and x.min() >= 0.0  # the pad was drawn on
    np.save(tmp_path / "x.npy", x)
    cli(
        "reconstruct",
        str(TOY),
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "r.png"),
        "--npy",
        str(tmp_path / "r.npy"),
    )
    assert np.abs(np.array(page["encoded"]["probs"][:4]) - np.load(tmp_path / "r.npy")[0]).max() <= TOLERANCE
