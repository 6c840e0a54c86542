"""The training loop, checkpoints, run directories and progress reporting."""
