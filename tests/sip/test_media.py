"""sip.rtp, sip.jitter, sip.dtmf, sip.g711 and sip.media with a fake clock."""
import struct
from pathlib import Path

import numpy as np
import pytest

from sip import g711
from sip.dtmf import DtmfReceiver, TelephoneEvent, event_packets
from sip.jitter import JitterBuffer, SequenceTracker
from sip.media import MediaSettings, RtpSession
from sip.rtp import RtcpPacket, RtpPacket, bye, is_rtcp, receiver_report, sender_report
from sip.sdp import Negotiated

PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")


def test_rtp_roundtrip_and_errors():
    p = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True, csrc=(1, 2))
    q = RtpPacket.parse(bytes(p))
    assert q == p
    for bad in (b"", b"\x80" * 11, b"\x40" + b"\x00" * 11, b"\x8f" + b"\x00" * 11,
                b"\xa0\x00" + b"\x00" * 10 + b"\x00"):
        with pytest.raises(ValueError):
            RtpPacket.parse(bad)


def test_rtcp_reports_parse():
    from sip.rtp import ReportBlock
    blk = ReportBlock(7, 3, 12, 1000, 40)
    pkts = RtcpPacket.parse_compound(sender_report(5, 1 << 40, 160, 10, 1600, blk) + bye(5))
    assert [p.packet_type for p in pkts] == [200, 202, 203]
    assert pkts[0].sender[2:] == (10, 1600) and pkts[0].reports[0].cumulative_lost == 12
    assert is_rtcp(receiver_report(5, None)) and not is_rtcp(bytes(RtpPacket(0, 1, 1, 1)))
    with pytest.raises(ValueError):
        RtcpPacket.parse_compound(b"\x81\xc8\x00\x10abcd")


def test_sequence_tracker_probation_wrap_and_restart():
    s = SequenceTracker()
    assert [s.update(n) for n in (65534, 65535, 0, 1)] == [False, True, True, True]
    assert s.extended_max == 65536 + 1 and s.cycles == 65536
    assert s.update(30000) is False          # a jump: not accepted alone
    assert s.update(30001) is True           # two in a row: the source restarted
    assert s.update(29995) is True           # small misorder is fine


def _frames(n, start_ts=1000):
    return [(start_ts + 160 * i, np.full(160, i + 1, np.int16)) for i in range(n)]


def test_jitter_buffer_reorders_and_conceals_loss():
    jb = JitterBuffer()
    frames = _frames(12)
    arrivals = {0: [0], 1: [2], 2: [1], 3: [3], 4: [], 5: [5], 6: [6], 7: [7], 8: [8], 9: [9], 10: [10], 11: [11]}
    played = []
    for tick in range(12):      # one packet per 20 ms tick: #1 and #2 swapped, #4 lost
        for i in arrivals[tick]:
            jb.put(frames[i][0], frames[i][1], tick * 0.02)
        f = jb.pop()
        if f is not None:
            played.append(int(f[0]))
    assert played[:4] == [1, 2, 3, 4]
    assert 0 < played[4] < 4            # frame 5 concealed: the last frame, faded
    assert played[5:7] == [6, 7]
    assert jb.stats["concealed"] == 1 and jb.stats["late"] == 0


def test_jitter_buffer_waits_for_target_then_adapts():
    jb = JitterBuffer()
    jb.put(0, np.ones(160, np.int16), 0.0)
    assert jb.pop() is None                  # 20 ms buffered < 60 ms target
    for i in range(1, 4):
        jb.put(160 * i, np.ones(160, np.int16), 0.02 * i)
    assert jb.pop() is not None
    assert 0.06 <= jb.target <= 0.08
    # a burst far beyond the target is trimmed, late packets are dropped and counted
    for i in range(4, 30):
        jb.put(160 * i, np.ones(160, np.int16), 0.1)
    jb.pop()
    assert jb.stats["skipped"] >= 1
    assert jb.put(0, np.ones(160, np.int16), 0.2) is False and jb.stats["late"] == 1


def test_dtmf_receiver_reports_once_and_sender_packets():
    rx = DtmfReceiver()
    pk = event_packets("5", 100)
    got = [rx.feed(1234, payload) for payload, _ in pk]
    assert [g for g in got if g] == [("5", 100)]
    assert TelephoneEvent.parse(pk[-1][0]).end and pk[0][1] is True
    with pytest.raises(ValueError):
        event_packets("x")
    with pytest.raises(ValueError):
        TelephoneEvent.parse(b"\x01")


def _pcap_rtp(path):
    data = path.read_bytes()
    pos, out = 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        # Ethernet(14) + IPv4(ihl) + UDP(8)
        ihl = (frame[14] & 0x0F) * 4
        out.append(frame[14 + ihl + 8:])
    return out


@pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's RFC 2833 capture is not installed")
def test_dtmf_from_sipp_capture():
    rx = DtmfReceiver()
    digits = []
    for raw in _pcap_rtp(PCAP):
        pkt = RtpPacket.parse(raw)
        if (d := rx.feed(pkt.timestamp, pkt.payload)):
            digits.append(d[0])
    assert digits == ["1"]


def test_g711_roundtrip():
    x = (np.sin(np.arange(800) / 8) * 12000).astype(np.int16)
    for c in ("PCMU", "PCMA"):
        y = g711.decode(g711.encode(x, c), c)
        assert np.abs(y.astype(int) - x).max() < 400
        assert np.abs(g711.decode(g711.silence(c), c)).max() <= 8


MEDIA = Negotiated(("127.0.0.1", 40000), 0, "PCMU", 101, "sendrecv")
PEER = ("127.0.0.1", 40000)


def rtp(seq, ts, ssrc=99, pt=0, payload=None):
    if payload is None:
        payload = g711.encode(np.full(160, 1000, np.int16), "PCMU")
    return bytes(RtpPacket(pt, seq, ts, ssrc, payload))


def test_session_rejects_strangers_and_learns_after_signalling():
    s = RtpSession(MEDIA._replace() if hasattr(MEDIA, "_replace") else MEDIA, 0.0, ssrc=1)
    stranger = ("127.0.0.1", 50000)
    s.receive(rtp(1, 160), stranger, 0.01)
    assert s.stats["foreign_source"] == 1          # before signalling, only the SDP address
    s.open_learning(frozenset({"127.0.0.1"}))
    s.receive(rtp(2, 320), ("127.0.0.1", 40002), 0.02)   # NAT'd peer: learned, locked
    assert s.locked == ("127.0.0.1", 40002)
    s.receive(rtp(3, 480), stranger, 0.03)
    s.receive(b"garbage", ("127.0.0.1", 40002), 0.03)
    assert s.stats["foreign_source"] == 2 and s.stats["malformed"] == 1
    out = s.send_audio(np.zeros(160, np.int16), 0.04)
    assert out[0][1] == ("127.0.0.1", 40002)


def test_session_timeout_dtmf_and_sending():
    s = RtpSession(MEDIA, 0.0, MediaSettings(rtp_timeout=30.0), ssrc=1)
    for i, (payload, marker) in enumerate(event_packets("9", 60)):
        s.receive(bytes(RtpPacket(101, 10 + i, 8000, 99, payload, marker)), PEER, 0.1)
    assert [d.digit for d in s.events()] == ["9"]
    assert not s.timed_out(29.0) and s.timed_out(30.2)
    s.send_dtmf("1", 40)
    sent = [RtpPacket.parse(s.send_audio(np.zeros(160, np.int16), 31 + i * 0.02)[0][0]) for i in range(6)]
    assert [p.payload_type for p in sent] == [101] * 5 + [0]
    assert len({p.timestamp for p in sent[:5]}) == 1 and sent[0].marker
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in zip(sent, sent[1:]))


def test_session_plays_caller_audio():
    s = RtpSession(MEDIA, 0.0, ssrc=1)
    for i in range(6):
        s.receive(rtp(100 + i, 160 * i), PEER, 0.02 * i)
    frames = [s.pull_frame() for _ in range(4)]
    assert all(len(f) == 160 for f in frames) and any(abs(int(f[0]) - 1000) < 50 for f in frames)


def test_jitter_buffer_across_ring_and_32bit_timestamp_wrap():
    jb = JitterBuffer()
    start = 2**32 - 7 * 160 - 50        # crosses 2^32 and the ring's end
    played = []
    for i in range(30):
        jb.put((start + 160 * i) % 2**32, np.full(160, i + 1, np.int16), i * 0.02)
        f = jb.pop()
        if f is not None:
            assert len(set(f.tolist())) == 1     # never a frame stitched from two packets wrongly
            played.append(int(f[0]))
    assert played == list(range(1, len(played) + 1)) and len(played) > 20
    assert jb.stats["concealed"] == 0 and jb.stats["reset"] == 0


def test_reinvite_moves_stream_and_new_ssrc_restarts_it():
    s = RtpSession(MEDIA, 0.0, ssrc=1)
    for i in range(5):
        s.receive(rtp(10 + i, 160 * i), PEER, 0.02 * i)
    moved = Negotiated(("127.0.0.1", 41000), 0, "PCMU", 101, "sendrecv")
    s.update(moved, 0.2)
    s.receive(rtp(15, 800), PEER, 0.21)                        # the old address is a stranger now
    assert s.stats["foreign_source"] == 1
    s.receive(rtp(500, 90000, ssrc=77), ("127.0.0.1", 41000), 0.22)   # new address, new SSRC
    assert s.locked == ("127.0.0.1", 41000) and s.stats["ssrc_change"] == 1 and s.remote_ssrc == 77
    out = s.send_audio(np.zeros(160, np.int16), 0.3)
    assert out[0][1] == ("127.0.0.1", 41000)


def test_hold_suspends_the_rtp_timeout():
    s = RtpSession(MEDIA, 0.0, MediaSettings(rtp_timeout=5.0), ssrc=1)
    s.update(Negotiated(("127.0.0.1", 40000), 0, "PCMU", 101, "sendonly"), 1.0)   # we send, they hold
    assert not s.timed_out(100.0)
    s.update(MEDIA, 100.0)
    assert not s.timed_out(104.0) and s.timed_out(105.5)


def _fixture_packets(name):
    data = (Path(__file__).parent / "fixtures" / name).read_bytes()
    pos, out = 0, []
    while pos < len(data):
        n = struct.unpack_from("!H", data, pos)[0]
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def test_captured_baresip_rtp_plays_back_the_tone():
    """50 RTP packets captured from baresip sending a 440 Hz tone (tests/sip/fixtures/baresip_rtp.bin)."""
    pkts = [RtpPacket.parse(p) for p in _fixture_packets("baresip_rtp.bin")]
    assert len(pkts) == 50 and {p.payload_type for p in pkts} == {0} and len({p.ssrc for p in pkts}) == 1
    assert all((b.sequence - a.sequence) % 65536 == 1 and (b.timestamp - a.timestamp) % 2**32 == 160
               for a, b in zip(pkts, pkts[1:]))
    assert all(bytes(p) == raw for p, raw in zip(pkts, _fixture_packets("baresip_rtp.bin")))
    s = RtpSession(MEDIA, 0.0, ssrc=1)
    frames = []
    for i, raw in enumerate(_fixture_packets("baresip_rtp.bin")):   # at the real pace: one per 20 ms tick
        s.receive(raw, PEER, 0.02 * i)
        frames.append(s.pull_frame())
    pcm = np.concatenate(frames).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(pcm[-4000:]))
    assert abs(np.argmax(spectrum) * 8000 / 4000 - 440) < 10


def test_captured_baresip_rtcp():
    """RTCP baresip sent us during a call: an APP packet, then SR + SDES whose report block is about us."""
    first, second = [RtcpPacket.parse_compound(p) for p in _fixture_packets("baresip_rtcp.bin")]
    assert [p.packet_type for p in first] == [204]
    sr, sdes = second
    assert sr.packet_type == 200 and sdes.packet_type == 202 and sr.ssrc == sdes.ssrc
    assert sr.sender[2] > 0 and len(sr.reports) == 1 and sr.reports[0].cumulative_lost == 0
    s = RtpSession(MEDIA, 0.0, ssrc=1)
    s.receive(_fixture_packets("baresip_rtcp.bin")[1], PEER, 0.0)
    assert s.stats["rtcp"] == 2 and s.stats["malformed_rtcp"] == 0


def test_skip_output_leaves_a_timestamp_gap():
    s = RtpSession(MEDIA, 0.0, ssrc=1)
    a = RtpPacket.parse(s.send_audio(np.zeros(160, np.int16), 0.0)[0][0])
    s.skip_output(10)
    b = RtpPacket.parse(s.send_audio(np.zeros(160, np.int16), 0.22)[0][0])
    assert (b.timestamp - a.timestamp) % 2**32 == 11 * 160 and (b.sequence - a.sequence) % 65536 == 1
