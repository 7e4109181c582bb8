"""Dropout that draws its own mask on each replica of a tf.distribute strategy."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alexnet_mnist")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout`, except that under a strategy of several replicas each draws its own mask.

    Keras draws a mask from the layer's seed state, which a strategy mirrors: every replica would
    drop the same units of its part of the global batch. Folding the replica's number into the seed
    gives each its own stream, as one process drawing for the whole batch would. With one replica
    (no strategy) it draws exactly as Keras does.
    """

    def call(self, inputs, training=False):
        replica = tf.distribute.get_replica_context()
        if not training or not self.rate or replica is None or replica.num_replicas_in_sync == 1:
            return super().call(inputs, training=training)
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
        return tf.nn.experimental.stateless_dropout(inputs, self.rate, seed, noise_shape=self.noise_shape)
