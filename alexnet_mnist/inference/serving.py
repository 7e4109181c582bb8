"""The page of `mode=serve`: draw a digit or drop a photo and see what the model reads (Gradio, the
optional `[demo]` extra).

The page prepares images and asks the model exactly as `mode=predict` does (`prediction.open_image`,
the dataset's preparation, `Classifier`, `answer`), so both give the same class and probability for
the same file. It works offline: Gradio's analytics are off, there is no share link, and every asset comes from this server.
"""

import hashlib
import io
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_mnist.atomic_files import atomic_path

from alexnet_mnist.config import Invert
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference.classes import Dataset
from alexnet_mnist.inference.prediction import PREPARATIONS, Classifier, answer, open_image
from alexnet_mnist.inference.preparation import BlankImage

# Gradio reads this when imported: no usage reports, no version check with Gradio's servers.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
try:
    import gradio as gr
except ImportError:
    raise UserError('mode=serve needs Gradio, an optional extra: pip install "alexnet_mnist[demo]"') from None

# Gradio checks that its own server is up with httpx, which logs every request at INFO.
logging.getLogger("httpx").setLevel(logging.WARNING)

CANVAS = 400  # pixels per side: the canvas shows at about 100 % in its box on a laptop screen
# The brush's radius on that canvas: a digit drawn over most of the canvas then has strokes about
# as thick, relative to its height, as MNIST's (2-3 pixels in 20), once prepared.
BRUSH_RADIUS = 14
PREVIEW_SCALE = 8  # the 28x28 image the model saw, shown 224x224 with square pixels
WHAT = {"digit": "a digit", "clothing": "a piece of clothing or a shoe"}


# Gradio 6.31's sketchpad opens with no tool selected ("select the draw tool to start"), and falls
# back to none when its bin empties it; it has no option for a default tool (an initial value would
# select the brush, but then drawing no longer fires `change`). Whenever it has fallen back, this
# clicks its brush, the first button of its toolbar (the only tools are the brush and the eraser).
SELECT_BRUSH = """
() => {
  setInterval(() => {
    const brush = document.querySelector("#sketch .toolbar-wrap button");
    if (brush && window.editor && window.editor.current_tool === "image") brush.click();
  }, 100);
}
"""


def preview_file(prepared, directory: Path) -> str:
    """The 28x28 image the model saw, enlarged, as a PNG file in `directory` named by its content.

    Returned as a file rather than an array: Gradio rewrites an array's cache file on every answer,
    and a client downloading the same picture meanwhile (4 clients sending one photo) got an empty
    body; a file is copied into Gradio's cache once, under a temporary name renamed into place."""
    pixels = np.kron((prepared * 255).round().astype(np.uint8), np.ones((PREVIEW_SCALE, PREVIEW_SCALE), np.uint8))
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="png")
    path = directory / f"{hashlib.sha256(encoded.getvalue()).hexdigest()[:32]}.png"
    if not path.exists():
        with atomic_path(path) as temporary:
            temporary.write_bytes(encoded.getvalue())
    return str(path)


class Answers:
    """What the page shows for a drawing or a photo, as the four outputs of `build_page`: the ten
    classes as bars, the 28x28 image the model saw (a file in `previews`), the answer line
    (`answer()`'s) and a status line (a message instead of an answer)."""

    def __init__(self, classifier: Classifier, dataset: Dataset, previews: Path, invert=Invert.auto):
        self.classifier, self.dataset, self.previews, self.invert = classifier, dataset, previews, Invert(invert)
        self.prepare = PREPARATIONS[dataset.preparation]
        self.what = WHAT[dataset.preparation]

    def _respond(self, prepared):
        probabilities = self.classifier.probabilities(prepared[None, ..., None])[0]
        bars = {name: float(p) for name, p in zip(self.dataset.class_names, probabilities)}
        return bars, preview_file(prepared, self.previews), f"### {answer(probabilities, self.dataset.class_names)}", ""

    @staticmethod
    def _refuse(message):
        return None, None, "", message

    def drawing(self, value):
        """For the sketchpad's value (its `composite`, a PIL image)."""
        composite = (value or {}).get("composite")
        if composite is None:
            return self._refuse(f"The canvas is blank: draw {self.what}.")
        try:
            return self._respond(self.prepare(composite, self.invert))
        except BlankImage:
            return self._refuse(f"The canvas is blank: draw {self.what}.")

    def photo(self, upload):
        """For an upload as Gradio received it (its path checked to be in Gradio's upload folder), not
        preprocessed: Gradio's preprocessing fails on a file that is not an image, with no message."""
        path = (upload or {}).get("path")
        if path is None:
            return self._refuse(f"Drop, paste or take a photo of {self.what}.")
        try:
            image = open_image(path)
        except UserError:
            return self._refuse("That file is not an image: drop a PNG, JPEG or WebP photo.")
        try:
            return self._respond(self.prepare(image, self.invert))
        except BlankImage:
            return self._refuse(f"Nothing stands out in that photo: take one of {self.what} on plain paper.")


def build_page(classifier: Classifier, dataset: Dataset, title: str, previews: Path, invert=Invert.auto) -> gr.Blocks:
    """The Gradio app: a sketchpad and an upload/webcam/paste box; for the input shown, `Answers`:
    the answer line, the ten classes as bars, the 28x28 image the model saw and a status line."""
    answers = Answers(classifier, dataset, previews, invert)
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(600, 600)) as page:
        gr.Markdown(f"## {title}\nDraw {answers.what}, or drop a photo of one: the model answers as you go.")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tabs():
                    with gr.Tab("Draw", id="draw") as draw_tab:
                        sketch = gr.Sketchpad(
                            label="Draw here",
                            canvas_size=(CANVAS, CANVAS),
                            height=CANVAS + 120,
                            image_mode="L",
                            type="pil",
                            layers=False,
                            transforms=(),
                            brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                            interactive=True,
                            elem_id="sketch",
                        )
                    with gr.Tab("Photo", id="photo") as photo_tab:
                        photo = gr.Image(
                            label="Photo: drop, paste or take one",
                            sources=["upload", "clipboard", "webcam"],
                            type="filepath",
                            image_mode=None,
                            height=CANVAS + 120,
                            elem_id="photo",
                        )
            with gr.Column(scale=1):
                reading = gr.Markdown(elem_id="answer")
                status = gr.Markdown(elem_id="status")
                bars = gr.Label(num_top_classes=len(dataset.class_names), label="Probabilities", elem_id="bars")
                seen = gr.Image(
                    label="What the model saw (28x28)", type="filepath", interactive=False, height=260, elem_id="seen"
                )
        outputs = [bars, seen, reading, status]
        answered = {"outputs": outputs, "show_progress": "hidden"}
        sketch.change(answers.drawing, sketch, trigger_mode="always_last", api_name="drawing", **answered)
        photo.change(answers.photo, photo, api_name="photo", preprocess=False, **answered)
        draw_tab.select(answers.drawing, sketch, api_visibility="private", **answered)
        photo_tab.select(answers.photo, photo, api_visibility="private", preprocess=False, **answered)
    return page


def serve(model_path, dataset: Dataset, host="127.0.0.1", port=7860, max_file_mb=5.0, invert=Invert.auto):
    """Load the model once, serve its page on `host`:`port` and block until Ctrl-C."""
    classifier = Classifier(model_path)
    title = f"What does {model_path} read? ({dataset.name})"
    with tempfile.TemporaryDirectory(prefix="alexnet_mnist_previews_") as previews:
        page = build_page(classifier, dataset, title, Path(previews), invert)
        try:
            page.launch(
                server_name=host,
                server_port=port,
                share=False,
                max_file_size=int(max_file_mb * 2**20),  # MB as Gradio counts them: MiB
                prevent_thread_lock=True,
                quiet=True,
                ssr_mode=False,
                js=SELECT_BRUSH,
            )
        except OSError as error:
            raise UserError(f"serve.host={host} serve.port={port}: cannot listen there: {error}") from None
        print(f"serving {model_path} ({dataset.name}) at {page.local_url} - Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", flush=True)
        finally:
            page.close()
