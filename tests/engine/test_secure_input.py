"""Card numbers by DTMF: during secure input nothing the caller types or says is stored anywhere in
Redis, supervisors hear nothing, and the bot confirms without repeating the digits."""
import asyncio
import re
from dataclasses import replace

from bot.engine import events as ev
from bot.runtime import Runtime
from bot.settings import Settings
from bot.sim.caller import simulate
from bot.sim.script import parse_script

CARD = "4111111111111111"


async def test_secure_card_entry_leaves_no_digits_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    rt = await Runtime.start(replace(Settings.for_tests(), state_enabled=True))
    try:
        taps_during_secure = []
        script = parse_script({"steps": [
            {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4},
            {"say": "I would like to pay my bill by card."}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4},
            {"say": "my number is four one one one"},
            {"dtmf": CARD + "#"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4}, {"hangup": True}]})
        call = asyncio.create_task(simulate(rt, script, fast=True, call_id="secure-1"))
        while rt.calls.get("secure-1") is None:
            await asyncio.sleep(0)
        session = rt.calls.get("secure-1")
        session.add_audio_tap(lambda c, b: taps_during_secure.append(session.secure_input))
        result = await asyncio.wait_for(call, 120)
        assert await rt.state.flush(5)
        kinds = [(e.type, getattr(e, "name", ""), getattr(e, "target", "")) for e in result.events]
        assert ("action", "secure_input", "on") in kinds and ("action", "secure_input", "off") in kinds
        assert not any(taps_during_secure), "supervisor audio must pause during secure input"
        said = " ".join(e.text for e in result.events if isinstance(e, ev.BotSpeechStart))
        assert "card details" in said and "4111" not in said
        digits = [e.digit for e in result.events if isinstance(e, ev.DtmfReceived)]
        assert digits and set(digits) == {"*"}
        caller_text = [e.text for e in result.events if isinstance(e, ev.TranscriptFinal) and e.speaker == "caller"]
        assert not any("four" in t.lower() for t in caller_text)  # speech during secure input is not transcribed
        # scan every key and value in Redis
        r = rt.state.redis
        blob = []
        async for key in r.scan_iter(count=1000):
            blob.append(str(key))
            kind = (await r.type(key)).decode() if isinstance(await r.type(key), bytes) else await r.type(key)
            if kind == "string":
                blob.append(str(await r.get(key)))
            elif kind == "hash":
                blob.append(str(await r.hgetall(key)))
            elif kind == "stream":
                blob.append(str(await r.xrange(key)))
            elif kind == "list":
                blob.append(str(await r.lrange(key, 0, -1)))
            elif kind == "set":
                blob.append(str(await r.smembers(key)))
            elif kind == "zset":
                blob.append(str(await r.zrange(key, 0, -1)))
        text = " ".join(blob)
        assert "secure-1" in text and "four one" not in text.lower()
        # the card's digits, or the spoken "four one one one" as ASR writes it, start a number; a
        # "4111" inside a millisecond timestamp or a stream id is not them
        assert CARD not in text and not re.search(r"(?<![\d.])4111", text), re.findall(r".{60}4111.{20}", text)
    finally:
        await rt.close()
