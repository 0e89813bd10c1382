"""`duplexbot bench phone` and its set generator: the metrics on hand-made timelines, the set's
labels and checks, and one run of two calls at once into a real `duplexbot serve` on 127.0.0.1."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bot.cli import main
from bot.eval import phone_data as P
from bot.eval.phone import POOL_WIDE, caller_leg, format_table, frame_dbfs, score, split_mixed, summarise, talked_over
from models import texts

A, Q = -20.0, -70.0  # an audible and a quiet frame's level


def timeline(*spans: tuple[float, float, float]) -> list[tuple[float, float]]:
    """20 ms frames over [t0, t1) at `db`, e.g. (0.0, 1.0, Q)."""
    return [(round(t, 3), db) for t0, t1, db in spans for t in np.arange(t0, t1 - 1e-9, 0.02)]


# ------------------------------------------------------------------ metrics

def test_latency_is_from_the_labelled_end_to_the_first_audible_frame():
    o = score(timeline((-2.0, -0.5, A), (-0.5, 1.84, Q), (1.84, 3.0, A)), end=1.5, holds=())
    assert o.first_audible == pytest.approx(1.84) and o.latency == pytest.approx(0.34)
    assert not (o.takeover or o.takeover_in_hold or o.unanswered)  # the greeting (before 0) does not count


def test_quiet_bot_frames_are_not_heard():
    o = score(timeline((0.0, 2.0, -45.0), (2.0, 2.5, -39.0)), end=1.5, holds=(), threshold=-40.0)
    assert o.latency == pytest.approx(0.5)


def test_takeover_inside_a_hold_and_before_the_end():
    holds = ((1.0, 1.6),)
    inside = score(timeline((0.0, 1.3, Q), (1.3, 2.0, A)), end=2.5, holds=holds)
    assert inside.takeover and inside.takeover_in_hold and inside.latency == pytest.approx(-1.2)
    early = score(timeline((0.0, 2.0, Q), (2.0, 3.0, A)), end=2.5, holds=holds)  # after the hold, before the end
    assert early.takeover and not early.takeover_in_hold
    after = score(timeline((0.0, 2.9, Q), (2.9, 3.5, A)), end=2.5, holds=holds)
    assert not after.takeover and not after.takeover_in_hold


def test_unanswered_when_nothing_audible_within_the_window():
    assert score(timeline((0.0, 6.0, Q)), end=1.5, holds=()).unanswered
    late = score(timeline((0.0, 4.6, Q), (4.6, 5.0, A)), end=1.5, holds=(), window=3.0)
    assert late.unanswered and late.latency is None and not late.takeover


def test_frame_level_and_summary():
    t = np.arange(160) / 8000
    assert frame_dbfs((32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)) == pytest.approx(-3.0, abs=0.1)
    assert frame_dbfs(np.zeros(160, np.int16)) < -100
    row = dict(error="", takeover=False, takeover_in_hold=False, unanswered=False, holds=[])
    rows = [dict(row, latency=0.3), dict(row, latency=0.7), dict(row, latency=None, unanswered=True),
            dict(row, latency=-0.4, takeover=True, takeover_in_hold=True, holds=[[1.0, 1.6]]),
            dict(row, latency=None, error="RuntimeError: no greeting", redials=2)]
    s = summarise(rows, cpu_s=2.0, wall_s=4.0, chunks=1000)
    assert s["latency_ms"]["n"] == 2 and s["latency_ms"]["p50"] == pytest.approx(500.0)
    assert (s["within_500ms"], s["unanswered_rate"], s["takeover_rate"]) == (0.25, 0.25, 0.25)
    assert (s["holds"], s["takeovers_in_holds"], s["errors"], s["redials"]) == (1, 1, 1, 2)
    assert (s["cpu_ms_per_call_chunk"], s["cpu_cores"]) == (2.0, 0.5)


def test_the_pstn_band_takes_the_voice_s_fundamental_off_the_caller_leg():
    t = np.arange(16000) / 16000
    low, mid = 0.3 * np.sin(2 * np.pi * 120 * t), 0.3 * np.sin(2 * np.pi * 1000 * t)  # an F0, a formant

    def level(x):
        return frame_dbfs(x[800:-800])  # the filter's edges left out
    full, band = caller_leg(low, 16000), caller_leg(low, 16000, band=True)
    assert full.dtype == np.int16 and full.size == 8000
    assert level(full) > -14 and level(band) < level(full) - 30  # 120 Hz: gone
    assert abs(level(caller_leg(mid, 16000, band=True)) - level(caller_leg(mid, 16000))) < 1  # 1 kHz: kept


def test_talking_over_a_caller_who_goes_on_is_measured_as_the_caller_hears_it():
    # the bot spoke 0.2 s into a hold [1.0, 1.6]; the caller went on at 1.6 and the bot's audio
    # stopped at 1.95: both were heard at once for 0.35 s
    assert talked_over([[1.2, 1.95], [3.0, 4.0]], 1.2, 3.0, [[1.0, 1.6]]) == pytest.approx(0.35)
    # into speech: from the bot's first audio; a bot that never stopped, until the caller's end
    assert talked_over([[2.0, 4.5]], 2.0, 3.0, []) == pytest.approx(1.0)
    # quiet again before the caller went on: nothing talked over
    assert talked_over([[1.2, 1.5]], 1.2, 3.0, [[1.0, 1.6]]) == 0.0
    # an answer 0.1 s before the labelled end is early, not talking over; no take-over, nothing
    assert talked_over([[2.9, 4.0]], 2.9, 3.0, []) is None
    assert talked_over([[3.2, 4.0]], 3.2, 3.0, []) is None and talked_over([], None, 3.0, []) is None
    row = dict(error="", takeover=True, takeover_in_hold=True, unanswered=False, holds=[[1.0, 1.6]], latency=-1.8,
               first_audible=1.2, end=3.0, audible=[[1.2, 1.95]])
    s = summarise([row, dict(row, audible=[[1.2, 1.85]])], 1.0, 2.0, 100)
    assert s["talked_over_ms"] == {"p50": pytest.approx(300.0), "max": pytest.approx(350.0), "n": 2}


def test_one_pool_over_every_kind_splits_by_kind_without_copying_the_run_s_counts():
    row = dict(error="", takeover=False, takeover_in_hold=False, unanswered=False, holds=[], latency=0.3)
    rows = [dict(row, kind="a"), dict(row, kind="a"), dict(row, kind="b", latency=0.6)]
    pool = dict(summarise(rows, 1.0, 2.0, 100), server_underruns=3, peak_calls=3,
                engine_backlog_s={"p50": 0.0, "p90": 0.0, "max": 0.0}, client_loop_lag_p99_ms=1.0,
                client_cpu_cores=0.1, stage_mean_ms={})
    by_kind = split_mixed(pool, rows, ["a", "b"])
    assert (by_kind["a"]["samples"], by_kind["b"]["samples"]) == (2, 1)
    assert all(by_kind[k][key] == pool[key] for k in by_kind for key in POOL_WIDE)
    # the run's 3 underruns are not 3 per kind (they had been summed back to 6 overall)
    assert by_kind["a"]["server_underruns"] is None and by_kind["b"]["server_underruns"] is None
    report = {"dataset": "d", "policy": "auto", "parallel": 3, "transport": "t", "settings": {"audible_dbfs": -40},
              "by_kind": by_kind, "overall": dict(pool, server_underruns=3)}
    table = format_table(report).splitlines()
    assert table[2].split()[0] == "a" and table[2].split()[-1] == "-" and table[4].split()[-1] == "3"


# ------------------------------------------------------------------ the set

def test_pause_goes_in_the_word_gap_not_a_closure_inside_the_last_word():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(P.RATE * 2)).astype(np.float32)
    x[int(0.88 * P.RATE):int(0.92 * P.RATE)] = 0  # a stop closure, 0.1 s before the estimates
    x[int(1.02 * P.RATE):int(1.06 * P.RATE)] = 1e-4  # the word gap, a little noisier
    assert 1.02 <= P.pause_point(x, 0.98, 1.03) / P.RATE <= 1.06
    x[int(1.02 * P.RATE):int(1.06 * P.RATE)] = x[:int(0.04 * P.RATE)]  # no gap at all: cut at the estimates
    assert 0.96 <= P.pause_point(x, 0.98, 1.03) / P.RATE <= 1.05


def test_question_texts_are_not_training_texts():
    def norm(s: str) -> str:
        return re.sub(r"[^a-z ]", "", s.lower()).strip()
    train = {norm(t) for pool in (texts.SHORT_QUESTIONS, texts.INTENTS, texts.ANSWERS, texts.FRAGMENTS) for t in pool}
    ours = {norm(t) for t in P.SHORT_QUESTIONS} | {norm(f"{a} {b}") for a, b in P.PAUSE_QUESTIONS}
    assert not ours & train
    assert len(P.SHORT_QUESTIONS) >= 30 and len(P.PAUSE_QUESTIONS) >= 30


def test_held_out_voices_are_not_training_voices():
    from models.data import ESPEAK_VARIANTS, HIBARI_SHIFTS
    assert not {v for _, v, _, _ in P.ESPEAK_HELD_OUT} & set(ESPEAK_VARIANTS)
    trained = set(HIBARI_SHIFTS["train"])  # resamplings: pitch and formants moved together
    assert all(not (p == f and p in trained) for _, p, f, _, _ in P.HIBARI_STYLES)


def test_load_set_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="manifest.json: cannot read"):
        P.load_set(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": [
        {"id": "a", "wav": "a.wav", "kind": "pause", "end": 2.0, "holds": [[1.5, 2.5]]}]}))
    with pytest.raises(ValueError, match=r"holds\[0\]"):
        P.load_set(tmp_path)


# ------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_bench_phone_two_calls_at_once_into_a_real_server(tmp_path, capsys):
    ds, out = tmp_path / "set", tmp_path / "out"
    assert P.main(["--out", str(ds), "--voices", "espeak", "--n", "2"]) == 0
    manifest = json.loads((ds / "manifest.json").read_text())
    short, pause = manifest["samples"]
    assert (short["kind"], short["holds"], pause["kind"]) == ("short", [], "pause")
    (h0, h1), = pause["holds"]
    assert 0.6 <= h1 - h0 < 0.9 and h1 < pause["end"] and "espeak" in manifest["licences"]
    capsys.readouterr()

    # one pool over both kinds: the second call rings 4 s (ramp / 2) after the first, inside its
    # greeting (3.8 s) and question, so both are up at once
    assert main(["bench", "phone", str(ds), "--parallel", "2", "--mixed", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Phone-path bench" in printed and re.search(r"^all\s+2\s", printed, re.M)
    assert "calls up at once at most: 2 (one pool over every kind)" in printed
    res = json.loads((out / "results.json").read_text())
    rows = {r["id"]: r for r in res["samples"]}
    assert set(rows) == {"short-000", "pause-000"}
    for r in rows.values():
        assert not r["error"], r["error"]
        assert (r["latency"] is not None) != r["unanswered"]
        assert r["takeover_in_hold"] <= r["takeover"]
    assert not rows["short-000"]["takeover_in_hold"]  # no holds, so no take-over in one
    # the server's own events, joined to each call on the sample's clock: the caller's speech
    # starts near the sample's onset, and an answer heard has its end of turn before it
    assert res["traced"] == 2
    for r in rows.values():
        kinds = [e["type"] for e in r["trace"]]
        onset = next(e["t"] for e in r["trace"] if e["type"] == "caller_speech_start")
        assert -0.2 < onset < 1.5, r["trace"]
        if r["first_audible"] is not None:
            eot = [e for e in r["trace"] if e["type"] == "end_of_turn"]
            assert eot and eot[0]["t"] <= r["first_audible"] and eot[0]["reason"], kinds
    overall = res["overall"]
    assert overall["samples"] == 2 and overall["holds"] == 1 and overall["takeovers_in_holds"] <= 1
    assert overall["latency_ms"]["n"] == 0 or isinstance(overall["latency_ms"]["p50"], float)
    assert set(res["by_kind"]) == {"short", "pause"}
    assert overall["server_cpu_s"] > 0 and overall["cpu_ms_per_call_chunk"] > 0 and overall["caller_chunks"] > 100
    assert overall["peak_calls"] == 2 and res["by_kind"]["short"]["cpu_cores"] is None  # one pool: no CPU by kind
    backlog = overall["engine_backlog_s"]  # read from the server's /metrics while the calls ran
    assert backlog["max"] is not None and 0 <= backlog["p50"] <= backlog["max"] < 5
    assert "engine backlog (s of caller audio waiting, worst call" in printed
    stages = overall["stage_mean_ms"]  # the server's own account of each answer (bot/engine/turn_timing.py)
    if overall["latency_ms"]["n"]:
        assert stages["decide"] is not None and 0 <= stages["decide"] < 3000
        assert stages["answer"] is not None and 0 <= stages["answer"] < 3000
