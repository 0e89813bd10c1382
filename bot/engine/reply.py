"""One bot answer: the responder's stream turned into speech, prepared ahead and played on commit.

A `Reply` runs two things side by side. The producer reads the responder's chunks, cuts them into
sentences (the first one early, at a clause break) and synthesises each as soon as it is complete.
The player waits for the request to be committed (`RespondContext.committed`: the end of turn was
decided on this transcript), then opens a bot turn and hands the prepared sentences to the playout,
then the rest as they come. A reply started on a provisional transcript at a pause (a speculation)
has its first sentence ready when the end of turn comes; abandoned, it is cancelled and nothing
reached the caller, the history or the responder's state.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator, Protocol

import numpy as np

from ..audio.resample import resample
from ..services.responder import RespondContext, ResponderAction, ResponderError, ResponseChunk, ToolNote
from ..services.tts import SentenceBuffer, Tts

TROUBLE = "Sorry, I'm having trouble right now. Could you say that again?"


async def stream(chunks: list[ResponseChunk]) -> AsyncIterator[ResponseChunk]:
    """Chunks known in advance, as the stream a responder would give."""
    for c in chunks:
        yield c


def stream_text(text: str) -> AsyncIterator[ResponseChunk]:
    return stream([ResponseChunk(text)])


@dataclass(frozen=True)
class Spoken:
    """A sentence synthesised and ready to play."""
    text: str
    audio: np.ndarray
    rate: int


class ReplyHost(Protocol):
    """What a reply needs from its call (the call's BotTurns implements it)."""

    def open_bot_turn(self) -> int: ...

    def play(self, turn: int, sentence: Spoken) -> None: ...

    def add_turn_action(self, turn: int, action: ResponderAction) -> None: ...

    def close_bot_turn(self, turn: int) -> None: ...

    def on_tool_note(self, note: ToolNote, speculative: bool) -> None: ...

    def on_responder_error(self, error: ResponderError) -> None: ...


_END = object()


class Reply:
    def __init__(self, host: ReplyHost, tts: Tts, out_rate: int | None, chunks: AsyncIterator[ResponseChunk],
                 ctx: RespondContext):
        self._host = host
        self._tts = tts
        self._out_rate = out_rate
        self._chunks = chunks
        self.ctx = ctx
        self._items: asyncio.Queue[Spoken | ResponderAction | object] = asyncio.Queue()
        self.sentences = 0  # synthesised so far
        self.prepared = asyncio.Event()  # the responder's stream is fully synthesised (or failed)
        self.turn: int | None = None

    async def run(self) -> None:
        producer = asyncio.create_task(self._produce())
        try:
            await self.ctx.committed.wait()
            turn = self.turn = self._host.open_bot_turn()
            try:
                while True:
                    item = await self._items.get()
                    if item is _END:
                        break
                    if isinstance(item, ResponderAction):
                        self._host.add_turn_action(turn, item)
                    elif isinstance(item, Spoken):
                        self._host.play(turn, item)
            finally:
                self._host.close_bot_turn(turn)
            await producer  # re-raises what the producer did not handle
        finally:
            if not producer.done():
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)

    async def _produce(self) -> None:
        buf = SentenceBuffer()
        try:
            try:
                async for chunk in self._chunks:
                    if chunk.note is not None:
                        self._host.on_tool_note(chunk.note, self.ctx.speculative)
                    if chunk.action is not None:
                        self._items.put_nowait(chunk.action)
                    for sentence in buf.feed(chunk.text):
                        await self._say(sentence)
                for sentence in buf.flush():
                    await self._say(sentence)
            except ResponderError as e:
                self._host.on_responder_error(e)
                if not self.sentences:
                    await self._say(TROUBLE)
        finally:
            self._items.put_nowait(_END)
            self.prepared.set()

    async def _say(self, sentence: str) -> None:
        audio, rate = await self._tts.synthesize(sentence), self._tts.sample_rate
        out = self._out_rate
        if out and out != rate:  # convert off the event loop, not inside the transport's read
            audio = await asyncio.get_running_loop().run_in_executor(None, resample, audio, rate, out)
            rate = out
        self.sentences += 1
        self._items.put_nowait(Spoken(sentence, audio, rate))
