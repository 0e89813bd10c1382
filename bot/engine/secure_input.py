"""Secure input: card numbers typed on the keypad while the call's audio is kept from everything.

The digits stay here, in memory, until '#' ends the entry; only their count leaves (to the
responder). Nothing of them reaches an event, a transcript, the store or a supervisor.
"""
from __future__ import annotations


class SecureInput:
    def __init__(self) -> None:
        self._digits: str | None = None  # not None while active

    @property
    def active(self) -> bool:
        return self._digits is not None

    def start(self) -> None:
        self._digits = ""

    def stop(self) -> None:
        self._digits = None  # the digits are dropped

    def key(self, digit: str) -> int | None:
        """A key pressed during entry: None while it goes on, the count of digits typed on '#'
        (the owner then ends the entry with `stop`)."""
        if self._digits is None:
            raise RuntimeError("secure input is not active")
        if digit != "#":
            self._digits += digit
            return None
        return len(self._digits)
