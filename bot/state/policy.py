"""A tenant's barge-in policy: the operator-facing knobs, validated, and their mapping onto the
turn-taking thresholds (`PolicySettings`). Pure: no Redis here (see `policy_store.py`).

Policies are layered: built-in defaults, then the tenant's overrides, then the dialled number's
overrides. Each layer stores only the fields it sets (`PolicyOverrides`, a plain dict), so a
change to the tenant's policy reaches every number that does not override that field.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

from ..policy.base import PolicySettings

EndOfTurnMode = Literal["fast", "balanced", "accurate"]
BackchannelMode = Literal["ignore", "interrupt"]

# end_of_turn mode -> (baseline endpointing silence in s, duplex p(eot) threshold, duplex silence in s
# after which a pause the model does not read as a hold ends the turn anyway)
END_OF_TURN_PRESETS: dict[str, tuple[float, float, float]] = {
    "fast": (0.3, 0.4, 0.5),
    "balanced": (0.5, 0.5, 0.75),
    "accurate": (0.8, 0.65, 2.0),
}


class PolicyError(ValueError):
    """A policy write was rejected. The caller (operator) is at fault; retrying cannot help."""


@dataclass(frozen=True)
class BargeInPolicy:
    """What an operator tunes per tenant or per dialled number.

    interruption_sensitivity  0..1: how readily caller speech over the bot stops it (1 = at once).
    min_interruption_speech   seconds of overlapping caller speech that always interrupt.
    backchannel               "ignore": "mm-hm", "right" over the bot never stop it; "interrupt": they do.
    end_of_turn               latency versus accuracy of end-of-turn detection: fast | balanced | accurate.
    speak_over_caller         may the bot ever keep talking over the caller? Only meant for notices
                              (recording consent, legal text); False for everything else.
    max_bot_monologue         seconds: the longest single bot turn before it must yield.
    """
    interruption_sensitivity: float = 0.5
    min_interruption_speech: float = 0.5
    backchannel: BackchannelMode = "ignore"
    end_of_turn: EndOfTurnMode = "balanced"
    speak_over_caller: bool = False
    max_bot_monologue: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            _validate(f.name, getattr(self, f.name))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def merged(self, overrides: Mapping[str, Any]) -> "BargeInPolicy":
        """This policy with `overrides` applied (validated; raises PolicyError)."""
        return dataclasses.replace(self, **validate_overrides(overrides))

    def to_settings(self, base: PolicySettings | None = None) -> PolicySettings:
        """The turn-taking thresholds this policy means."""
        base = base or PolicySettings()
        silence, eot, model_silence = END_OF_TURN_PRESETS[self.end_of_turn]
        s = self.interruption_sensitivity
        values: dict[str, Any] = {
            "min_interruption_speech": self.min_interruption_speech,
            # Sensitive policies ask the ASR for words sooner and need a lower p(interrupt).
            "interruption_check_after": round(0.08 + 0.16 * (1.0 - s), 4),
            "interrupt_threshold": round(min(0.95, max(0.05, 1.0 - s)), 4),
            "end_of_turn_silence": silence,
            "eot_threshold": eot,
            "max_end_of_turn_silence": model_silence,
            "backchannel_mode": self.backchannel,
            "allow_overlap": self.speak_over_caller,
        }
        known = {f.name for f in fields(PolicySettings)}
        if "max_bot_monologue" in known:  # forward compatible once PolicySettings carries it
            values["max_bot_monologue"] = self.max_bot_monologue
        return dataclasses.replace(base, **{k: v for k, v in values.items() if k in known})


def _num(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    if not lo <= value <= hi:
        raise PolicyError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise PolicyError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _validate(name: str, value: Any) -> Any:
    if name == "interruption_sensitivity":
        return _num(name, value, 0.0, 1.0)
    if name == "min_interruption_speech":
        return _num(name, value, 0.05, 5.0)
    if name == "max_bot_monologue":
        return _num(name, value, 3.0, 600.0)
    if name == "backchannel":
        return _choice(name, value, ("ignore", "interrupt"))
    if name == "end_of_turn":
        return _choice(name, value, tuple(END_OF_TURN_PRESETS))
    if name == "speak_over_caller":
        if not isinstance(value, bool):
            raise PolicyError(f"{name} must be true or false, got {value!r}")
        return value
    raise PolicyError(f"unknown policy field {name!r}; known: {', '.join(BargeInPolicy.field_names())}")


def validate_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Check a partial policy; returns it normalised (floats as floats). Raises PolicyError."""
    if not isinstance(overrides, Mapping):
        raise PolicyError(f"a policy is a mapping of field to value, got {type(overrides).__name__}")
    return {k: _validate(k, v) for k, v in overrides.items()}


def parse_assignment(text: str) -> tuple[str, Any]:
    """`"field=value"` from the command line -> (field, typed value). Raises PolicyError."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise PolicyError(f"expected field=value, got {text!r}")
    raw = raw.strip()
    value: Any
    low = raw.lower()
    if low in ("true", "yes", "on"):
        value = True
    elif low in ("false", "no", "off"):
        value = False
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
    return name, _validate(name, value)


def encode_overrides(overrides: Mapping[str, Any]) -> str:
    return json.dumps(validate_overrides(overrides), sort_keys=True, separators=(",", ":"))


def decode_overrides(raw: str | bytes | None) -> dict[str, Any]:
    """Stored overrides back to a dict. Fields this version does not know are dropped (a newer
    writer may know more); values that fail validation raise PolicyError."""
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise PolicyError("stored policy is not a JSON object")
    known = set(BargeInPolicy.field_names())
    return validate_overrides({k: v for k, v in data.items() if k in known})


DEFAULT_POLICY = BargeInPolicy()
