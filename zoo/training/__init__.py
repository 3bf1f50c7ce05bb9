"""The shared training machinery: the algorithm (:mod:`~zoo.training.trainer`: phases, EMA, growing;
:mod:`~zoo.training.losses`), the bookkeeping loop (:mod:`~zoo.training.loop`), the config schema and
its checks (:mod:`~zoo.training.config`), run records (:mod:`~zoo.training.job`,
:mod:`~zoo.training.loggers`), clusters (:mod:`~zoo.training.cluster`: stop signals, requeueing,
time-based snapshots)."""
from zoo.training.loop import run, training_loop
from zoo.training.trainer import Trainer

__all__ = ["Trainer", "training_loop", "run"]
