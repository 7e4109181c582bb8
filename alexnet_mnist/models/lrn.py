"""Local response normalization as a Keras layer."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alexnet_mnist")
class LocalResponseNormalization(keras.layers.Layer):
    """`tf.nn.local_response_normalization` across channels, with AlexNet's defaults.

    The defaults are the AlexNet paper's k=2, n=5 (depth_radius 2), alpha=1e-4, beta=0.75: each
    activation is divided by `(bias + alpha * sum of the squares of the 2 * depth_radius + 1
    neighbouring channels) ** beta`. It computes in float32 whatever the layer's dtype.

    Args:
        depth_radius: the number of neighbouring channels on each side.
        bias: the offset k.
        alpha: the scale of the sum of squares.
        beta: the exponent.
        **kwargs: passed on to `keras.layers.Layer` (`name`, `dtype`, ...).
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        # TensorFlow has no bfloat16 LRN kernel on CPU (and TFLite's is float32-only), so compute
        # in float32 and hand back the dtype the layer was given.
        outputs = tf.nn.local_response_normalization(
            tf.cast(inputs, tf.float32),
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
        )
        return tf.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
