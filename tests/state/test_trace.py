"""`duplexbot trace`: one call's audit trail in order, against a real embedded Valkey."""
from __future__ import annotations

import json
import os

import pytest

from bot.engine.events import Action, BargeIn, BotTruncated, EndOfTurn, Hold, TranscriptFinal
from bot.engine.port import CallInfo
from bot.state.keys import as_text, for_display, key_part
from bot.state.trace import build_trace, format_trace

from .test_embedded_cli import cli, cli_process

pytestmark = pytest.mark.timeout(90)
BINARY = b"bin\xff\x00\nid".decode("utf-8", "surrogateescape")


def test_build_trace_orders_and_merges_pure():
    events = [("1000-0", {"type": "hold", "seq": "2", "ts": "1000", "decision": "wait", "confidence": "0.4",
                          "policy": "duplex", "data": "{}"}),
              ("900-0", {"type": "end_of_turn", "seq": "1", "ts": "900", "decision": "take_turn",
                         "confidence": "0.9", "policy": "duplex", "data": '{"silence":0.5,"mono":1}'}),
              ("1100-0", {"type": "transcript_final", "seq": "3", "ts": "1100", "data": '{"text":"hi"}'})]
    transcript = [("1100-1", {"seq": "3", "ts": "1100", "speaker": "caller", "text": "hi"})]
    audit = [("1050-0", {"call_id": "c", "action": "listen_start", "actor": "sue", "ts": "1050"}),
             ("1060-0", {"call_id": "other", "action": "whisper", "actor": "x", "ts": "1060"})]
    tr = build_trace("c", "c", {"started": "800"}, events, transcript, audit)
    assert [(x.kind, x.what) for x in tr.lines] == [("decision", "end_of_turn"), ("decision", "hold"),
                                                     ("audit", "listen_start"), ("transcript", "caller said")]
    assert tr.lines[0].data == {"silence": 0.5}  # monotonic clock hidden
    text = format_trace(tr)
    assert "take_turn" in text and "+0.100s" in text and "audit listen_start" in text and "by sue" in text


async def test_trace_cli_prints_decisions_in_order(store, monkeypatch):
    monkeypatch.setenv("REDIS_URL", store.url)
    monkeypatch.setenv("DUPLEXBOT_REDIS_PREFIX", store.settings.prefix)
    env = dict(os.environ)
    cid = "trace-1@pbx.example"
    await store.call_started(CallInfo(call_id=cid, transport="sip", tenant="acme", caller="+1555", callee="+1666"))
    store.emit(TranscriptFinal(call_id=cid, t=0.5, speaker="caller", text="I want to talk to billing"))
    store.emit(Hold(call_id=cid, t=0.8, confidence=0.35, policy="duplex"))
    store.emit(EndOfTurn(call_id=cid, t=1.0, confidence=0.93, silence=0.4, policy="duplex"))
    store.emit(BotTruncated(call_id=cid, t=2.0, heard="Sure, let me", unheard=" transfer you now", turn=1))
    store.emit(TranscriptFinal(call_id=cid, t=2.0, speaker="bot", text="Sure, let me"))
    store.emit(BargeIn(call_id=cid, t=2.0, confidence=0.88, reason="speech", policy="duplex", onset=1.9))
    store.emit(Action(call_id=cid, t=3.0, name="transfer", target="sip:billing@pbx"))
    store.audit("acme", "sue", "listen_start", cid)
    await store.call_ended(cid, "transferred")
    assert await store.flush(5.0)

    got = await cli("trace", cid, "--json", env=env)
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert data["call_id"] == cid and data["record"]["end_reason"] == "transferred"
    decisions = [(x["what"], x["decision"], x["confidence"], x["policy"])
                 for x in data["lines"] if x["kind"] == "decision"]
    assert decisions == [("hold", "wait", "0.35", "duplex"), ("end_of_turn", "take_turn", "0.93", "duplex"),
                         ("barge_in", "stop", "0.88", "duplex")]
    said = [(x["what"], x["text"]) for x in data["lines"] if x["kind"] == "transcript"]
    assert said == [("caller said", "I want to talk to billing"), ("bot said (interrupted; as heard)", "Sure, let me")]
    assert [x["text"] for x in data["lines"] if x["kind"] == "action"] == ["transfer sip:billing@pbx"]
    assert [x["what"] for x in data["lines"] if x["kind"] == "audit"] == ["listen_start"]
    assert all(a["ts"] <= b["ts"] for a, b in zip(data["lines"], data["lines"][1:]))

    human = await cli("trace", cid, env=env)
    assert human.returncode == 0, human.stderr
    out = human.stdout.split("DECISION", 1)[1]  # the timeline, after the header
    assert out.index("hold") < out.index("take_turn") < out.index("barge_in") < out.index("transfer sip:billing")
    assert "0.93" in out and "billing@pbx" in out and "audit listen_start" in out

    missing = await cli("trace", "no-such-call", env=env)
    assert missing.returncode == 1 and "no call no-such-call" in missing.stderr


async def test_trace_of_odd_ids_and_recent(store, monkeypatch):
    monkeypatch.setenv("REDIS_URL", store.url)
    monkeypatch.setenv("DUPLEXBOT_REDIS_PREFIX", store.settings.prefix)
    env = dict(os.environ)
    long_id = "L" * 300
    for n, cid in enumerate((long_id, BINARY, "plain")):
        await store.call_started(CallInfo(call_id=cid, transport="sip", tenant="acme"))
        store.emit(EndOfTurn(call_id=cid, t=1.0 + n, confidence=0.9, silence=0.4, policy="duplex"))
    assert await store.flush(5.0)

    recent = await cli("trace", "--recent", "5", "--json", env=env)
    assert recent.returncode == 0, recent.stderr
    rows = json.loads(recent.stdout)
    assert {r["call_id"] for r in rows} == {long_id, as_text(BINARY), "plain"}
    assert {r["key"] for r in rows} == {key_part(long_id), key_part(BINARY), "plain"}
    human = await cli("trace", "--recent", env=env)
    assert for_display(BINARY) in human.stdout and "\n" not in for_display(BINARY)

    # by its id as given, by its key, and by the id as the console shows it
    for arg in (long_id, key_part(BINARY), for_display(BINARY)):
        got = await cli("trace", arg, "--json", env=env)
        assert got.returncode == 0, (arg, got.stderr)
        assert [x["what"] for x in json.loads(got.stdout)["lines"]] == ["end_of_turn"]
    # a real subprocess, as an operator runs it
    proc = cli_process("trace", long_id, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "take_turn" in proc.stdout and key_part(long_id) in proc.stdout


async def test_trace_needs_an_id_or_recent(monkeypatch, store):
    monkeypatch.setenv("REDIS_URL", store.url)
    got = await cli("trace", env=dict(os.environ))
    assert got.returncode == 2 and "--recent" in got.stderr
