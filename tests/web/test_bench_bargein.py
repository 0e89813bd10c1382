"""`duplexbot bench bargein-browser`, bounded: two fresh headless-Chromium calls against the real
server, each with one interruption over the bot's answer (two phrasings, two voices, two moments).

What is asserted is the bench's own machinery and what the page must do: every run reaches the
answer and is judged (stopped, or why not, with the engine's trace over the overlap); the page's
echo probe finds no echo on the fake capture device (there is no acoustic path) and sends the
unprocessed track; a stopped run has the engine's latency and the stop as the browser heard it;
the JSON report has the machine and the summary. At least one of the two must stop the bot (the
10-run figure, 9 of 10 or better, is in docs/web.md): a miss is reported with its outcome.
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from bot.bench.browser_bargein import CHROMIUM, BenchSettings, format_table, run_bench

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(120),
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")]


async def test_two_runs_of_the_browser_bargein_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DUPLEXBOT_WEBRTC_TENANT", "DUPLEXBOT_WEBRTC_TENANTS", "DUPLEXBOT_SUPERVISOR_TOKENS"):
        monkeypatch.delenv(var, raising=False)
    bs = BenchSettings(runs=2, out=str(tmp_path / "bench"), first=1)
    report = await asyncio.wait_for(run_bench(bs), 85)

    saved = json.loads((tmp_path / "bench" / "bench_browser_bargein.json").read_text())
    assert saved["summary"] == report["summary"]
    m = report["machine"]
    assert m["cpus"] and len(m["load_average"]) == 3 and m["platform"] and "Chromium" in m["chromium"], m
    runs = report["runs"]
    assert [r["phrase"] for r in runs] == ["Hold on a second.", "Sorry, stop there."]
    assert len({r["voice"] for r in runs}) == 2 and len({r["delay_s"] for r in runs}) == 2
    for r in runs:
        assert r["outcome"] and not r["outcome"].startswith(("error", "no answer")), r["outcome"]
        assert not r["page_errors"], r["page_errors"]
        assert r["capture"]["echoCancellation"] is True and r["capture"]["noiseSuppression"] is False
        # no echo path on a fake capture device: the probe sends the unprocessed track
        echo = r["echo"]
        assert echo["mode"] == "auto" and echo["echo"] is False and echo["cancelling"] is False, echo
        assert r["echo"]["sent"]["echoCancellation"] is False, r["echo"]
        assert r["trace"] and "p_interrupt" in r["trace"][0] and "bot_ref_db" in r["trace"][0]
        if r["stopped"]:
            assert 0 <= r["engine_ms"] <= 2500 and r["heard_drop_ms"] is not None and 0 < r["heard_drop_ms"] < 2500, r
    s = report["summary"]
    assert s["runs"] == 2 and s["stopped"] >= 1, format_table(report)
    assert s["heard_drop_ms"]["p50"] is not None and s["engine_ms"]["p50"] is not None
    table = format_table(report)
    assert f"stopped {s['stopped']}/2" in table and "load average" in table
