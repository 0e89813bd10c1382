"""Whole calls through the engine with the scripted caller (real models, in-process transport)."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from bot.engine import events as ev
from bot.sim.caller import simulate
from bot.sim.script import parse_script

pytestmark = pytest.mark.asyncio(loop_scope="module")  # shares the module runtime

THREE_TURNS = {"name": "three", "steps": [
    {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
    {"say": "What are your opening hours on Saturday?"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
    {"say": "Where is the store?"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
    {"say": "How long does delivery take?"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
    {"hangup": True}]}

INTERRUPT = {"name": "interrupt", "steps": [
    {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
    {"say": "How long does delivery take?"}, {"wait_for_bot_speech": 1.2},
    {"say": "Wait, stop.", "kind": "interruption"}, {"wait_for_bot_speech": 0.2}, {"wait_for_silence": 0.4},
    {"hangup": True}]}

BACKCHANNELS = {"name": "backchannels", "steps": [
    {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
    {"say": "What are your opening hours on Saturday?"}, {"wait_for_bot_speech": 0.8},
    {"say": "Mm-hmm.", "kind": "backchannel"}, {"pause": 0.7},
    {"say": "Yeah.", "kind": "backchannel"}, {"pause": 0.5},
    {"noise": "cough"}, {"wait_for_silence": 0.5},
    {"hangup": True}]}


def words(s):
    return set(re.findall(r"[a-z]+", s.lower()))


async def test_three_turn_call_answers_every_turn(runtime, tmp_path):
    result = await simulate(runtime, parse_script(THREE_TURNS), fast=True)
    out = result.write(tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["turns"]) == 3
    assert all(t["latency"] is not None and 0 < t["latency"] < 1.5 for t in m["turns"]), m["turns"]
    heard = [e.text for e in result.events if isinstance(e, ev.TranscriptFinal) and e.speaker == "caller"]
    assert len(heard) == 3 and {"saturday", "store", "delivery"} <= words(" ".join(heard))
    answers = [e.text for e in result.events if isinstance(e, ev.BotSpeechStart)]
    assert "nine" in answers[1] and "Harbour" in answers[2] and "delivery" in answers[3]
    # call.wav: stereo, caller left, bot right, and the bot channel carries speech
    from bot.audio import read_wav
    audio, rate = read_wav(out / "call.wav")
    assert audio.shape[0] == 2 and rate == 16000 and np.abs(audio[1]).max() > 0.05
    lines = (out / "events.jsonl").read_text().splitlines()
    ts = [json.loads(x)["mono"] for x in lines]
    assert ts == sorted(ts) and json.loads(lines[0])["type"] == "call_started"


async def test_fast_mode_is_deterministic(runtime):
    a = await simulate(runtime, parse_script(THREE_TURNS), fast=True)
    b = await simulate(runtime, parse_script(THREE_TURNS), fast=True)
    def key(r):
        return [(e.type, round(e.t, 3)) for e in r.events if e.type not in ("transcript_partial",)]
    assert key(a) == key(b)


async def test_interruption_stops_within_350ms_and_transcript_keeps_heard_words(runtime):
    result = await simulate(runtime, parse_script(INTERRUPT), fast=False)  # real time: compute counts
    m = result.metrics
    assert m["missed_barge_ins"] == 0
    (b,) = m["barge_ins"]
    # runs/duplex7 reads the first 0.25 s of this "Wait" as a backchannel and stops 0.26-0.31 s
    # after the onset depending on where it falls in the bot's speech (Whisper hears "Wait" from
    # 0.23 s of it, no sooner); 0.35 s is that plus about a chunk of lag on a loaded 2-core machine
    assert b["barge_in_event"] and b["stop_latency"] is not None and b["stop_latency"] <= 0.35, b
    (cut,) = [e for e in result.events if isinstance(e, ev.BotTruncated)]
    first = next(e.text for e in result.events if isinstance(e, ev.BotSpeechStart) and e.turn == cut.turn)
    full = f"{cut.heard} {cut.unheard}"
    assert cut.heard and cut.unheard and full.startswith(first) and full.endswith("tracking link.")
    bot_lines = [e.text for e in result.events if isinstance(e, ev.TranscriptFinal) and e.speaker == "bot"]
    assert cut.heard in bot_lines and full not in bot_lines
    # the words kept are the ones that fit in the audio actually played (about 3 words a second)
    played = cut.t - next(e.t for e in result.events if isinstance(e, ev.BotSpeechStart) and e.turn == cut.turn)
    assert abs(len(cut.heard.split()) - played * 2.8) <= 3


async def test_backchannels_and_a_cough_do_not_stop_the_bot(runtime):
    result = await simulate(runtime, parse_script(BACKCHANNELS), fast=True)
    m = result.metrics
    assert m["backchannels_over_bot"] == 3
    assert m["false_barge_ins"] == 0, [e.to_dict() for e in result.events if e.type in ("barge_in", "backchannel")]
    assert not any(isinstance(e, ev.BargeIn) for e in result.events)
    stops = [e for e in result.events if isinstance(e, ev.BotSpeechStop)]
    assert all(s.reason == "done" for s in stops)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_simulate_rejects_bad_input_with_clear_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    r = run_cli("simulate", "--script", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "not valid JSON" in r.stderr

    (tmp_path / "nosteps.json").write_text(json.dumps({"steps": [{"sing": "la"}]}))
    r = run_cli("simulate", "--script", str(tmp_path / "nosteps.json"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "step 1" in r.stderr

    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEfmt junk")
    (tmp_path / "wav.json").write_text(json.dumps({"steps": [{"say": {"wav": "junk.wav"}}]}))
    r = run_cli("simulate", "--script", str(tmp_path / "wav.json"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "junk.wav" in r.stderr and "WAV" in r.stderr

    import wave
    with wave.open(str(tmp_path / "odd.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(11025), w.writeframes(b"\x00\x00" * 1000)
    (tmp_path / "rate.json").write_text(json.dumps({"steps": [{"say": {"wav": "odd.wav"}}]}))
    r = run_cli("simulate", "--script", str(tmp_path / "rate.json"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unsupported sample rate 11025" in r.stderr
    assert not (tmp_path / "o").exists()


async def test_false_barge_in_resumes_what_was_not_heard(runtime):
    """A policy tuned to stop on any 0.1 s of overlap (baseline) or on any backchannel (duplex) stops
    for a "yeah"; no real words follow, so the bot resumes the part of its answer the caller did not
    hear."""
    from bot.policy.base import PolicySettings

    script = parse_script({"steps": [
        {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
        {"say": "How long does delivery take?"}, {"wait_for_bot_speech": 1.0},
        {"say": "Yeah.", "kind": "backchannel"}, {"wait_for_bot_speech": 0.5}, {"wait_for_silence": 0.5},
        {"hangup": True}]})
    touchy = PolicySettings(min_interruption_speech=0.1, interruption_check_after=5.0, min_speech=0.032,
                            vad_threshold=0.2, vad_off_threshold=0.15, interrupt_threshold=0.05,
                            backchannel_mode="interrupt")
    result = await simulate(runtime, script, fast=True, policy_settings=touchy)
    kinds = [e.type for e in result.events]
    assert "barge_in" in kinds and "false_barge_in" in kinds, kinds
    cut = next(e for e in result.events if isinstance(e, ev.BotTruncated))
    resumed = next(e for e in result.events if isinstance(e, ev.FalseBargeIn))
    assert resumed.resumed_text.startswith("As I was saying,") and resumed.resumed_text.endswith(cut.unheard)
    later = [e.text for e in result.events if isinstance(e, ev.BotSpeechStart) and e.t > resumed.t - 0.01]
    assert later and later[0].startswith("As I was saying")


async def test_dtmf_zero_hands_the_call_to_a_human(runtime):
    script = parse_script({"steps": [{"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.3}, {"dtmf": "0"},
                                     {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5}, {"hangup": True}]})
    result = await simulate(runtime, script, fast=True)
    digits = [e.digit for e in result.events if isinstance(e, ev.DtmfReceived)]
    actions = [e for e in result.events if isinstance(e, ev.Action)]
    assert digits == ["0"] and actions and actions[0].name == "transfer" and actions[0].ok
    assert result.transfers == [runtime.script.handoff_target]


async def test_speech_the_recogniser_hears_no_words_in_gets_one_not_heard_line(runtime, monkeypatch):
    """A noisy line: the caller spoke, the recogniser heard nothing. The bot says it did not catch
    that (instead of dead air), once: a second such turn gets silence until words are heard again."""
    from bot.services.asr import Transcript

    async def deaf(audio, hint=""):
        return Transcript("", -1.0, 0.9)

    async def deaf_text(audio, hint=""):
        return ""

    monkeypatch.setattr(runtime.services.asr, "transcribe_detailed", deaf)
    monkeypatch.setattr(runtime.services.asr, "transcribe", deaf_text)
    script = parse_script({"steps": [
        {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
        {"say": "How long does delivery take?"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
        {"say": "How long does delivery take?"}, {"pause": 1.5},
        {"hangup": True}]})
    result = await simulate(runtime, script, fast=True)
    said = [e.text for e in result.events if isinstance(e, ev.BotSpeechStart)]
    assert said[1:] == [runtime.script.not_heard_say], said
    assert runtime.script.not_heard_say.startswith("Sorry, I didn't catch that")
    # a one-word answer the recogniser missed is not met with dead air either
    short = parse_script({"steps": [{"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5}, {"say": "Yes."},
                                    {"pause": 2.0}, {"hangup": True}]})
    result = await simulate(runtime, short, fast=True)
    said = [e.text for e in result.events if isinstance(e, ev.BotSpeechStart)]
    spoken = [e for e in result.events if isinstance(e, ev.CallerSpeechEnd)]
    assert spoken and spoken[0].t - spoken[0].speech_started < 0.8, spoken  # shorter than the old threshold
    assert said[1:] == [runtime.script.not_heard_say], said
