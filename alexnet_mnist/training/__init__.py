"""Training: the custom GradientTape loop (`trainer`), a run from data to files (`train`), its
checkpointed state (`run_state`), the optimizers, the process-wide runtime settings, tf.distribute
strategies, ensembles trained in a run, and TensorBoard summaries."""

from alexnet_mnist.training.train import train_and_evaluate

__all__ = ["train_and_evaluate"]
