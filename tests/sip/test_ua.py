"""sip.ua: two user agent cores wired to each other in memory, with a fake clock."""
from sip import sdp
from sip.dialog import make_response
from sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    IncomingCall,
    MediaChanged,
    RegistrationChanged,
    TransferResult,
)
from sip.message import Request, parse_message
from sip.registration import RegistrationSettings
from sip.ua import UaSettings, UserAgent

A = ("127.0.0.1", 5060)   # the bot (UAS)
B = ("127.0.0.2", 5062)   # the peer (UAC)


class Pair:
    def __init__(self, **uas):
        self.now = 0.0
        self.uas = UserAgent(UaSettings(host=A[0], port=A[1], seed=1, **uas))
        self.uac = UserAgent(UaSettings(host=B[0], port=B[1], seed=2))
        self.drop = None          # predicate: drop a datagram in flight
        self.wire: list[tuple[str, bytes]] = []
        self.events = {id(self.uas): [], id(self.uac): []}

    def transfer(self):
        moved = True
        while moved:
            moved = False
            for src, dst, addr in ((self.uas, self.uac, A), (self.uac, self.uas, B)):
                for data, to, _ in src.datagrams_to_send():
                    moved = True
                    self.wire.append(("uas" if src is self.uas else "uac", data))
                    if self.drop and self.drop(data):
                        continue
                    dst.receive_datagram(data, addr, self.now)
            for ua in (self.uas, self.uac):
                while (ev := ua.next_event()) is not None:
                    self.events[id(ua)].append(ev)
                    moved = True

    def advance(self, to):
        while True:
            t = min([x for x in (self.uas.get_timer(), self.uac.get_timer()) if x is not None], default=None)
            if t is None or t > to:
                break
            self.now = max(self.now, t)
            self.uas.handle_timer(self.now)
            self.uac.handle_timer(self.now)
            self.transfer()
        self.now = to

    def ev(self, side, kind):
        return [e for e in self.events[id(getattr(self, side))] if isinstance(e, kind)]

    def setup(self):
        cid = self.uac.invite("sip:bot@127.0.0.1", A, 30000, self.now)
        self.transfer()
        inc = self.ev("uas", IncomingCall)[-1]
        self.uas.ring(inc.call_id, self.now)
        media = self.uas.answer(inc.call_id, 20000, self.now)
        self.transfer()
        return cid, media

    def sent(self, side, first_line):
        return [d for s, d in self.wire if s == side and d.startswith(first_line)]


def test_call_setup_bye_from_caller():
    p = Pair()
    cid, media = p.setup()
    assert media.codec == "PCMU" and media.remote_addr == ("127.0.0.2", 30000)
    assert p.ev("uac", CallAnswered)[0].media.remote_addr == ("127.0.0.1", 20000)
    assert p.ev("uas", CallConfirmed)
    p.uac.hangup(cid, p.now)
    p.transfer()
    assert p.ev("uas", CallEnded)[0].reason == "remote_bye"
    assert p.ev("uac", CallEnded)[0].reason == "local_bye"


def test_bye_from_bot():
    p = Pair()
    cid, _ = p.setup()
    p.uas.hangup(cid, p.now)
    p.transfer()
    assert p.ev("uac", CallEnded)[0].reason == "remote_bye"
    assert p.sent("uac", b"SIP/2.0 200 OK") and p.uas.calls[cid].state == "ended"


def test_lost_ack_then_retransmissions_absorbed_and_one_call():
    p = Pair()
    lost = {"n": 0}

    def drop(data):
        if data.startswith(b"ACK") and lost["n"] < 2:
            lost["n"] += 1
            return True
        return False
    p.drop = drop
    cid, _ = p.setup()
    assert not p.ev("uas", CallConfirmed)
    p.advance(2.0)     # 200 OK retransmitted at 0.5 and 1.5 s; the UAC answers each with an ACK
    oks = [d for d in p.sent("uas", b"SIP/2.0 200 OK") if b"INVITE" in d.split(b"CSeq:")[1][:20]]
    assert len(oks) >= 2 and p.ev("uas", CallConfirmed)
    assert len(p.ev("uas", IncomingCall)) == 1 and len(p.ev("uac", CallAnswered)) == 1


def test_no_ack_at_all_gives_up_after_64_t1_with_bye():
    p = Pair()
    p.drop = lambda d: d.startswith(b"ACK")
    cid, _ = p.setup()
    p.advance(33.0)
    assert p.ev("uas", CallEnded)[0].reason == "no_ack"
    assert p.sent("uas", b"BYE")


def test_retransmitted_invite_never_makes_a_second_call():
    p = Pair()
    p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    data = p.uac.datagrams_to_send()[0][0]
    for _ in range(3):
        p.uas.receive_datagram(data, B, 0.0)
    assert sum(1 for _ in iter(p.uas.next_event, None)) == 1
    assert p.uas.stats["retransmission_absorbed"] == 2


def test_cancel_before_answer_gets_487():
    p = Pair()
    cid = p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    p.transfer()
    inc = p.ev("uas", IncomingCall)[0]
    p.uas.ring(inc.call_id, p.now)
    p.transfer()
    p.uac.hangup(cid, p.now)       # early: CANCEL
    p.transfer()
    assert p.sent("uac", b"CANCEL") and p.sent("uas", b"SIP/2.0 487")
    assert p.ev("uas", CallEnded)[0].reason == "cancelled"
    assert p.ev("uac", CallEnded)[0].reason == "cancelled"


def test_reinvite_hold_and_resume():
    p = Pair()
    cid, _ = p.setup()
    call = p.uac.calls[cid]
    held = sdp.offer("127.0.0.2", 30002, 5, 1, direction="sendonly")
    p.uac._send_in_dialog(call, "INVITE", p.now, "reinvite", extra=(("Content-Type", "application/sdp"),),
                          body=bytes(held))
    p.transfer()
    ch = p.ev("uas", MediaChanged)[-1]
    assert ch.media.direction == "recvonly" and ch.media.remote_addr == ("127.0.0.2", 30002)
    assert p.uas.calls[cid].state == "confirmed" and not p.uas.calls[cid].invite_txn.state == "accepted"


def test_session_timer_refresher_uas_refreshes_and_peer_silence_ends_call():
    p = Pair()
    cid = p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    inv = p.uac.calls[cid].invite
    p.uac.calls[cid].invite = Request(inv.method, inv.uri, inv.headers.add("Session-Expires", "120;refresher=uas")
                                      .add("Supported", "timer"), inv.body)
    # resend the modified INVITE as the first one
    p.uac.datagrams_to_send()
    p.uac.client.transactions.clear()
    p.uac.client.start(p.uac.calls[cid].invite, A, "udp", "invite", cid, p.now)
    p.transfer()
    inc = p.ev("uas", IncomingCall)[0]
    p.uas.answer(inc.call_id, 20000, p.now)
    p.transfer()
    ok = [parse_message(d) for d in p.sent("uas", b"SIP/2.0 200")][0]
    assert ok.headers.get("Session-Expires") == "120;refresher=uas"
    p.advance(61.0)    # we refresh at half the interval with a re-INVITE
    assert [d for d in p.sent("uas", b"INVITE")]
    assert p.uas.calls[cid].state == "confirmed"


def test_session_interval_too_small_gets_422():
    p = Pair()
    p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    data = p.uac.datagrams_to_send()[0][0].replace(b"Supported: timer", b"Supported: timer\r\nSession-Expires: 30")
    p.uas.receive_datagram(data, B, 0.0)
    out = parse_message(p.uas.datagrams_to_send()[0][0])
    assert out.status == 422 and out.headers.get("Min-SE") == "90"


def test_load_shedding_503_with_retry_after():
    p = Pair(max_calls=1, max_cps=100, retry_after=7)
    p.setup()
    p.uac.invite("sip:bot@127.0.0.1", A, 30002, p.now)
    p.transfer()
    busy = [parse_message(d) for d in p.sent("uas", b"SIP/2.0 503")]
    assert busy and busy[0].headers.get("Retry-After") == "7"
    assert p.ev("uac", CallEnded)[-1].reason == "rejected:503"


def test_cps_limit():
    p = Pair(max_calls=100, max_cps=2)
    for i in range(5):
        p.uac.invite("sip:bot@127.0.0.1", A, 30000 + 2 * i, p.now)
    p.transfer()
    assert len(p.ev("uas", IncomingCall)) == 2 and len(p.sent("uas", b"SIP/2.0 503")) == 3


def test_refer_then_notify_success():
    p = Pair()
    cid, _ = p.setup()
    p.uas.refer(cid, "sip:queue@127.0.0.9", p.now)
    p.transfer()
    refer = parse_message(p.sent("uas", b"REFER")[0])
    assert refer.headers.get("Refer-To") == "<sip:queue@127.0.0.9>"
    # the peer here is our own core, which declines REFER: the bot learns it failed
    assert p.ev("uas", TransferResult)[0].ok is False
    # a peer that accepts sends NOTIFYs with a sipfrag body
    dlg = p.uac.calls[cid].dialog
    for frag in (b"SIP/2.0 100 Trying", b"SIP/2.0 200 OK"):
        dlg, notify = dlg.next_request("NOTIFY", B[0], B[1], "z9hG4bKn" + frag[8:11].decode(), extra=(
            ("Event", "refer"), ("Subscription-State", "active"), ("Content-Type", "message/sipfrag")), body=frag)
        p.uas.receive_datagram(bytes(notify), B, p.now)
    results = [e for e in iter(p.uas.next_event, None) if isinstance(e, TransferResult)]
    assert [r.ok for r in results] == [True]
    assert all(parse_message(d).status == 200 for d, _, _ in p.uas.datagrams_to_send())


def test_register_with_digest_challenge():
    ua = UserAgent(UaSettings(host="127.0.0.1", port=5060, seed=3))
    reg = ("127.0.0.5", 5060)
    ua.register(RegistrationSettings("sip:trunk.example", "sip:bot@trunk.example", "bot", "secret", 600), reg, 0.0)
    first = parse_message(ua.datagrams_to_send()[0][0])
    assert first.method == "REGISTER" and "Authorization" not in first.headers
    ch = make_response(first, 401, extra=(("WWW-Authenticate",
                                           'Digest realm="trunk", nonce="abc", algorithm=SHA-256, qop="auth"'),))
    ua.receive_datagram(bytes(ch), reg, 0.1)
    second = parse_message(ua.datagrams_to_send()[0][0])
    auth = second.headers.get("Authorization")
    assert 'algorithm=SHA-256' in auth and second.cseq[0] == first.cseq[0] + 1
    ok = make_response(second, 200, extra=(("Contact", "<sip:duplexbot@127.0.0.1:5060>;expires=300"),))
    ua.receive_datagram(bytes(ok), reg, 0.2)
    ev = ua.next_event()
    assert isinstance(ev, RegistrationChanged) and ev.registered and ev.expires == 300
    while ua.get_timer() < 150.0:                   # transaction timers first (K)
        ua.handle_timer(ua.get_timer())
    assert ua.datagrams_to_send() == []
    assert abs(ua.get_timer() - 150.2) < 1e-6      # refresh at half the granted time
    ua.handle_timer(150.2)
    again = parse_message(ua.datagrams_to_send()[0][0])
    assert again.method == "REGISTER" and "Authorization" in again.headers


def test_bad_input_never_loses_call_state():
    p = Pair()
    cid, _ = p.setup()
    for junk in (b"\x00\xff" * 50, b"BYE sip:x SIP/2.0\r\n\r\n", b"SIP/2.0 200 OK\r\nVia: nope\r\nCSeq: x\r\n\r\n",
                 b"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKq\r\n"
                 b"From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: " + cid.encode() + b"\r\nCSeq: x INVITE\r\n\r\n"):
        p.uas.receive_datagram(junk, B, p.now)
        p.uas.datagrams_to_send()
    assert p.uas.calls[cid].state == "confirmed"
    p.uac.hangup(cid, p.now)
    p.transfer()
    assert p.ev("uas", CallEnded)[0].reason == "remote_bye"


def test_offerless_invite_gets_our_offer_and_the_answer_comes_in_the_ack():
    p = Pair()
    cid = p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    data = p.uac.datagrams_to_send()[0][0]
    head = data.split(b"\r\n\r\n")[0].replace(b"Content-Type: application/sdp\r\n", b"")
    head = head.replace(b"Content-Length: " + head.split(b"Content-Length: ")[1], b"Content-Length: 0")
    p.uas.receive_datagram(head + b"\r\n\r\n", B, 0.0)
    inc = next(e for e in iter(p.uas.next_event, None) if isinstance(e, IncomingCall))
    assert inc.offer is None and p.uas.answer(cid, 20000, 0.0) is None
    ok = next(parse_message(d) for d, _, _ in p.uas.datagrams_to_send() if d.startswith(b"SIP/2.0 200"))
    their = sdp.answer(sdp.parse_sdp(ok.body), "127.0.0.2", 30000, 9)[0]
    dlg = p.uas.calls[cid].dialog
    ack = (f"ACK sip:duplexbot@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bKack1\r\n"
           f"From: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\n"
           f"Content-Type: application/sdp\r\nContent-Length: {len(bytes(their))}\r\n\r\n").encode() + bytes(their)
    p.uas.receive_datagram(ack, B, 0.1)
    conf = next(e for e in iter(p.uas.next_event, None) if isinstance(e, CallConfirmed))
    assert conf.media.remote_addr == ("127.0.0.2", 30000) and dlg.call_id == cid


def test_fuzzed_messages_never_escape_or_disturb_a_live_call():
    import random
    from pathlib import Path

    rnd = random.Random(4475)
    p = Pair()
    cid, _ = p.setup()
    seeds = [(Path(__file__).parent / "fixtures" / "baresip_invite.bin").read_bytes()]
    seeds += [d for _, d in p.wire]
    from .conftest import TORTURE
    torture = TORTURE / "rfc4475"
    if torture.exists():
        seeds += [f.read_bytes() for f in sorted(torture.glob("*.dat"))]
    for i in range(3000):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            pos = rnd.randrange(len(data)) if data else 0
            if op < 0.4 and data:
                data[pos] = rnd.randrange(256)
            elif op < 0.6:
                del data[pos:pos + rnd.randint(1, 40)]
            elif op < 0.8:
                data[pos:pos] = rnd.choice([b"\r\n", b" ", b",", b";", b":", b"<", b">", b'"', b"%", b"\x00",
                                            b"\r\n\r\n", b"Content-Length: 99999\r\n", b"CSeq: 1 BYE\r\n"])
            else:
                data = data[:pos]
        p.uas.receive_datagram(bytes(data), B, p.now)    # must not raise
        p.uas.datagrams_to_send()
        while p.uas.next_event() is not None:
            pass
        if i % 500 == 0:
            p.uas.handle_timer(p.now)
    assert p.uas.calls[cid].state == "confirmed"
    assert p.uas.stats["malformed"] > 100


def test_fuzzed_rtp_is_counted_never_raised():
    import random

    import numpy as np

    from sip.media import RtpSession
    from sip.rtp import RtpPacket
    rnd = random.Random(3550)
    media = sdp.Negotiated(("127.0.0.2", 30000), 0, "PCMU", 101, "sendrecv")
    s = RtpSession(media, 0.0, ssrc=1)
    good = bytes(RtpPacket(0, 1, 160, 5, b"\xff" * 160))
    for i in range(3000):
        data = bytearray(good if rnd.random() < 0.7 else bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 60))))
        for _ in range(rnd.randint(0, 4)):
            if data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        s.receive(bytes(data), ("127.0.0.2", 30000), i * 0.001)
        s.pull_frame()
        s.events()
    s.send_audio(np.zeros(160, np.int16), 4.0)
    assert sum(s.stats.values()) > 0


def test_nothing_is_left_behind_after_many_calls():
    p = Pair()
    for i in range(40):
        cid, _ = p.setup()
        (p.uac if i % 2 else p.uas).hangup(cid, p.now)
        p.transfer()
        p.advance(p.now + 0.5)
    p.advance(p.now + 40.0)          # past 64*T1: transactions and ended calls are purged
    for ua in (p.uas, p.uac):
        assert ua.calls == {} and ua.transactions == {} and ua.client.transactions == {} and ua.ctx.ended_at == {}
        assert ua.get_timer() is None and ua.timers.heap == []
    assert p.uas.limiter.active == 0


def test_options_keepalive_to_the_trunk():
    ua = UserAgent(UaSettings(host="127.0.0.1", port=5060, seed=5))
    trunk = ("127.0.0.9", 5060)
    ua.keepalive(trunk, 30.0, 0.0)
    sent = []
    t = 0.0
    while (nxt := ua.get_timer()) is not None and nxt <= 95.0:
        t = nxt
        ua.handle_timer(t)
        for data, dest, _ in ua.datagrams_to_send():
            req = parse_message(data)
            if req.method == "OPTIONS" and req.headers.get("CSeq") == "1 OPTIONS" and dest == trunk:
                if not any(d.call_id == req.call_id for _, d in sent):
                    sent.append((t, req))
                    ua.receive_datagram(bytes(make_response(req, 200, to_tag="k")), trunk, t)
    assert [round(x) for x, _ in sent] == [0, 30, 60, 90] and ua.stats["keepalive_ok"] == 4
    ua.keepalive(trunk, 0, t)                 # stopped: nothing more goes out
    while (nxt := ua.get_timer()) is not None and nxt <= 300.0:
        ua.handle_timer(nxt)
    ua.handle_timer(300.0)
    assert not [d for d, _, _ in ua.datagrams_to_send() if d.startswith(b"OPTIONS")]


def test_only_allowed_networks_may_call():
    p = Pair(allow=("10.0.0.0/8", "127.0.0.2"))
    p.setup()                                     # the peer at 127.0.0.2 is allowed
    assert p.ev("uas", IncomingCall)
    q = Pair(allow=("10.0.0.0/8",))
    q.uac.invite("sip:bot@127.0.0.1", A, 30000, q.now)
    q.transfer()
    assert not q.ev("uas", IncomingCall) and q.sent("uas", b"SIP/2.0 403")


def test_settings_from_env():
    import pytest

    from sip.config import SipSettings
    s = SipSettings.from_env({"DUPLEXBOT_SIP": "1", "DUPLEXBOT_SIP_PORT": "0",
                              "DUPLEXBOT_SIP_ALLOW": "10.1.0.0/16, 127.0.0.1",
                              "DUPLEXBOT_SIP_MAX_CPS": "30", "DUPLEXBOT_SIP_REGISTRAR": "trunk.example:5080",
                              "DUPLEXBOT_SIP_USER": "bot", "DUPLEXBOT_SIP_PASSWORD": "pw"})
    assert s.enabled and s.server.port == 5060 and s.server.ua.allow == ("10.1.0.0/16", "127.0.0.1")
    assert s.server.ua.max_cps == 30 and s.registrar_addr == ("trunk.example", 5080)
    assert s.registration.aor == "sip:bot@trunk.example" and s.registration.registrar == "sip:trunk.example:5080"
    for bad in ({"DUPLEXBOT_SIP_PORT": "x"}, {"DUPLEXBOT_SIP_ALLOW": "nope"}, {"DUPLEXBOT_SIP_RTP_PORTS": "5-1"},
                {"DUPLEXBOT_SIP_MAX_CALLS": "0"}):
        with pytest.raises(ValueError):
            SipSettings.from_env(bad)
    assert not SipSettings.from_env({}).enabled


def test_bot_hangs_up_before_the_ack_bye_waits_for_it():
    p = Pair()
    hold_ack = {"on": True}
    p.drop = lambda d: hold_ack["on"] and d.startswith(b"ACK")
    cid, _ = p.setup()
    p.uas.hangup(cid, p.now)                  # the application is done before the ACK arrived
    p.transfer()
    assert p.ev("uas", CallEnded)[0].reason == "local_bye" and not p.sent("uas", b"BYE")
    hold_ack["on"] = False
    p.advance(1.0)                            # 200 retransmitted, ACKed: now the BYE goes
    assert len(p.sent("uas", b"BYE")) == 1 and p.ev("uac", CallEnded)[0].reason == "remote_bye"


def test_refresh_glare_491_is_retried_shortly():
    p = Pair()
    cid, _ = p.setup()
    call = p.uas.calls[cid]
    from sip.session_timer import SessionTimer
    call.timer = SessionTimer(120, we_refresh=True)
    call.timer.deadline = p.now + 1.0
    p.uas._touch_call(call)
    p.uac.calls[cid].reinvite_pending = True          # the peer is mid re-INVITE: it answers ours 491
    p.advance(p.now + 1.5)
    assert p.sent("uac", b"SIP/2.0 491")
    p.uac.calls[cid].reinvite_pending = False
    p.advance(p.now + 4.5)
    refreshes = [d for d in p.sent("uas", b"INVITE")]
    assert len(refreshes) == 2 and p.uas.calls[cid].state == "confirmed"


def test_multipart_invite_uses_its_sdp_part():
    p = Pair()
    p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    data = p.uac.datagrams_to_send()[0][0]
    head, _, offer = data.partition(b"\r\n\r\n")
    body = (b"--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n" + offer
            + b"\r\n--b1--\r\n")
    head = head.replace(b"Content-Type: application/sdp", b"Content-Type: multipart/mixed;boundary=b1")
    head = head.split(b"Content-Length:")[0] + b"Content-Length: " + str(len(body)).encode()
    p.uas.receive_datagram(head + b"\r\n\r\n" + body, B, 0.0)
    inc = next(e for e in iter(p.uas.next_event, None) if isinstance(e, IncomingCall))
    assert inc.offer is not None and p.uas.answer(inc.call_id, 20000, 0.0).remote_addr == ("127.0.0.2", 30000)
    text = b"--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
    no_sdp = head.replace(str(len(body)).encode(), str(len(text)).encode()).replace(b"z9hG4bK", b"z9hG4bKx")
    no_sdp = no_sdp.replace(b"Call-ID: ", b"Call-ID: other-")
    p.uas.receive_datagram(no_sdp + b"\r\n\r\n" + text, B, 0.1)
    assert any(d.startswith(b"SIP/2.0 415") for d, _, _ in p.uas.datagrams_to_send())


def test_dtmf_in_sip_info_and_asserted_caller():
    from sip.events import DtmfInfo
    p = Pair()
    cid = p.uac.invite("sip:bot@127.0.0.1", A, 30000, p.now)
    data = p.uac.datagrams_to_send()[0][0].replace(
        b"Max-Forwards: 70\r\n",
        b"Max-Forwards: 70\r\nP-Asserted-Identity: \"Ann\" <sip:+15551234567@carrier.example>\r\n", 1)
    p.uas.receive_datagram(data, B, 0.0)
    inc = next(e for e in iter(p.uas.next_event, None) if isinstance(e, IncomingCall))
    assert inc.caller == "sip:+15551234567@carrier.example"
    p.uas.answer(cid, 20000, 0.0)
    p.transfer()
    dlg = p.uac.calls[cid].dialog
    for i, (ctype, body) in enumerate(((b"application/dtmf-relay", b"Signal=7\r\nDuration=250\r\n"),
                                       (b"application/dtmf", b"#"), (b"text/plain", b"9"))):
        dlg, info = dlg.next_request("INFO", B[0], B[1], f"z9hG4bKinfo{i}", extra=(("Content-Type", ctype.decode()),),
                                     body=body)
        p.uas.receive_datagram(bytes(info), B, 0.1)
    got = [e for e in iter(p.uas.next_event, None) if isinstance(e, DtmfInfo)]
    assert [(e.digit, e.duration_ms) for e in got] == [("7", 250), ("#", 0)]
    assert all(d.startswith(b"SIP/2.0 200") for d, _, _ in p.uas.datagrams_to_send())
