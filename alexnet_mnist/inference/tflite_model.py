"""A TFLite file run by the LiteRT interpreter, called like a Keras model on batches of images."""

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from alexnet_mnist import quiet


class TFLiteModel:
    """A TFLite file in the LiteRT interpreter, run on batches of any size (one thread).

    Called on float32 `[N, 28, 28, 1]` images in [0, 1], it returns the `[N, num_classes]` logits as
    a NumPy array, like a Keras model of the package.

    Args:
        content: the bytes of the `.tflite` file.
    """

    def __init__(self, content: bytes):
        self.interpreter = Interpreter(model_content=content, num_threads=1)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch_size = None

    def __call__(self, images) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if len(images) != self.batch_size:
            self.interpreter.resize_tensor_input(self.input, images.shape)
            with quiet.native_output():  # the first allocation announces the XNNPACK delegate
                self.interpreter.allocate_tensors()
            self.batch_size = len(images)
        self.interpreter.set_tensor(self.input, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)
