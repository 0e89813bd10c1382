"""A Reply prepares its sentences before it is committed and plays nothing until then; abandoned,
nothing reached the turn. Pure: a fake TTS, a recording host, the real RespondContext."""
import asyncio

import numpy as np

from bot.engine.reply import Reply, Spoken
from bot.services.responder import RespondContext, ResponderAction, ResponderError, ResponseChunk


class Tts:
    sample_rate = 16000

    def __init__(self):
        self.said = []

    async def synthesize(self, text):
        self.said.append(text)
        return np.zeros(160, np.float32)

    def close(self):
        pass


class Host:
    def __init__(self):
        self.log = []

    def open_bot_turn(self):
        self.log.append("open")
        return 7

    def play(self, turn, sentence: Spoken):
        self.log.append(("play", turn, sentence.text))

    def add_turn_action(self, turn, action):
        self.log.append(("action", action.name))

    def close_bot_turn(self, turn):
        self.log.append("close")

    def on_tool_note(self, note, speculative):
        self.log.append(("note", note.phase, speculative))

    def on_responder_error(self, error):
        self.log.append(("error", str(error)))


async def stream(*chunks):
    for c in chunks:
        yield c


async def test_sentences_are_synthesised_before_the_commit_and_played_after_it():
    tts, host, ctx = Tts(), Host(), RespondContext()
    reply = Reply(host, tts, None, stream(ResponseChunk("We open at nine. We close at six."),
                                          ResponseChunk(action=ResponderAction("hangup"))), ctx)
    task = asyncio.create_task(reply.run())
    await reply.prepared.wait()
    assert tts.said == ["We open at nine.", "We close at six."] and host.log == []  # ready, not played
    ctx.commit()
    await task
    assert host.log == ["open", ("play", 7, "We open at nine."), ("play", 7, "We close at six."),
                        ("action", "hangup"), "close"]


async def test_an_abandoned_reply_plays_nothing():
    tts, host, ctx = Tts(), Host(), RespondContext()
    task = asyncio.create_task(Reply(host, tts, None, stream(ResponseChunk("Hello there.")), ctx).run())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert host.log == [] and not ctx.committed.is_set()


async def test_a_failing_model_gets_an_apology_and_the_error_is_reported():
    async def broken():
        raise ResponderError("down", retryable=True)
        yield ResponseChunk("never")  # pragma: no cover

    tts, host = Tts(), Host()
    await Reply(host, tts, None, broken(), RespondContext.final()).run()
    played = [x for x in host.log if x[0] == "play"]
    assert ("error", "down") in host.log and len(played) == 1 and "trouble" in played[0][2]


async def test_on_commit_hooks_run_once_and_never_for_an_abandoned_request():
    ran = []
    ctx = RespondContext()
    ctx.on_commit(lambda: ran.append(1))
    assert ran == [] and ctx.speculative
    ctx.commit()
    ctx.commit()
    ctx.on_commit(lambda: ran.append(2))
    assert ran == [1, 2] and not ctx.speculative
