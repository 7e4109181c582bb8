"""mode=serve in a real browser: Debian's headless Chromium driven by Playwright, against the server
started through the command line, as a user starts it, with an MLP trained here on the real MNIST.

The server runs in a subprocess rather than in the test process: that is the command users run (its
printed URL, its bind address, its clean stop on Ctrl-C), and Gradio's server threads and TensorFlow
stay out of pytest's process. Every request the page makes to a host other than 127.0.0.1 is
recorded and refused, so each test also shows that the page works offline.
"""

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from alexnet_mnist import data

pytestmark = pytest.mark.real_data

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Chromium off the network: no QUIC, no background updates, syncing or first-run pings.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MAX_FILE_MB = 1  # the server's upload limit here, so that an oversized file stays small
ANSWER = re.compile(r"^(.+) \((\d\.\d{4})\)$")  # mode=predict's `name (probability)`
# Strokes in fractions of the canvas side (x, y): a seven and a zero, as a mouse draws them. Each
# mouse event costs a frame of software WebGL in a GPU-less Chromium: the strokes keep to few of them.
SEVEN = [[(0.25, 0.22), (0.75, 0.22), (0.45, 0.8)]]
ZERO = [[(0.5 + 0.2 * np.sin(a), 0.5 - 0.3 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 13)]]
STEPS = 4  # mouse events from one point of a stroke to the next


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "alexnet_mnist", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained_mlp(tmp_path_factory):
    """An MLP trained 3 epochs on MNIST's training split (about a minute on 2 cores)."""
    run_dir = tmp_path_factory.mktemp("mlp")
    result = run_cli("model=mlp", "train.epochs=3", "progress=false", "report.plots=false", "export.tflite=false",
                     f"hydra.run.dir={run_dir}", cwd=run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_mlp):
    """`python -m alexnet_mnist mode=serve` on a free port; its URL once it says it is serving. Stopped
    with Ctrl-C (SIGINT) at the end, which must end it cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "alexnet_mnist", "mode=serve", f"checkpoint={trained_mlp}", f"serve.port={free_port()}",
         f"serve.max_file_mb={MAX_FILE_MB}", f"hydra.run.dir={trained_mlp}/serve"],
        cwd=trained_mlp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # Ctrl-C as a terminal sends it, even when this suite runs as a background job (which starts
        # with SIGINT ignored, and a child inherits that).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines, url = [], None
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 300
        while url is None and process.poll() is None and waiting.select(deadline - time.monotonic()):
            lines.append(process.stdout.readline())
            url = next(iter(re.findall(r" at (http://127\.0\.0\.1:\d+/)", lines[-1])), None)
    if url is None:
        process.kill()
        pytest.fail("the server did not start:\n" + "".join(lines) + process.stdout.read())
    yield url
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "stopped" in output and "Traceback" not in output, output


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary profile (user-data-dir).
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server, with `page.outside`: the requests to other hosts, all refused."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.outside = []

    def only_this_machine(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            page.outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_machine)
    page.goto(server)
    yield page
    context.close()


def draw(page, strokes):
    """Draw `strokes` with the mouse on the sketchpad, as soon as it shows, with no click on a tool."""
    from playwright.sync_api import expect

    canvas = page.locator("#sketch canvas").first
    expect(canvas).to_be_visible(timeout=60_000)
    # The editor's own record of where its canvas sits in the element, and at what zoom.
    page.wait_for_function("() => window.editor && window.editor.scale_value > 0")
    x, y, scale, side = page.evaluate(
        "() => [window.editor.position_value.x, window.editor.position_value.y, window.editor.scale_value, window.editor.width]"
    )
    box = canvas.bounding_box()
    left, top, shown = box["x"] + x, box["y"] + y, scale * side
    for stroke in strokes:
        page.mouse.move(left + stroke[0][0] * shown, top + stroke[0][1] * shown)
        page.mouse.down()
        for fx, fy in stroke[1:]:
            page.mouse.move(left + fx * shown, top + fy * shown, steps=STEPS)
        page.mouse.up()


def shown_answer(page, expected_name):
    """(name, probability) of the page's answer once it names `expected_name`."""
    from playwright.sync_api import expect

    answer = page.locator("#answer h3")
    expect(answer).to_have_text(re.compile(rf"^{re.escape(expected_name)} \(\d\.\d{{4}}\)$"), timeout=30_000)
    name, probability = ANSWER.match(answer.inner_text().strip()).groups()
    return name, float(probability)


def shown_bars(page):
    """The Label's rows as {class name: percentage}."""
    rows = page.locator("#bars").inner_text().split("\n")
    return {name: int(percent.rstrip("%")) for name, percent in zip(rows, rows[1:]) if re.fullmatch(r"\d+%", percent)}


def test_a_drawn_digit_is_read_right_after_the_page_loads(page):
    draw(page, SEVEN)
    name, probability = shown_answer(page, "7")
    assert probability > 0.5
    bars = shown_bars(page)
    assert sorted(bars) == [str(digit) for digit in range(10)]
    assert bars["7"] == round(100 * probability) and max(bars, key=bars.get) == "7"
    assert abs(sum(bars.values()) - 100) <= 5
    # The 28x28 image the model saw is shown, and the page asked for nothing outside this machine.
    assert page.locator("#seen img").count() == 1
    assert page.outside == []
    if os.environ.get("SERVE_SCREENSHOT"):  # docs/serving.md's picture
        page.screenshot(path=os.environ["SERVE_SCREENSHOT"], full_page=True)


@pytest.fixture
def photo_of_a_test_digit(tfds_data_dir, tmp_path):
    """MNIST's first test digit (a 7), written 6x larger in grey ink on unevenly lit, grainy paper (JPEG)."""
    images, labels, _ = data.load("mnist", "test[:1]", data_dir=tfds_data_dir)
    ink = np.asarray(Image.fromarray(images[0, ..., 0]).resize((168, 168), Image.Resampling.BILINEAR)) / 255
    rows, cols = np.mgrid[0:300, 0:260]
    paper = 0.55 + 0.3 * cols / 260 + np.random.default_rng(0).normal(0, 0.03, rows.shape)
    paper[60:228, 40:208] *= 1 - 0.75 * ink
    path = tmp_path / "seven.jpg"
    Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8)).save(path, quality=90)
    return path, str(labels[0])


def upload(page, path):
    page.get_by_role("tab", name="Photo").click()
    page.locator("#photo input[type=file]").set_input_files(path)


def test_an_uploaded_photo_is_read_as_mode_predict_reads_it(page, trained_mlp, photo_of_a_test_digit):
    path, label = photo_of_a_test_digit
    upload(page, path)
    name, probability = shown_answer(page, label)
    readme_photo = REPO / "docs" / "pictures" / "photo_digit.jpg"
    predicted = run_cli("mode=predict", f"checkpoint={trained_mlp}", f"inputs=[{path},{readme_photo}]", cwd=path.parent)
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.strip().splitlines()
    # The same file: the same class and the same probability, to the printed digit.
    assert lines[-2] == f"{path}: {name} ({probability:.4f})"
    # The README's own example: its photographed 2 is read as a 2 by a trained model (this MLP, as
    # the README's AlexNet).
    assert re.fullmatch(rf"{re.escape(str(readme_photo))}: 2 \(0\.\d{{4}}\)", lines[-1]), lines[-1]
    assert page.outside == []


def test_bad_uploads_get_a_message_and_drawing_still_works(page, tmp_path):
    from playwright.sync_api import expect

    oversized = tmp_path / "large.png"
    pixels = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)  # noise: PNG cannot shrink it
    Image.fromarray(pixels).save(oversized)
    assert oversized.stat().st_size > MAX_FILE_MB * 2**20
    upload(page, oversized)
    expect(page.get_by_text(re.compile("exceed the maximum allowed size"))).to_be_visible()
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("a shopping list, not a picture")
    page.locator("#photo input[type=file]").set_input_files(not_an_image)
    expect(page.locator("#status")).to_have_text("That file is not an image: drop a PNG, JPEG or WebP photo.")
    page.get_by_role("tab", name="Draw").click()
    expect(page.locator("#status")).to_have_text("The canvas is blank: draw a digit.")
    draw(page, ZERO)
    shown_answer(page, "0")
    expect(page.locator("#status")).to_have_text("")
    assert page.outside == []


def test_the_api_answers_gradio_client(server, photo_of_a_test_digit):
    from gradio_client import Client, handle_file

    path, label = photo_of_a_test_digit
    client = Client(server, verbose=False)
    bars, seen, answer, status = client.predict(handle_file(str(path)), api_name="/photo")
    assert ANSWER.match(answer.removeprefix("### ")).group(1) == label and status == ""
    assert bars["label"] == label and len(bars["confidences"]) == 10
    assert np.asarray(Image.open(seen)).shape[:2] == (224, 224)
