"""Training PP-LiteSeg with PaddleSeg's recipe: the trainer, losses, schedulers, checkpoints, DDP helpers, logs."""
