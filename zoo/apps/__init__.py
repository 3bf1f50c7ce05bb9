"""Every entry point of the zoo, and the only Hydra code: one app module per command, each a
:class:`~zoo.apps.common.AppSpec` (a ``conf/<name>.yaml`` over a dataclass schema, the function it
runs, how its command line is read) run by :func:`~zoo.apps.common.hydra_main`.

==========================================  ========================== =============================
command                                     app                        config
==========================================  ========================== =============================
``python train.py``                         :mod:`zoo.apps.train`      ``conf/train.yaml``
``python sample.py``                        :mod:`zoo.apps.sample`     ``conf/sample.yaml``
``python -m zoo.metrics``                   :mod:`zoo.apps.metrics`    ``conf/metrics.yaml``
``python -m zoo.data.prepare``              :mod:`zoo.apps.prepare`    ``conf/prepare.yaml``
``python -m zoo.interop.convert SRC DST``   :mod:`zoo.apps.convert`    ``conf/convert.yaml``
``python -m zoo.interop.export``            :mod:`zoo.apps.export`     ``conf/export.yaml``
``python -m zoo.bench``                     :mod:`zoo.apps.bench`      ``conf/bench.yaml``
``python -m zoo.report SWEEP_DIR``          :mod:`zoo.apps.report`     ``conf/report.yaml``
``python -m zoo.visualizer ckpt=PATH``      :mod:`zoo.apps.visualizer` ``conf/visualizer.yaml``
==========================================  ========================== =============================

The ``python -m`` modules outside this package only hand over to these (their whole body is an
``if __name__ == "__main__":`` block).
"""
import importlib

from zoo.apps.common import register_schemas

__all__ = ["APPS", "app", "register_all_schemas"]

APPS = ("train", "sample", "metrics", "prepare", "convert", "export", "bench", "report", "visualizer")


def app(name: str):
    """The :class:`~zoo.apps.common.AppSpec` of an entry point."""
    return importlib.import_module(f"zoo.apps.{name}").APP


def register_all_schemas() -> None:
    """Every app's schema in Hydra's ConfigStore (for composing any ``conf/*.yaml``, as the tests do)."""
    register_schemas(**{name: spec.schema for name, spec in ((n, app(n)) for n in APPS) if spec.schema is not None})
