"""Parsing of user values shared by every entry point: seed lists, number lists, resolutions.
Each failure is a :class:`zoo.core.errors.ConfigError` naming the key and the fix."""
from __future__ import annotations

from typing import Any, List

from zoo.core.errors import ConfigError

__all__ = ["is_power_of_two", "check_resolution", "parse_seeds", "parse_floats", "is_list"]


def is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n >= 1 and (n & (n - 1)) == 0


def check_resolution(res: Any, key: str = "resolution") -> int:
    """``res`` if it is a power of two in 4..1024, else a ConfigError for ``key``."""
    if not isinstance(res, int) or isinstance(res, bool) or not is_power_of_two(res) or not 4 <= res <= 1024:
        raise ConfigError(key, f"{res!r} is not a power of two between 4 and 1024",
                          "use one of 4, 8, 16, 32, 64, 128, 256, 512, 1024")
    return res


def is_list(value: Any) -> bool:
    """A list, tuple or OmegaConf ListConfig."""
    return isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig"


def parse_seeds(spec: Any, key: str = "seeds") -> List[int]:
    """``'0-3,7'`` → ``[0, 1, 2, 3, 7]``; also accepts an int or a list."""
    if isinstance(spec, int):
        return [spec]
    if is_list(spec):
        return [int(s) for s in spec]
    out: List[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            elif part:
                out.append(int(part))
        except ValueError:
            raise ConfigError(key, f"cannot parse {part!r}", f"use e.g. {key}=0-15 or {key}=1,5,9") from None
    if not out:
        raise ConfigError(key, "no seeds given", f"use e.g. {key}=0-15")
    return out


def parse_floats(spec: Any, key: str, count: int) -> List[float]:
    """``'0.1,0'``, ``[0.1, 0]`` or a number (repeated) -> ``count`` floats."""
    if isinstance(spec, (int, float)):
        values = [float(spec)] * count
    else:
        parts = list(spec) if is_list(spec) else str(spec).split(",")
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
    if len(values) != count:
        example = ",".join(["0.1"] + ["0"] * (count - 1))
        raise ConfigError(key, f"expected {count} numbers, got {spec!r}", f"use e.g. {key}={example}")
    return values
