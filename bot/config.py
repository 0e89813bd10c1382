"""Configuration errors and the readers of environment variables that every component's
`from_env` uses: a bad value fails start-up with a `ConfigError` naming the variable and the
form it expects. Only the composition root (`bot/settings.py`, the CLI) reads the process
environment; everything below receives its frozen settings dataclass."""
from __future__ import annotations

from typing import Mapping, TypeVar

_Num = TypeVar("_Num", int, float)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message says which and why."""


def env_number(env: Mapping[str, str], name: str, default: _Num, cast: type[_Num],
               lo: float | None = None, hi: float | None = None, unit: str = "") -> _Num:
    """The number in `env[name]` (`default` when unset or empty), an int or a float as `cast`
    says, within [lo, hi] when given. ConfigError naming the variable otherwise."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    what = ("an integer" if cast is int else "a number") + (f" of {unit}" if unit else "")
    try:
        v = cast(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected {what}") from None
    if v != v:  # NaN
        raise ConfigError(f"{name}={raw!r}: expected {what}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"between {lo:g} and {hi:g}" if lo is not None and hi is not None else \
            f"at least {lo:g}" if lo is not None else f"at most {hi:g}"
        raise ConfigError(f"{name}={raw!r} is out of range: expected {what} {bounds}")
    return v


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (`default` when unset or empty)."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE + _FALSE:
        raise ConfigError(f"{name}={env[name]!r}: use 1 or 0")
    return raw in _TRUE


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (`default` when unset or empty)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r}: choose {', '.join(choices[:-1])} or {choices[-1]}")
    return raw
