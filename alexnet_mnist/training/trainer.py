"""The train and evaluation steps of the custom GradientTape loop, with metrics created once."""

import keras
import tensorflow as tf

from alexnet_mnist.errors import RunStopped
from alexnet_mnist.models.base import INPUT_SHAPE


class Trainer:
    """Train and evaluation steps for one model and optimizer, with metrics created once.

    The steps are `tf.function`s (optionally XLA-compiled) unless `run_eagerly`; they only update
    variables and metrics, so reading a metric is the single point where Python waits for them.
    With `jit_optimizer` (outside a strategy) the optimizer's update alone is XLA-compiled, eagerly
    too: one fused pass over the weights instead of a dozen element-wise kernels per variable.

    Under a tf.distribute `strategy` the Trainer is created in its scope (so the metrics sum over
    the replicas when read), the steps run through `strategy.run` on distributed datasets, and every
    worker must read the metrics at the same points: a read is a collective.
    """

    def __init__(
        self, model, optimizer, *, run_eagerly=False, jit_compile=False, jit_optimizer=False, label_smoothing=0.0, strategy=None
    ):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.model = model
        self.optimizer = optimizer
        self.apply_gradients = self._apply_gradients
        if jit_optimizer and strategy is None and optimizer is not None:
            optimizer.build(model.trainable_variables)  # XLA cannot create the slot variables
            self.apply_gradients = tf.function(self._apply_gradients, jit_compile=True)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
        # Training targets may be smoothed; evaluation always scores the true labels.
        self.train_loss_fn = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing, reduction="none"
        )
        self.train_loss = keras.metrics.Mean("loss")
        self.train_accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
        self.eval_loss = keras.metrics.Mean("val_loss")
        self.eval_accuracy = keras.metrics.SparseCategoricalAccuracy("val_accuracy")
        self.train_step = self._train_step
        self.train_steps = self._train_steps
        self.train_chunk = self._train_chunk
        self.eval_step = self._eval_step
        if not run_eagerly:
            # One trace each, for chunks of any length and batches of any size (an epoch's last
            # ones are smaller), so that `warm_up` leaves nothing to trace for the epochs. Values
            # spread over replicas have no TensorSpec: there, shapes are relaxed on the second
            # trace, and a step synchronizing the replicas cannot be a tf.function of its own.
            batch = (tf.TensorSpec([None, *INPUT_SHAPE], tf.float32), tf.TensorSpec([None], tf.int64))
            chunk = (tf.TensorSpec([None, None, *INPUT_SHAPE], tf.float32), tf.TensorSpec([None, None], tf.int64))
            if strategy is None:
                self.train_step = tf.function(self._train_step, jit_compile=jit_compile, input_signature=batch)
            else:
                batch = chunk = None
            self.train_steps = tf.function(self._train_steps, input_signature=chunk, reduce_retracing=True)
            chunks = None if chunk is None else [tf.data.IteratorSpec(chunk)]
            self.train_chunk = tf.function(self._train_chunk, input_signature=chunks, reduce_retracing=True)
            self.eval_step = tf.function(
                self._eval_step, jit_compile=jit_compile and strategy is None, input_signature=batch, reduce_retracing=True
            )

    def warm_up(self, batch_size, eval_batch_size=None):
        """Trace the steps and run each once on blank batches (of `batch_size` to train, of
        `eval_batch_size`, default the same, to evaluate) and read the metrics, then put every
        variable back: the first epoch then pays neither for tracing and graph optimization nor for
        the kernels' first-call setup, and training goes on exactly as without the warm-up."""
        variables = [*self.model.variables, *self.optimizer.variables, *self.train_loss.variables, *self.train_accuracy.variables]
        values = [variable.numpy() for variable in variables]
        batch, eval_batch = (size // self.strategy.num_replicas_in_sync for size in (batch_size, eval_batch_size or batch_size))
        blank = lambda shape: (tf.zeros([*shape, *INPUT_SHAPE]), tf.zeros(shape, tf.int64))  # noqa: E731
        # Repeated: a pipeline feeding several replicas hands each its own element.
        chunks = self.strategy.distribute_datasets_from_function(lambda _: tf.data.Dataset.from_tensors(blank([1, batch])).repeat())
        self.train_chunk(iter(chunks))
        self.eval_step(*self.strategy.experimental_distribute_values_from_function(lambda _: blank([eval_batch])))
        self.train_results()
        for variable, value in zip(variables, values):
            variable.assign(value)

    def _train_step(self, images, labels):
        """One step on this replica's part of a global batch; returns the global batch's loss."""
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            targets = tf.one_hot(labels, tf.shape(logits)[-1])
            local_sum = tf.reduce_sum(self.train_loss_fn(targets, logits))
            # One collective tells every replica the global batch's size (the parts of an epoch's
            # last batch may differ by one) and loss; over that size, the replicas' gradients sum
            # to the global batch's.
            count = tf.cast(tf.shape(labels)[0], local_sum.dtype)
            size, total = tf.unstack(
                tf.distribute.get_replica_context().all_reduce(
                    tf.distribute.ReduceOp.SUM, tf.stop_gradient(tf.stack([count, local_sum]))
                )
            )
            loss = local_sum / size
            regularization = tf.add_n(self.model.losses) if self.model.losses else 0.0
            loss += tf.nn.scale_regularization_loss(regularization)
            # Identity unless the optimizer is a LossScaleOptimizer, which unscales in apply.
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.model.trainable_variables)
        self.apply_gradients(gradients)
        # The same on every replica, so they agree on stopping at a NaN; weighted by each part's
        # size, the replicas' metric sums read as the global mean.
        loss = total / size + regularization
        self.train_loss.update_state(loss, sample_weight=count)
        self.train_accuracy.update_state(labels, logits)
        return loss

    def _apply_gradients(self, gradients):
        self.optimizer.apply(gradients, self.model.trainable_variables)

    def _train_steps(self, images, labels):
        """A train step per batch of a chunk (`[k, batch, ...]` images and labels, on each replica);
        returns how many ran before a loss turned NaN or infinite."""
        ran, finite = tf.constant(0), tf.constant(True)
        step = lambda images, labels, i: self.train_step(images[i], labels[i])  # noqa: E731
        while finite and ran < tf.shape(self._local(labels))[0]:
            loss = self.strategy.run(step, args=(images, labels, ran))
            finite = tf.math.is_finite(self._local(loss))  # the global loss: the same on every replica
            ran += 1
        return ran if finite else ran - 1

    def _train_chunk(self, chunks):
        """Train on the next chunk of the iterator `chunks`; returns the chunk's number of batches
        and how many of them ran (fewer when a loss turned NaN or infinite). Taking the chunk inside
        the graph spares each call the Python side of the iterator (about 0.2-0.5 ms)."""
        images, labels = next(chunks)
        return tf.shape(self._local(labels))[0], self.train_steps(images, labels)

    def _eval_step(self, images, labels):
        self.strategy.run(self._replica_eval_step, args=(images, labels))

    def _local(self, value):
        """This process's first replica's part of `value` (the value itself outside a strategy)."""
        return self.strategy.experimental_local_results(value)[0]

    def _replica_eval_step(self, images, labels):
        logits = self.model(images, training=False)
        self.eval_loss.update_state(self.loss_fn(labels, logits))
        self.eval_accuracy.update_state(labels, logits)

    @property
    def train_metrics(self):
        return (self.train_loss, self.train_accuracy)

    def reset_train_metrics(self):
        for metric in self.train_metrics:
            metric.reset_state()

    def train_results(self):
        """The epoch's running mean loss and accuracy so far (waits for the steps in flight)."""
        return {metric.name: float(metric.result()) for metric in self.train_metrics}

    def train_epoch(self, chunks, first_step, steps_per_epoch):
        """Train on the chunks of stacked batches that `chunks` (an iterator over
        `Splits.train_chunks`) yields until the epoch's last step, one call each, yielding the number
        of steps done in the epoch after each. Raises `NonFiniteLoss`."""
        done = first_step
        while done < steps_per_epoch:
            steps, ran = (int(count) for count in self.train_chunk(chunks))
            if ran < steps:
                raise NonFiniteLoss(int(self.optimizer.iterations.numpy()))
            done += steps
            yield done

    def evaluate(self, dataset):
        """Mean loss and accuracy over `dataset`."""
        self.eval_loss.reset_state()
        self.eval_accuracy.reset_state()
        for images, labels in dataset:
            self.eval_step(images, labels)
        return float(self.eval_loss.result()), float(self.eval_accuracy.result())



class NonFiniteLoss(RunStopped):
    def __init__(self, step):
        super().__init__(
            f"the training loss became NaN or infinite at step {step}; the checkpoints and model.keras "
            "of the last good epoch are kept; try a lower optimizer.lr"
        )
