"""Keras optimizers by name, with the learning-rate schedules the recipes use."""

import keras

OPTIMIZERS = {
    "adam": lambda lr, momentum, decay: keras.optimizers.Adam(learning_rate=lr, weight_decay=decay or None),
    "adamw": lambda lr, momentum, decay: keras.optimizers.AdamW(learning_rate=lr, weight_decay=decay),
    "sgd": lambda lr, momentum, decay: keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=decay or None),
    "rmsprop": lambda lr, momentum, decay: keras.optimizers.RMSprop(learning_rate=lr, momentum=momentum, weight_decay=decay or None),
}
# One-cycle (Smith & Topin 2019): warm up from lr / 25, anneal to lr / 25 / 1e4.
ONECYCLE_DIVISOR, ONECYCLE_FINAL_DIVISOR, ONECYCLE_WARMUP = 25.0, 1e4, 0.3


def build_optimizer(
    name, lr, momentum=0.0, schedule="constant", total_steps=None, warmup_steps=0, weight_decay=0.0, loss_scaling=False
):
    """A Keras optimizer by name: "adam", "adamw", "sgd" or "rmsprop", with decoupled `weight_decay`.

    Over a run of `total_steps`: `schedule="cosine"` warms the learning rate up linearly from 0 to
    `lr` over `warmup_steps`, then decays it to 0; `"onecycle"` warms up from lr / 25 over
    `warmup_steps` (30 % of the run if 0), then anneals to lr / 250,000. `loss_scaling` wraps the
    optimizer for float16 training.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is unknown; choose one of {sorted(OPTIMIZERS)}")
    schedules = keras.optimizers.schedules
    if schedule == "cosine":
        lr = schedules.CosineDecay(
            0.0 if warmup_steps else lr,
            decay_steps=total_steps - warmup_steps,
            warmup_target=lr if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    elif schedule == "onecycle":
        warmup_steps = warmup_steps or int(ONECYCLE_WARMUP * total_steps)
        lr = schedules.CosineDecay(
            lr / ONECYCLE_DIVISOR,
            decay_steps=total_steps - warmup_steps,
            alpha=1 / (ONECYCLE_DIVISOR * ONECYCLE_FINAL_DIVISOR),
            warmup_target=lr,
            warmup_steps=warmup_steps,
        )
    elif schedule != "constant":
        raise ValueError(f"schedule {schedule!r} is unknown; choose constant, cosine or onecycle")
    optimizer = OPTIMIZERS[name](lr, momentum, weight_decay)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer


def scaled_lr(lr, lr_batch_size, batch_size):
    """`lr`, meant for batches of `lr_batch_size` (None: any), scaled linearly to `batch_size`."""
    return lr if lr_batch_size is None else lr * batch_size / lr_batch_size

