"""Optional Opus (sip/opus.py): codec round trip, SDP choice, an RTP session at the 48 kHz clock,
and a real baresip call that negotiates Opus and hears the bot's tone."""
import subprocess
import wave

import numpy as np
import pytest

from sip import sdp
from sip.media import RtpSession
from sip.rtp import RtpPacket

from .conftest import Inbox, in_thread, need

av = pytest.importorskip("av")
try:
    av.CodecContext.create("libopus", "w")
except Exception as e:   # noqa: BLE001
    pytest.skip(f"PyAV has no libopus: {e}", allow_module_level=True)

from sip.opus import OpusCodec  # noqa: E402


def tone(n0, n, hz=440):
    return (np.sin(2 * np.pi * hz * (np.arange(n) + n0) / 8000) * 8000).astype(np.int16)


def peak_hz(x):
    sp = np.abs(np.fft.rfft(x.astype(np.float32)))
    return np.argmax(sp) * 8000 / len(x)


def test_codec_round_trip_keeps_the_tone_and_the_duration():
    enc, dec = OpusCodec(), OpusCodec()
    out = []
    for i in range(50):
        pkt = enc.encode(tone(160 * i, 160))
        if pkt is not None:
            pcm = dec.decode(pkt)
            assert len(pcm) == 160
            out.append(pcm)
    assert len(out) >= 48
    assert abs(peak_hz(np.concatenate(out)[-4000:]) - 440) < 10
    with pytest.raises(ValueError):
        dec.decode(b"\xff" * 3)


OPUS_OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
              b"m=audio 4000 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1\r\n"
              b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/48000\r\n")


def test_sdp_picks_opus_only_when_enabled():
    offer = sdp.parse_sdp(OPUS_OFFER)
    ans, neg = sdp.answer(offer, "127.0.0.1", 20000, 1, codecs=("OPUS", "PCMU", "PCMA"))
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("OPUS", 111, 101)
    assert "a=rtpmap:111 opus/48000/2" in bytes(ans).decode()
    _, neg = sdp.answer(offer, "127.0.0.1", 20000, 1)
    assert neg.codec == "PCMU" and neg.dtmf_payload_type is None   # its telephone-event is at 48 kHz
    ours = sdp.offer("127.0.0.1", 30000, 2, codecs=("OPUS", "PCMU"))
    assert "m=audio 30000 RTP/AVP 111 0 101" in bytes(ours).decode()


def test_rtp_session_at_the_48k_clock():
    media = sdp.Negotiated(("127.0.0.2", 4000), 111, "OPUS", None, "sendrecv")
    s = RtpSession(media, 0.0, ssrc=1)
    enc = OpusCodec()
    frames = []
    ts0 = 2**32 - 960 * 10          # the 48 kHz timestamp wraps during the test
    for i in range(60):
        pkt = enc.encode(tone(160 * i, 160))
        if pkt is not None:
            s.receive(bytes(RtpPacket(111, 100 + i, (ts0 + 960 * i) % 2**32, 7, pkt)), ("127.0.0.2", 4000), 0.02 * i)
        frames.append(s.pull_frame())
    assert s.stats["received"] >= 58 and s.jitter.stats["reset"] == 0 and s.stats["late"] == 0
    assert abs(peak_hz(np.concatenate(frames)[-4000:]) - 440) < 10
    sent = [RtpPacket.parse(d) for i in range(5) for d, _ in s.send_audio(tone(160 * i, 160), 0.02 * i)]
    assert all((b.timestamp - a.timestamp) % 2**32 == 960 for a, b in zip(sent, sent[1:]))
    assert all(p.payload_type == 111 for p in sent)


@pytest.mark.peer
@need("baresip")
@need("sox")
async def test_baresip_call_with_opus(sip_server, tmp_path):
    from dataclasses import replace

    from sip import CallHangup
    from sip.ua import UaSettings

    async def beep(call):
        pos = [0]

        def pull(n):
            pos[0] += n
            return tone(pos[0], n, 1000)
        call.set_output(pull)
        inbox = Inbox(call)
        while not isinstance(await inbox.receive(), CallHangup):
            pass
    srv = await sip_server(beep, ua=replace(UaSettings(), codecs=("OPUS", "PCMU", "PCMA")))
    home = tmp_path
    (home / "rec").mkdir()
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "16", str(home / "silence.wav"), "trim", "0", "8"],
                   check=True, timeout=30)
    (home / "config").write_text(
        "poll_method epoll\nsip_listen 127.0.0.1:0\nnet_interface 127.0.0.1\nsip_transports udp\n"
        "audio_player aubridge,nowhere\naudio_source aufile," + str(home / "silence.wav") + "\n"
        "audio_alert aubridge,nowhere\nmodule_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule opus.so\n"
        "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule_app account.so\n"
        "module_app menu.so\nsnd_path " + str(home / "rec") + "\nrtp_timeout 0\n")
    (home / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0\n")

    def dial():
        return subprocess.run(["baresip", "-f", str(home), "-t", "5", "-e", f"/dial sip:bot@127.0.0.1:{srv.port}"],
                              capture_output=True, text=True, timeout=40)
    proc = await in_thread(dial)
    dec = sorted((home / "rec").glob("*-dec.wav"))
    assert dec, proc.stdout[-2000:]
    with wave.open(str(dec[-1])) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())[:, 0]
    assert "opus" in proc.stdout.lower() or rate == 48000, proc.stdout[-1500:]
    assert len(x) > rate, proc.stdout[-2500:]
    seg = x[-rate:].astype(np.float32)
    sp = np.abs(np.fft.rfft(seg))
    assert abs(np.argmax(sp) * rate / len(seg) - 1000) < 20 and np.abs(seg).max() > 1000
