"""sip.transaction: RFC 3261 timers with a fake clock."""
from sip.dialog import make_response
from sip.message import Headers, Request, parse_message
from sip.transaction import ClientTransaction, ServerInviteTransaction, ServerTransaction, Timers

ADDR = ("127.0.0.1", 5070)


def req(method="INVITE"):
    return Request(method, "sip:bot@127.0.0.1", Headers.of(
        ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1"), ("From", "<sip:a@b>;tag=1"), ("To", "<sip:bot@b>"),
        ("Call-ID", "c1"), ("CSeq", f"1 {method}")))


def drive(txn, until, step=0.01):
    """Run the timers up to `until`; returns the times at which something was sent."""
    sent, now = [], 0.0
    while now <= until:
        t = txn.timer()
        if t is None or t > until:
            break
        now = t
        if txn.handle_timer(now):
            sent.append(round(now, 3))
    return sent


def test_2xx_retransmitted_until_ack_then_gives_up_after_64_t1():
    t = ServerInviteTransaction(req(), ADDR, reliable=False, now=0.0)
    assert t.respond(make_response(t.request, 200, to_tag="x"), 0.0)
    sent = drive(t, 40.0)
    # T1 doubling capped at T2: 0.5, 1.5, 3.5, 7.5, 11.5, ... and nothing after 64*T1 = 32 s
    assert sent[:4] == [0.5, 1.5, 3.5, 7.5] and all(b - a <= 4.0 + 1e-9 for a, b in zip(sent, sent[1:]))
    assert max(sent) < 32.0 and t.terminated and t.timed_out


def test_ack_stops_2xx_retransmissions():
    t = ServerInviteTransaction(req(), ADDR, reliable=False, now=0.0)
    t.respond(make_response(t.request, 200, to_tag="x"), 0.0)
    drive(t, 1.0)
    t.on_ack(1.2)
    assert t.terminated and not t.timed_out and t.acked and t.timer() is None


def test_retransmitted_invite_gets_last_response_not_a_new_call():
    t = ServerInviteTransaction(req(), ADDR, reliable=False, now=0.0)
    t.respond(make_response(t.request, 180, to_tag="x"), 0.0)
    again = t.on_request_retransmission(0.3)
    assert len(again) == 1 and parse_message(again[0]).status == 180


def test_non_2xx_timer_g_h_then_ack_timer_i():
    t = ServerInviteTransaction(req(), ADDR, reliable=False, now=0.0)
    t.respond(make_response(t.request, 486, to_tag="x"), 0.0)
    assert drive(t, 2.0) == [0.5, 1.5]
    t.on_ack(2.0)
    assert t.state == "confirmed"
    drive(t, 10.0)
    assert t.terminated and not t.timed_out


def test_reliable_transport_has_no_retransmissions():
    t = ServerInviteTransaction(req(), ADDR, reliable=True, now=0.0)
    t.respond(make_response(t.request, 486, to_tag="x"), 0.0)
    assert drive(t, 40.0) == [] and t.timed_out


def test_non_invite_server_timer_j():
    t = ServerTransaction(req("OPTIONS"), ADDR, reliable=False, now=0.0)
    t.respond(make_response(t.request, 200), 0.0)
    assert len(t.on_request_retransmission(1.0)) == 1
    drive(t, 40.0)
    assert t.terminated


def test_client_invite_timer_a_b():
    c = ClientTransaction(req(), ADDR, reliable=False, now=0.0)
    sent = drive(c, 40.0)
    assert sent[:3] == [0.5, 1.5, 3.5] and c.timed_out and c.terminated


def test_client_invite_non_2xx_generates_ack_and_absorbs_retransmission():
    c = ClientTransaction(req(), ADDR, reliable=False, now=0.0)
    resp = make_response(c.request, 486, to_tag="y")
    deliver, out = c.receive_response(resp, 0.1)
    assert deliver and parse_message(out[0]).method == "ACK" and "tag=y" in parse_message(out[0]).headers.get("To")
    deliver, out = c.receive_response(resp, 0.2)
    assert not deliver and len(out) == 1


def test_client_non_invite_timer_e_caps_at_t2():
    c = ClientTransaction(req("BYE"), ADDR, reliable=False, now=0.0, timers=Timers())
    sent = drive(c, 40.0)
    gaps = [round(b - a, 3) for a, b in zip(sent, sent[1:])]
    assert max(gaps) == 4.0 and c.timed_out
