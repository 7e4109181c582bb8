"""An ensemble of the package's classifiers as one Keras model."""

import keras

from alexnet_mnist.models.base import INPUT_SHAPE, ImageClassifier

COMBINES = ("mean_prob", "vote")
# log(0) would put -inf into the outputs, and so NaN into differences of outputs: floor the
# probabilities just above float32's smallest normal number.
_MIN_PROBABILITY = 1e-37


@keras.saving.register_keras_serializable(package="alexnet_mnist")
class Ensemble(ImageClassifier):
    """Combines the predictions of its members, which may be different models.

    `probabilities()` is the combined prediction: the mean of the members' softmax probabilities
    ("mean_prob") or the share of members whose top class each class is ("vote"). `call()` returns
    its logarithm, so an ensemble, like every model of the package, outputs logits: softmax gives
    the probabilities back, and the training loop's loss and accuracy work on it unchanged.

    Args:
        members: the models to combine, trained, each returning logits for the same classes.
        combine: "mean_prob" or "vote".
        **kwargs: passed on to `keras.Model` (`name`, `dtype`, ...).
    """

    def __init__(self, members, combine="mean_prob", **kwargs):
        super().__init__(**kwargs)
        if combine not in COMBINES:
            raise ValueError(f"combine {combine!r} is unknown; choose one of {COMBINES}")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.combine = str(combine)
        self.num_classes = int(self.members[0].num_classes)
        self.build((None, *INPUT_SHAPE))

    def probabilities(self, inputs):
        """The combined class probabilities `[N, num_classes]` of the images `inputs`."""
        member_probabilities = [keras.ops.softmax(member(inputs, training=False)) for member in self.members]
        if self.combine == "vote":
            # A member's vote is its top class, found by comparison with the maximum: keras.ops.argmax
            # and one_hot emit a BitwiseAnd that TFLite has no builtin op for. (An exact tie of two
            # probabilities, which floats make all but impossible, would cast two votes.)
            member_probabilities = [
                keras.ops.cast(keras.ops.equal(p, keras.ops.max(p, axis=-1, keepdims=True)), p.dtype)
                for p in member_probabilities
            ]
        return keras.ops.mean(keras.ops.stack(member_probabilities), axis=0)

    def call(self, inputs, training=False):
        # Members always predict in inference mode: an ensemble is assembled, not trained.
        return keras.ops.log(keras.ops.maximum(self.probabilities(inputs), _MIN_PROBABILITY))

    def get_config(self):
        return {
            **super().get_config(),
            "members": [keras.saving.serialize_keras_object(member) for member in self.members],
            "combine": self.combine,
        }

    @classmethod
    def from_config(cls, config):
        members = [keras.saving.deserialize_keras_object(member) for member in config.pop("members")]
        return cls(members=members, **config)
