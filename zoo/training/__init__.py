"""The shared training machinery: one loop (``loop``), losses, checkpoints, distributed helpers."""
from zoo.training.checkpoint import CheckpointError, find_latest_checkpoint, load_checkpoint, save_checkpoint
from zoo.training.loop import Trainer, run, training_loop

__all__ = ["Trainer", "training_loop", "run", "save_checkpoint", "load_checkpoint",
           "find_latest_checkpoint", "CheckpointError"]
