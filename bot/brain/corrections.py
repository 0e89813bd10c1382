"""Is what the caller said over the bot a correction of it ("no, the sixth", "it's ECS, not Kubernetes")?

A correction revises the turn it cut: the next answer continues from what the caller heard with
the correction applied, instead of answering as if a new question had been asked.
"""
from __future__ import annotations

import re

_OPENERS = ("no ", "nope ", "not ", "actually ", "i said ", "i meant ", "i mean ", "sorry i meant ",
            "sorry i said ", "that's wrong", "that is wrong", "that's not ", "that is not ", "wrong ",
            "correction ", "rather ", "no no ")
# "X, not Y" / "not Y but X" / "instead of Y"
_CONTRAST = re.compile(r"\b(not|instead of|rather than)\b")


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower())) + " "


def is_correction(text: str) -> bool:
    """True for words that correct what the bot said or assumed. "No" alone is not one (a caller
    declining is answered as usual), nor is a new question that happens to contain "not"."""
    low = _norm(text)
    words = low.split()
    if len(words) < 2:
        return False
    if low.startswith(_OPENERS):
        return True
    return bool(_CONTRAST.search(low)) and not low.rstrip().endswith("?") and not text.rstrip().endswith("?") \
        and words[0] in ("it's", "its", "it", "this", "that's", "thats", "the", "we're", "we", "i'm", "im", "i", "my")
