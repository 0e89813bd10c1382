"""Real peer: sipp scenarios against the server on 127.0.0.1 (tests/sip/scenarios/*.xml)."""
import asyncio
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sip import AudioChunk, CallHangup, DtmfDigit
from sip.rtp import RtpPacket

from .conftest import Inbox, in_thread, need

pytestmark = [pytest.mark.peer, need("sipp")]
SCEN = Path(__file__).parent / "scenarios"
DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")


def free_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_sipp(tmp: Path, name: str, port: int, subs: dict | None = None, transport: str = "u1",
             timeout: float = 30) -> subprocess.CompletedProcess:
    text = (SCEN / name).read_text()
    for k, v in (subs or {}).items():
        text = text.replace(f"@{k}@", str(v))
    scen = tmp / name
    scen.write_text(text)
    cmd = ["sipp", "-sf", str(scen), f"127.0.0.1:{port}", "-m", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
           "-mi", "127.0.0.1",
           "-mp", str(free_udp_port()), "-t", transport, "-nostdin", "-timeout", f"{int(timeout)}s",
           "-timeout_error", "-trace_err", "-error_file", str(tmp / f"{name}.err")]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout + 10)
    if proc.returncode != 0:
        err = (tmp / f"{name}.err").read_text() if (tmp / f"{name}.err").exists() else ""
        raise AssertionError(f"sipp {name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{err[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Caller speech as a mu-law WAV for sipp, and bot speech as PCM16 8 kHz, made with espeak-ng + sox."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to make test speech")
    d = tmp_path_factory.mktemp("speech")
    subprocess.run(["espeak-ng", "-w", str(d / "caller.wav"), "I would like to check my order please"], check=True,
                   timeout=30)
    subprocess.run(["sox", str(d / "caller.wav"), "-r", "8000", "-c", "1", "-e", "u-law", str(d / "caller_ulaw.wav")],
                   check=True, timeout=30)
    subprocess.run(["espeak-ng", "-w", str(d / "bot.wav"), "Thanks for calling. How can I help?"], check=True,
                   timeout=30)
    subprocess.run(["sox", str(d / "bot.wav"), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                    "-t", "raw", str(d / "bot.raw")], check=True, timeout=30)
    return d / "caller_ulaw.wav", np.frombuffer((d / "bot.raw").read_bytes(), "<i2").astype(np.int16)


class Recorder:
    """A fake application: records caller audio and DTMF, plays `answer` back at the RTP pace."""

    def __init__(self, answer=None, then=None):
        self.answer = answer
        self.then = then
        self.frames: list[np.ndarray] = []
        self.digits: list[str] = []
        self.calls = []
        self.ended = asyncio.Event()
        self.result = None

    async def __call__(self, call):
        self.calls.append(call)
        pos = [0]

        def pull(n):
            if self.answer is None or pos[0] >= len(self.answer):
                return None
            chunk = self.answer[pos[0]:pos[0] + n]
            pos[0] += n
            return np.pad(chunk, (0, n - len(chunk)))
        call.set_output(pull)
        inbox = Inbox(call)
        action = asyncio.create_task(self.then(call)) if self.then else None
        try:
            while True:
                item = await inbox.receive()
                if isinstance(item, AudioChunk):
                    self.frames.append(item.pcm)
                elif isinstance(item, DtmfDigit):
                    self.digits.append(item.digit)
                elif isinstance(item, CallHangup):
                    self.reason = item.reason
                    break
            if action:
                self.result = await action
        finally:
            self.ended.set()


async def test_call_with_audio_both_ways(sip_server, tmp_path, speech):
    caller_wav, bot_pcm = speech

    async def strangers(call):
        # bad input on the media port mid-call: a counted drop each, never a disturbance
        import socket
        await asyncio.sleep(1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            for junk in (b"\x00garbage", b"\x80" * 5, bytes(RtpPacket(0, 1, 1, 0x1234, b"\xff" * 160))):
                s.sendto(junk, ("127.0.0.1", call.rtp_port))
    rec = Recorder(answer=bot_pcm, then=strangers)
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "call_audio.xml", srv.port, {"caller_audio": caller_wav, "hold_ms": 3500})
    await asyncio.wait_for(rec.ended.wait(), 5)
    assert rec.reason == "remote_bye"
    audio = np.concatenate(rec.frames).astype(np.float32)
    voiced = np.mean(np.abs(audio.reshape(-1, 160)).mean(axis=1) > 300)
    assert voiced > 0.2, f"caller speech did not arrive (voiced fraction {voiced:.2f})"
    s = rec.calls[0].session
    assert s.sent_packets >= 100 and s.stats["received"] >= 100
    assert s.locked is not None and s.stats["malformed"] == 2 and s.stats["foreign_source"] == 1


@pytest.mark.skipif(not DTMF_PCAP.exists(), reason="sip-tester's DTMF capture is not installed")
async def test_dtmf_rfc4733(sip_server, tmp_path):
    rec = Recorder()
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "call_dtmf.xml", srv.port, {"dtmf_pcap": DTMF_PCAP})
    await asyncio.wait_for(rec.ended.wait(), 5)
    assert rec.digits == ["1"]


async def test_cancel_before_answer(sip_server, tmp_path):
    rec = Recorder()
    srv = await sip_server(rec, answer_delay=5.0)
    await in_thread(run_sipp, tmp_path, "cancel.xml", srv.port)
    assert not rec.calls and srv.stats["internal_error"] == 0
    assert all(c.state == "ended" for c in srv.ua.calls.values())


async def test_reinvite_hold_resume(sip_server, tmp_path):
    rec = Recorder()
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "reinvite.xml", srv.port)
    await asyncio.wait_for(rec.ended.wait(), 5)
    assert rec.calls[0].session.media.direction == "sendrecv" and rec.reason == "remote_bye"


async def test_lost_ack_retransmits_200_and_makes_one_call(sip_server, tmp_path):
    rec = Recorder()
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "lost_ack.xml", srv.port)
    await asyncio.wait_for(rec.ended.wait(), 5)
    assert len(rec.calls) == 1 and srv.ua.stats["retransmitted"] >= 1


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_bye_from_bot(sip_server, tmp_path, transport):
    async def hang_up_soon(call):
        await asyncio.sleep(0.5)     # the bot's "conversation"
        call.hangup()
    rec = Recorder(then=hang_up_soon)
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "bye_from_bot.xml", srv.port, None, transport)
    await asyncio.wait_for(rec.ended.wait(), 5)
    assert rec.reason == "local"


async def test_refer_blind_transfer_accepted(sip_server, tmp_path):
    async def transfer(call):
        await asyncio.sleep(0.3)
        return await call.transfer("sip:queue@127.0.0.1:5099")
    rec = Recorder(then=transfer)
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "refer.xml", srv.port)
    await asyncio.wait_for(rec.ended.wait(), 5)
    assert rec.result is True


async def test_a_stalled_event_loop_loses_no_caller_audio(sip_server, tmp_path, speech):
    caller_wav, _ = speech

    async def stall(call):
        import time
        await asyncio.sleep(1.0)
        time.sleep(0.6)          # simulate a stalled event loop (GC pause, a blocking bug elsewhere)
    rec = Recorder(then=stall)
    srv = await sip_server(rec)
    await in_thread(run_sipp, tmp_path, "call_audio.xml", srv.port, {"caller_audio": caller_wav, "hold_ms": 3000})
    await asyncio.wait_for(rec.ended.wait(), 5)
    s = rec.calls[0].session
    assert srv.stats["media_clock_skips"] >= 1
    # the frames that piled up during the stall were delivered (a little faster), not dropped
    assert s.jitter.stats["skipped"] == 0 and s.jitter.stats["late"] == 0, s.jitter.stats
    assert s.stats["caught_up"] > 0
    assert len(rec.frames) >= 0.9 * (s.jitter.stats["played"] + s.jitter.stats["underrun"])


async def session_timer_call(sip_server, tmp_path, scenario):
    """One sipp call against a UA with 2 s session timers; returns (recorder, server) once it ended."""
    from dataclasses import replace

    from sip.ua import UaSettings
    rec = Recorder()
    srv = await sip_server(rec, ua=replace(UaSettings(), min_se=2))
    await in_thread(run_sipp, tmp_path, scenario, srv.port)
    await asyncio.wait_for(rec.ended.wait(), 5)
    return rec, srv


async def test_session_timer_bot_refreshes(sip_server, tmp_path):
    rec, srv = await session_timer_call(sip_server, tmp_path, "session_refresh.xml")
    assert rec.reason == "remote_bye" and srv.ua.stats["session_expired"] == 0


async def test_session_timer_expires_when_the_peer_does_not_refresh(sip_server, tmp_path):
    rec, srv = await session_timer_call(sip_server, tmp_path, "session_expiry.xml")
    assert rec.reason == "session_expired" and srv.ua.stats["session_expired"] == 1
