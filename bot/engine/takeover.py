"""A supervisor's hold on a call they took over: their audio goes out in the bot's place until
they release it (the bot then listens and answers again)."""
from __future__ import annotations

from typing import Callable

from ..audio.frame import AudioFrame


class TakeoverPort:
    def __init__(self, push: Callable[[AudioFrame], None], release: Callable[[], None]) -> None:
        self._push = push
        self._release = release

    def push(self, frame: AudioFrame) -> None:
        self._push(frame)

    def release(self) -> None:
        self._release()
