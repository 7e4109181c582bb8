"""mode=predict: preparing image files as the dataset's images were, the class names, the model call (fast,
synthetic images and untrained models)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import make_config
from PIL import Image, ImageDraw, ImageOps

from alexnet_mnist import MLP, data
from alexnet_mnist.config import Invert
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference import classes, export, prediction
from alexnet_mnist.inference.clothing_preparation import prepare_clothing
from alexnet_mnist.inference.preparation import prepare_digit


def photo_of_a_seven(seed=0):
    """A thick dark '7' off centre on uneven, noisy grey paper, 200x150 like a cropped phone photo."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:150, 0:200]
    paper = 150 + 60 * cols / 200 + 20 * rows / 150 + rng.normal(0, 6, rows.shape)
    image = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    ImageDraw.Draw(image).line([(30, 30), (90, 30), (60, 120)], fill=40, width=9)
    return image


def centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


@pytest.mark.parametrize(
    "override, expected",
    [(None, Invert.auto), ("predict.invert=auto", Invert.auto), ("predict.invert=true", Invert.true),
     ("predict.invert=false", Invert.false)],
)
def test_invert_reads_auto_true_and_false_from_the_command_line(override, expected):
    assert make_config(*[override] if override else []).predict.invert is expected


def test_invert_rejects_other_values_in_one_line():
    with pytest.raises(UserError, match="predict.invert=maybe is not one of auto, true, false"):
        make_config("predict.invert=maybe")


def test_a_photo_like_digit_is_prepared_as_mnist_digits_were():
    prepared = prepare_digit(photo_of_a_seven())
    assert prepared.shape == (28, 28) and prepared.dtype == np.float32
    ink_rows, ink_cols = np.nonzero(prepared)
    longer = max(np.ptp(ink_rows), np.ptp(ink_cols)) + 1
    assert 19 <= longer <= 20
    assert np.allclose(centre_of_mass(prepared), 14, atol=1)
    assert prepared.max() == 1.0
    # Light on dark: the paper, however uneven and noisy, is 0 around the digit.
    assert prepared[:3].max() == 0 and prepared[:, :3].max() == 0 and prepared[:, -3:].max() == 0
    assert (prepared == 0).mean() > 0.6


def test_invert_true_and_false_force_the_polarity():
    dark_on_light = photo_of_a_seven()
    light_on_dark = ImageOps.invert(dark_on_light)
    prepared = prepare_digit(dark_on_light, Invert.auto)
    np.testing.assert_allclose(prepare_digit(light_on_dark, Invert.auto), prepared, atol=1e-4)
    np.testing.assert_allclose(prepare_digit(light_on_dark, Invert.false), prepared, atol=1e-4)
    np.testing.assert_allclose(prepare_digit(dark_on_light, Invert.true), prepared, atol=1e-4)
    # Taken as light on dark, what stands out is the paper's bright rim around the stroke (the paper's
    # breadth is background either way): not what auto sees.
    assert np.abs(prepare_digit(dark_on_light, Invert.false) - prepared).mean() > 0.05


def test_load_inputs_prepares_png_and_jpeg_files_and_leaves_npy_batches(tmp_path):
    photo_of_a_seven().save(tmp_path / "seven.png")
    photo_of_a_seven().convert("RGB").save(tmp_path / "seven.jpg", quality=90)
    batch = np.zeros((2, 28, 28), np.uint8)
    np.save(tmp_path / "batch.npy", batch)
    images, names = prediction.load_inputs([tmp_path / "seven.png", tmp_path / "seven.jpg", tmp_path / "batch.npy"])
    assert images.shape == (4, 28, 28, 1) and names[0] == str(tmp_path / "seven.png")
    assert np.abs(images[0] - images[1]).mean() < 0.05  # JPEG's artefacts barely matter
    assert images[2:].max() == 0  # .npy images are taken as prepared: auto does not invert them
    assert prediction.load_inputs([tmp_path / "batch.npy"], Invert.true)[0].min() == 1


@pytest.mark.parametrize(
    "name, deep",
    [
        ("seven.webp", None),
        ("seven.bmp", None),
        ("seven.tif", None),
        ("seven_16_bit.png", lambda pixels: pixels.astype(np.uint16) * 257),  # a scanner's 16-bit grey
        ("seven_float.tif", lambda pixels: (pixels / 255).astype(np.float32)),  # floats in [0, 1]
    ],
)
def test_any_image_format_pillow_reads_is_prepared_as_its_png(tmp_path, name, deep):
    seven = photo_of_a_seven()
    seven.save(tmp_path / "seven.png")
    lossless = {"lossless": True} if name.endswith(".webp") else {}
    (Image.fromarray(deep(np.asarray(seven))) if deep else seven).save(tmp_path / name, **lossless)
    images, _ = prediction.load_inputs([tmp_path / "seven.png", tmp_path / name])
    assert images[0].max() == 1.0  # the PNG's seven is there
    np.testing.assert_allclose(images[1], images[0], atol=1e-6)


def test_a_blank_image_is_a_one_line_error(tmp_path):
    Image.new("L", (60, 40), 200).save(tmp_path / "blank.png")
    with pytest.raises(UserError, match="input .*blank.png is blank"):
        prediction.load_inputs([tmp_path / "blank.png"])


@pytest.mark.real_data
def test_mnist_digits_photographed_large_come_back_as_they_were(tfds_data_dir):
    """MNIST test digits, drawn 5x larger in dark ink on lit grey paper, prepare to the original."""
    images, _, _ = data.load("mnist", "test[:50]", data_dir=tfds_data_dir)
    rng = np.random.default_rng(0)
    similarity = []
    for digit in images[..., 0]:
        ink = np.asarray(Image.fromarray(digit).resize((140, 140), Image.Resampling.BILINEAR)) / 255
        rows, cols = np.mgrid[0:200, 0:170]
        paper = 0.6 + 0.25 * cols / 170 + rng.normal(0, 0.03, rows.shape)
        top, left = rng.integers(0, 60), rng.integers(0, 30)
        paper[top : top + 140, left : left + 140] *= 1 - 0.8 * ink
        photo = Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))
        similarity.append(np.corrcoef(prepare_digit(photo).ravel(), digit.ravel())[0, 1])
    assert np.median(similarity) > 0.9 and min(similarity) > 0.5


def test_the_dataset_a_run_learnt_names_the_classes_else_data_does(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra/config.yaml").write_text("data:\n  name: fashion_mnist\n")
    learnt = classes.trained_on(tmp_path / "model.keras", default="mnist")
    assert learnt.class_names[7] == "Sneaker" and learnt.preparation == "clothing"
    bare = classes.trained_on(tmp_path / "elsewhere" / "model.tflite", default="mnist")
    assert bare.class_names == tuple("0123456789") and bare.preparation == "digit"
    with pytest.raises(UserError, match="data=kmnist: class names and a preparation are known for mnist and fashion_mnist only"):
        classes.trained_on(tmp_path / "elsewhere" / "model.keras", default="kmnist")


@pytest.mark.real_data
@pytest.mark.parametrize("name", sorted(classes.DATASETS))
def test_the_class_names_are_those_tfds_reports(tfds_data_dir, name):
    builder = tfds.builder(name, data_dir=tfds_data_dir)
    assert classes.DATASETS[name].class_names == tuple(builder.info.features["label"].names)


def test_answer_names_the_top_class_with_four_decimals():
    probabilities = np.full(10, 0.002, np.float32)
    probabilities[7] = 0.9731
    assert prediction.answer(probabilities, classes.DATASETS["fashion_mnist"].class_names) == "Sneaker (0.9731)"


def test_cli_predict_prints_class_names_with_a_tflite_checkpoint(tmp_path):
    """A Fashion-MNIST run's .tflite: names from its run directory, clothing preparation, one line per
    image file (`FILE: LABEL (PROBABILITY)`) and per image of a .npy batch (`FILE[i]: ...`)."""
    model = MLP()
    content = export.convert(model)
    (tmp_path / "model.tflite").write_bytes(content)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra/config.yaml").write_text("data:\n  name: fashion_mnist\n")
    shoe = Image.new("L", (120, 80), 230)
    ImageDraw.Draw(shoe).rectangle([20, 30, 100, 60], fill=30)
    shoe.save(tmp_path / "shoe.png")
    batch = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)  # uint8 pixels, as TFDS holds them
    np.save(tmp_path / "batch.npy", batch)
    result = subprocess.run(
        [sys.executable, "-m", "alexnet_mnist", "mode=predict", f"checkpoint={tmp_path / 'model.tflite'}",
         f"inputs=[{tmp_path / 'shoe.png'},{tmp_path / 'batch.npy'}]", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    # What the untrained model reads, computed here the same way: clothing preparation (none for a
    # .npy batch, taken as prepared), softmax of logits, the class named with four decimals.
    images = np.concatenate([prepare_clothing(Image.open(tmp_path / "shoe.png"))[None], batch / np.float32(255)])
    logits = model(images[..., None]).numpy()
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = [tmp_path / "shoe.png", f"{tmp_path / 'batch.npy'}[0]", f"{tmp_path / 'batch.npy'}[1]"]
    class_names = classes.DATASETS["fashion_mnist"].class_names
    expected = [f"{name}: {prediction.answer(row, class_names)}" for name, row in zip(names, probabilities)]
    assert result.stdout.strip().splitlines() == expected
    assert all(re.fullmatch(r"\S+: [A-Za-z/-]+( [a-z]+)? \(\d\.\d{4}\)", line) for line in expected)
    assert not (tmp_path / "run").exists()


def test_the_classifier_answers_as_the_keras_model_and_its_tflite_file(tmp_path):
    model = MLP()
    model.save(tmp_path / "model.keras")
    (tmp_path / "model.tflite").write_bytes(export.convert(model))
    images = np.random.default_rng(0).random((300, 28, 28, 1), dtype=np.float32)  # more than one call's batch
    expected = tf.nn.softmax(model(images)).numpy()
    for name in ("model.keras", "model.tflite"):
        np.testing.assert_allclose(prediction.Classifier(tmp_path / name).probabilities(images), expected, atol=1e-5)
