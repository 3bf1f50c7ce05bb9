"""What every entry point shares: the Hydra schemas in the ConfigStore, one way to start an app, and
one way to report a user error.

Every command of the zoo is a Hydra app over ``conf/<name>.yaml`` and a dataclass schema, so all of
them take ``key=value`` overrides, ``--help``, ``--cfg job`` and ``-m`` sweeps, and a misspelled key
or a value of the wrong type fails while Hydra composes the config. Commands that have always taken
positional arguments (``python -m zoo.interop.convert SRC DST``, ``python -m zoo.report SWEEP_DIR``)
still do: :func:`hydra_main` turns them into ``key=value`` overrides first. A user error
(:class:`zoo.core.errors.ZooError`) is printed as one line and the process exits with status 2.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import DictConfig

from zoo import generations
from zoo.core.errors import ConfigError, ZooError
from zoo.data.config import DataConfig
from zoo.training.augment import AugConfig
from zoo.training.config import LoggerConfig, TrainConfig

__all__ = ["CONFIG_DIR", "register_schemas", "hydra_main", "report_user_errors", "listify_argv",
           "positional_argv", "override_value", "insert_overrides", "hydra_output_dir", "hydra_sweep_dir",
           "hydra_overrides", "AppSpec"]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")


def register_schemas(**apps: type) -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent): ``schema_train`` (and ``schema_<name>``
    for each app schema given), ``schema/data/base``, ``schema/logger/base``,
    ``schema/aug/base`` and ``schema/model/<generation>`` for every registered generation. YAML files extend them through
    their defaults lists (``conf/model/stylegan2.yaml`` → ``/schema/model/stylegan2@_here_``)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="schema_train", node=TrainConfig)
    for name, node in apps.items():
        cs.store(name=f"schema_{name}", node=node)
    cs.store(group="schema/data", name="base", node=DataConfig)
    cs.store(group="schema/logger", name="base", node=LoggerConfig)
    cs.store(group="schema/aug", name="base", node=AugConfig)
    for spec in generations.specs():
        cs.store(group="schema/model", name=spec.name, node=spec.schema)


# ------------------------------------------------------------------------------------------------
# Command lines
# ------------------------------------------------------------------------------------------------

_HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                           "--config-dir", "-cd", "--experimental-rerun", "--info", "-i"}
_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.\[\]/@-]*=")


def listify_argv(argv: Sequence[str], keys: Sequence[str], always: Sequence[str] = ()) -> List[str]:
    """``key=a,b`` -> ``key=[a,b]`` for list-valued keys, so ``seeds=1,5,9`` or ``translate=0.1,0``
    need no brackets (Hydra would read the commas as a sweep); keys in ``always`` are lists even with
    one value (``metrics.names=fid2k``). Under ``-m``/``--multirun`` commas mean a sweep, so only a
    single value of an ``always`` key is wrapped."""
    multirun = "-m" in argv or "--multirun" in argv
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+")
        if sep and value and not value.startswith(("[", "'", '"')):
            if (key in always and (not multirun or "," not in value)) or (key in keys and "," in value and not multirun):
                arg = f"{arg.partition('=')[0]}=[{value}]"
        out.append(arg)
    return out


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def positional_argv(argv: Sequence[str], names: Sequence[str], options: Optional[Dict[str, str]] = None) -> List[str]:
    """Positional arguments -> ``name='value'`` overrides, in order of ``names``; ``options`` maps
    old-style flags to keys (``{'--out': 'out'}``: ``--out DIR`` -> ``out='DIR'``). Hydra's own flags
    (``--help``, ``--cfg job``, ``-m`` ...) and ``key=value`` arguments pass through unchanged."""
    options = options or {}
    out: List[str] = []
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if _OVERRIDE.match(a)}
    pending = [n for n in names if n not in given]
    it = iter(argv)
    for arg in it:
        if arg in options:
            value = next(it, None)
            if value is not None:
                out.append(f"{options[arg]}={_quote(value)}")
            continue
        if arg.startswith("-"):
            out.append(arg)
            if arg in _HYDRA_FLAGS_WITH_VALUE:
                value = next(it, None)
                if value is not None:
                    out.append(value)
            continue
        if _OVERRIDE.match(arg) or not pending:
            out.append(arg)
            continue
        out.append(f"{pending.pop(0)}={_quote(arg)}")
    return out


def override_value(argv: Sequence[str], key: str) -> Optional[str]:
    """The value ``argv`` gives ``key`` (``key=value``, also ``+key=`` / ``++key=``), or None."""
    for arg in argv:
        k, sep, value = arg.partition("=")
        if sep and k.lstrip("+~") == key:
            return value
    return None


def insert_overrides(argv: Sequence[str], extra: Sequence[str]) -> List[str]:
    """``argv`` with ``extra`` overrides placed after its last override, so that they stay in the one
    run of positional arguments Hydra's parser accepts (``-m a=1 b=2 --cfg job``)."""
    at = max((i + 1 for i, a in enumerate(argv) if _OVERRIDE.match(a)), default=len(argv))
    return [*argv[:at], *extra, *argv[at:]]


def _check_launcher(argv: Sequence[str]) -> None:
    """``hydra/launcher=submitit_*`` needs the optional plugin: say so in one line."""
    import importlib.util

    launcher = override_value(argv, "hydra/launcher") or ""
    if launcher.startswith("submitit") and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        raise ConfigError("hydra/launcher", f"{launcher} needs the hydra-submitit-launcher plugin, which is not "
                          "installed", 'pip install -e ".[slurm]"')


# ------------------------------------------------------------------------------------------------
# Running an app
# ------------------------------------------------------------------------------------------------

def hydra_output_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        try:
            return HydraConfig.get().runtime.output_dir
        except Exception:  # compose() without return_hydra_config
            return None
    return None


def hydra_sweep_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return HydraConfig.get().sweep.dir
    return None


def hydra_overrides() -> list:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        try:
            return list(HydraConfig.get().overrides.task)
        except Exception:  # compose() without return_hydra_config
            return []
    return []


def report_user_errors(fn: Callable[[DictConfig], Any], cfg: DictConfig):
    """Run ``fn(cfg)``; print a user error (bad config, data or checkpoint) as one clear line and
    exit with status 2 for a single run. In a multirun the error propagates, so Hydra reports the
    failed job and carries on with the others."""
    try:
        return fn(cfg)
    except ZooError as e:
        if hydra_sweep_dir():
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # the training loop has already saved its state
        print("interrupted", file=sys.stderr)
        sys.exit(130)


@dataclass(frozen=True)
class AppSpec:
    """An entry point: its config (``conf/<config_name>.yaml`` over ``schema_<config_name>``), the
    function it runs on the composed config, and how its command line is read."""

    config_name: str
    run: Callable[[DictConfig], Any]
    schema: Optional[type] = None
    list_keys: Sequence[str] = ()          # key=a,b means a list (not a sweep)
    always_list: Sequence[str] = ()        # key=a means [a]
    positional: Sequence[str] = ()         # positional arguments, in order
    options: Optional[Dict[str, str]] = None  # old-style flags -> keys
    setup: Optional[Callable[[], None]] = None  # before Hydra starts (signal handlers, allocator)


def hydra_main(app: AppSpec, argv: Optional[Sequence[str]] = None) -> None:
    """Run ``app`` as a Hydra app on ``argv`` (default: the process's arguments); user errors exit
    with status 2 (see :func:`report_user_errors`)."""
    import hydra

    args = list(sys.argv[1:] if argv is None else argv)
    if app.positional or app.options:
        args = positional_argv(args, app.positional, app.options)
    args = listify_argv(args, app.list_keys, app.always_list)
    report_user_errors(_check_launcher, args)
    register_schemas(**({app.config_name: app.schema} if app.schema is not None else {}))
    if app.setup is not None:
        app.setup()

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=app.config_name)
    def _main(cfg: DictConfig) -> None:
        report_user_errors(app.run, cfg)

    saved = sys.argv
    sys.argv = [saved[0] if saved else app.config_name, *args]
    try:
        _main()
    finally:
        sys.argv = saved
