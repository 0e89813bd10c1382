"""The inbound mailbox every transport hands caller items through: what `Transport.receive()` reads.

One rule for every call path (Twilio, SIP/RTP, WebRTC, the simulator):

- it holds at most `capacity` items; when caller audio arrives at a full mailbox the *oldest audio
  frame* goes (or the arriving one, if nothing held is audio), and the drop is counted. A live feed
  prefers fresh sound to late sound: an engine that fell behind hears the caller as they are now;
- `Dtmf` and `Hangup` are never dropped, and they keep their place in the order (a key press the
  caller made while the engine was stalled still arrives, after the audio that preceded it). They
  may take the mailbox past `capacity`: they are a few bytes each, and a caller presses keys at
  human speed;
- the first `Hangup` is final: later items are ignored, and once the mailbox is drained every
  `get()` returns that same `Hangup` again.

250 items is 5 s of the 20 ms frames every transport delivers: beyond that the engine is stuck, not
slow. `wait_idle()` tells a driver (the simulator's `--fast` mode) that the engine has consumed
everything and is waiting for more.
"""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from ..audio.frame import AudioFrame
from .port import Hangup, InboundItem

DEFAULT_CAPACITY = 250  # 5 s of 20 ms caller frames


@dataclass
class MailboxStats:
    audio_in: int = 0  # caller audio frames put
    control_in: int = 0  # DTMF and hang-ups put
    dropped_audio: int = 0  # audio frames dropped because the mailbox was full
    ignored: int = 0  # items put after the hang-up

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class InboundMailbox:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.stats = MailboxStats()
        self._items: deque[InboundItem] = deque()
        self._audio = 0  # audio frames held
        self._held = 0.0  # seconds of caller audio held (the engine's backlog on this call)
        self._final: Hangup | None = None
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def held_seconds(self) -> float:
        """Seconds of caller audio waiting for the engine: how far behind real time it is."""
        return max(0.0, self._held)

    @property
    def ended(self) -> bool:
        """A `Hangup` was put: nothing more gets in."""
        return self._final is not None

    def put(self, item: InboundItem) -> bool:
        """Queue `item` for `get()`. True when an audio frame was dropped to make room."""
        if self._final is not None:
            self.stats.ignored += 1
            return False
        dropped = False
        if isinstance(item, AudioFrame):
            self.stats.audio_in += 1
            if len(self._items) >= self.capacity:
                dropped = True
                self.stats.dropped_audio += 1
                if not self._drop_oldest_audio():
                    return True  # nothing held is audio: the arriving frame is the oldest
            self._audio += 1
            self._held += item.duration
        else:
            self.stats.control_in += 1
            if isinstance(item, Hangup):
                self._final = item
        self._items.append(item)
        self._idle.clear()
        self._ready.set()
        return dropped

    def _drop_oldest_audio(self) -> bool:
        if self._audio == 0:
            return False
        if isinstance(self._items[0], AudioFrame):  # the usual case: audio at the head
            gone = self._items.popleft()
        else:
            i = next(i for i, x in enumerate(self._items) if isinstance(x, AudioFrame))
            gone = self._items[i]
            del self._items[i]
        self._audio -= 1
        if isinstance(gone, AudioFrame):
            self._held -= gone.duration
        return True

    async def get(self) -> InboundItem:
        """The next item in order; after the hang-up has been read, that hang-up again."""
        while not self._items:
            if self._final is not None:
                return self._final
            self._ready.clear()
            self._idle.set()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, AudioFrame):
            self._audio -= 1
            self._held = self._held - item.duration if self._audio else 0.0  # (no drift when empty)
        return item

    async def wait_idle(self) -> None:
        """Until the reader has taken every item and is waiting on an empty mailbox."""
        await self._idle.wait()
