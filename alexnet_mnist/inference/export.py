"""Export of a trained model as a TFLite file or a SavedModel, each verified by running what was
written (the LiteRT interpreter, `tf.saved_model.load`) beside the Keras model on the test split."""

import contextlib
import io
import logging
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from alexnet_mnist import quiet
from alexnet_mnist.atomic_files import atomic_path, write_json
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference.saved_models import float32_copy, load_model
from alexnet_mnist.inference.tflite_model import TFLiteModel
from alexnet_mnist.models.base import INPUT_SHAPE

log = logging.getLogger(__name__)

REPRESENTATIVE_BATCHES = 20  # int8 calibration: 20 training batches (1,280 images at batch 64)
LATENCY_IMAGES = 200
MIN_FLOAT32_AGREEMENT = 0.999
_QUANTIZED_DTYPES = {"int8", "uint8", "int16"}
_CONVERSION_OPS = {"QUANTIZE", "DEQUANTIZE"}  # move values between types; they compute nothing


def convert(model, quantization="none", representative_images=None) -> bytes:
    """The TFLite flatbuffer of `model`, with builtin ops only so the plain LiteRT runtime runs it.

    Input: float32 `[None, 28, 28, 1]` images in [0, 1]; output: the model's logits, float32.
    `representative_images` (an iterable of image batches) calibrates "int8".
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if representative_images is None:
            raise ValueError("int8 quantization needs representative images")
        converter.representative_dataset = lambda: ([images] for images in representative_images)
        # int8 kernels where they exist; the rest (LRN has a float32 kernel only) stays float.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        # The converter goes through a temporary SavedModel and prints its signature to stdout.
        with contextlib.redirect_stdout(io.StringIO()), quiet.native_output():
            return converter.convert()
    except Exception as error:  # the converter raises several types, all meaning "cannot convert"
        raise UserError(f"TFLite conversion ({quantization}) failed: {error}") from error


def inspect_ops(content: bytes) -> dict:
    """The file's ops by name and by the types they compute in, as the builtin-only runtime loads them.

    An op counts as "int8" when a tensor it reads or writes is integer-quantized (including int8
    weights of dynamic-range quantization), "float16" when it reads float16 (stored weights), and
    "float32" otherwise; ops on shapes only count as "int32".
    """
    interpreter = Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    ops = defaultdict(Counter)
    for op in interpreter._get_ops_details():  # LiteRT's only listing of a file's ops
        types = {dtypes[i] for i in [*op["inputs"], *op["outputs"]] if i >= 0 and i in dtypes}
        if types & _QUANTIZED_DTYPES:
            kind = "int8"
        else:
            kind = next((k for k in ("float16", "float32") if k in types), "int32")
        ops[op["op_name"]][kind] += 1
    float16_tensors = sum(1 for dtype in dtypes.values() if dtype == "float16")
    return {
        "ops": {name: dict(kinds) for name, kinds in sorted(ops.items())},
        "quantized_ops": sorted(name for name, kinds in ops.items() if "int8" in kinds and name not in _CONVERSION_OPS),
        "float_ops": sorted(name for name, kinds in ops.items() if "float32" in kinds and name not in _CONVERSION_OPS),
        "float16_tensors": float16_tensors,
    }


def check_ops(report: dict, quantization: str) -> None:
    """Fail unless the file holds builtin ops only and the quantization that was asked for."""
    custom = [name for name in report["ops"] if name.startswith("Flex") or name == "CUSTOM"]
    if custom:
        raise UserError(f"the TFLite file needs ops outside the builtin set: {custom}")
    quantized, float16 = bool(report["quantized_ops"]), report["float16_tensors"] > 0
    honoured = {
        "none": not quantized and not float16,
        "dynamic": quantized,
        "int8": quantized,
        "float16": float16,
    }[quantization]
    if not honoured:
        raise UserError(
            f"export.quantization={quantization} cannot be honoured for this model: the converter produced "
            f"quantized ops {report['quantized_ops']} and {report['float16_tensors']} float16 tensors"
        )


def verify(exported, model, test) -> dict:
    """Run `exported` (float32 images -> logits, as numpy) over the `test` dataset beside the Keras
    model and compare them."""
    labels, keras_logits, exported_logits, latency_images = [], [], [], []
    for images, batch_labels in test:
        labels.append(batch_labels.numpy())
        keras_logits.append(model(images, training=False).numpy())
        exported_logits.append(np.asarray(exported(images.numpy())))
        if sum(len(batch) for batch in latency_images) < LATENCY_IMAGES:
            latency_images.append(images.numpy())
    labels, keras_logits, exported_logits = map(np.concatenate, (labels, keras_logits, exported_logits))
    keras_pred, exported_pred = keras_logits.argmax(1), exported_logits.argmax(1)
    return {
        "test_images": len(labels),
        "accuracy": float(np.mean(exported_pred == labels)),
        "keras_accuracy": float(np.mean(keras_pred == labels)),
        "agreement": float(np.mean(exported_pred == keras_pred)),
        "max_abs_logit_diff": float(np.max(np.abs(exported_logits - keras_logits))),
        "median_latency_ms": 1000 * median_latency(exported, np.concatenate(latency_images)[:LATENCY_IMAGES]),
    }


def median_latency(exported, images) -> float:
    """Median seconds per image at batch 1, after a few warm-up runs."""
    for image in images[:10]:
        exported(image[None])
    seconds = []
    for image in images:
        start = time.perf_counter()
        exported(image[None])
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def _check_agreement(report, path):
    if report["agreement"] < MIN_FLOAT32_AGREEMENT:
        raise UserError(
            f"the float32 export agrees with the Keras model on {report['agreement']:.2%} of the test "
            f"images, below {MIN_FLOAT32_AGREEMENT:.1%}; not writing {path}"
        )


def export_model(keras_path, quantization, test, representative_images=None) -> dict:
    """Export the model saved at `keras_path` next to it and verify the file on the `test` dataset.

    Writes `<stem>.tflite` and `export.json` (`<stem>_<mode>.tflite` and `export_<mode>.json` for a
    quantized export) only when the file holds the asked-for quantization and, for float32, agrees
    with Keras on at least 99.9 % of the test images. Returns the report.
    """
    keras_path = Path(keras_path)
    suffix = "" if quantization == "none" else f"_{quantization}"
    tflite_path = keras_path.with_name(f"{keras_path.stem}{suffix}.tflite")
    model = float32_copy(load_model(keras_path))
    content = convert(model, quantization, representative_images)
    report = {"file": str(tflite_path), "quantization": quantization, "size_bytes": len(content)}
    report.update(inspect_ops(content))
    check_ops(report, quantization)
    report.update(verify(TFLiteModel(content), model, test))
    log.info(
        "TFLite %s: %d bytes, accuracy %.4f (Keras %.4f), agreement %.4f, max |logit diff| %.2g, %.3f ms/image; "
        "quantized ops %s, float ops %s",
        quantization, report["size_bytes"], report["accuracy"], report["keras_accuracy"], report["agreement"],
        report["max_abs_logit_diff"], report["median_latency_ms"], report["quantized_ops"], report["float_ops"],
    )
    if quantization == "none":
        _check_agreement(report, tflite_path)
    with atomic_path(tflite_path) as temporary:
        temporary.write_bytes(content)
    write_json(keras_path.parent / f"export{suffix}.json", report)
    return report


class _Serving(tf.Module):
    """What the SavedModel holds: the model's variables and one traced function, its serving signature."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32, name="images")])
    def serve(self, images):
        return {"logits": self.model(images, training=False)}


def export_saved_model(keras_path, test) -> dict:
    """Export the model saved at `keras_path` as a SavedModel next to it and verify it on `test`.

    Writes the directory `<stem>_saved_model/`, whose `serving_default` signature takes float32
    `images` `[N, 28, 28, 1]` in [0, 1] and returns float32 `logits` `[N, 10]`, and
    `export_saved_model.json`, only when the reloaded SavedModel agrees with Keras on at least 99.9 %
    of the test images. Returns the report.
    """
    keras_path = Path(keras_path)
    directory = keras_path.with_name(f"{keras_path.stem}_saved_model")
    temporary = directory.with_name(f".{directory.name}.partial")
    model = float32_copy(load_model(keras_path))
    module = _Serving(model)
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        with quiet.native_output():
            tf.saved_model.save(module, str(temporary), signatures={"serving_default": module.serve})
        serving = tf.saved_model.load(str(temporary)).signatures["serving_default"]
        report = {"directory": str(directory), "format": "saved_model", "signature": _describe(serving)}
        report.update(verify(lambda images: serving(images=tf.constant(images))["logits"].numpy(), model, test))
        log.info(
            "SavedModel: accuracy %.4f (Keras %.4f), agreement %.4f, max |logit diff| %.2g, %.3f ms/image",
            report["accuracy"], report["keras_accuracy"], report["agreement"], report["max_abs_logit_diff"],
            report["median_latency_ms"],
        )
        _check_agreement(report, directory)
        # A directory cannot be swapped in one rename as a file can: the old one goes just before.
        shutil.rmtree(directory, ignore_errors=True)
        temporary.rename(directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    write_json(keras_path.parent / "export_saved_model.json", report)
    return report


def _describe(signature) -> dict:
    """The signature's inputs and outputs as {name: [shape, dtype]}."""
    inputs = signature.structured_input_signature[1]
    return {
        "inputs": {name: [spec.shape.as_list(), spec.dtype.name] for name, spec in inputs.items()},
        "outputs": {name: [spec.shape.as_list(), spec.dtype.name] for name, spec in signature.structured_outputs.items()},
    }
