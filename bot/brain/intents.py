"""Partial intents: what the caller is after, heard while they are still speaking.

An agent declares intents in its YAML (`intents:`), each with phrases and keywords:

    intents:
      - name: handoff
        phrases: ["speak to a person", "real person"]
        keywords: [agent, human, representative]
        threshold: 0.5          # events below this confidence are not emitted

The detector reads every partial transcript (at each pause, and about once a second during long
speech) and the final one; each intent is reported once per caller turn, again only if its
confidence rises by `min_gain`. Confidence: a phrase heard 0.9; keywords 0.55 for one, +0.15 for
each further distinct one (capped at 0.95). Matching is on whole words, case-insensitive, with a
plural "s" ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..services.responder import read_agent_file


@dataclass(frozen=True)
class IntentSpec:
    name: str
    phrases: tuple[str, ...] = ()
    keywords: frozenset[str] = frozenset()
    threshold: float = 0.5


@dataclass(frozen=True)
class IntentHit:
    intent: str
    confidence: float


def _tokens(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9']+", text.lower()):
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def parse_intents(data: object, where: str = "agent") -> tuple[IntentSpec, ...]:
    """The `intents:` list of an agent file (None: no intents); ConfigError names the bad key."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"{where}: 'intents' must be a list of mappings with name, phrases and keywords")
    specs: list[IntentSpec] = []
    seen: set[str] = set()
    for i, d in enumerate(data):
        at = f"{where}: intents[{i}]"
        if not isinstance(d, dict):
            raise ConfigError(f"{at} must be a mapping with name, phrases and keywords")
        name = d.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            raise ConfigError(f"{at}.name must be a short lower-case identifier, got {name!r}")
        if name in seen:
            raise ConfigError(f"{at}.name {name!r} is declared twice")
        seen.add(name)
        lists: dict[str, list[str]] = {}
        for key in ("phrases", "keywords"):
            v = d.get(key) or []
            if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
                raise ConfigError(f"{at}.{key} must be a list of non-empty strings")
            lists[key] = v
        if not lists["phrases"] and not lists["keywords"]:
            raise ConfigError(f"{at} needs phrases or keywords")
        th = d.get("threshold", 0.5)
        if isinstance(th, bool) or not isinstance(th, (int, float)) or not 0.0 <= th <= 1.0:
            raise ConfigError(f"{at}.threshold must be a number in [0, 1], got {th!r}")
        specs.append(IntentSpec(name, tuple(" ".join(_tokens(p)) for p in lists["phrases"]),
                                frozenset(t for k in lists["keywords"] for t in _tokens(k)), float(th)))
    return tuple(specs)


def agent_intents(data: object, where: str) -> tuple[IntentSpec, ...]:
    """The `intents:` of an agent file's top-level mapping (see `read_agent_file`)."""
    return parse_intents(data.get("intents") if isinstance(data, dict) else None, where)


def load_intents(agent_path: str | Path) -> tuple[IntentSpec, ...]:
    return agent_intents(read_agent_file(agent_path), str(agent_path))


class IntentDetector:
    """Stateless scoring plus a per-turn memory of what was already reported (one per call)."""

    def __init__(self, specs: tuple[IntentSpec, ...], min_gain: float = 0.1):
        self.specs = specs
        self.min_gain = min_gain
        self._reported: dict[str, float] = {}

    def score(self, text: str) -> list[IntentHit]:
        toks = _tokens(text)
        joined = " " + " ".join(toks) + " "
        hits = []
        for s in self.specs:
            conf = 0.9 if any(f" {p} " in joined for p in s.phrases if p) else 0.0
            n = len(s.keywords.intersection(toks))
            if n:
                conf = max(conf, min(0.95, 0.55 + 0.15 * (n - 1)))
            if conf >= s.threshold and conf > 0:
                hits.append(IntentHit(s.name, round(conf, 3)))
        return sorted(hits, key=lambda h: -h.confidence)

    def detect(self, text: str) -> list[IntentHit]:
        """Hits not yet reported this turn (or risen by `min_gain` since)."""
        out = []
        for h in self.score(text):
            before = self._reported.get(h.intent)
            if before is None or h.confidence >= before + self.min_gain:
                self._reported[h.intent] = h.confidence
                out.append(h)
        return out

    def new_turn(self) -> None:
        self._reported.clear()
