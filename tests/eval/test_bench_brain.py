"""`duplexbot bench brain`: the speculation counts and the table on made-up results, and a tiny run
(two questions, the offline agent and the stub at 400 ms) into real `duplexbot serve` processes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.bench.brain import format_table, speculation_counts
from bot.cli import main


def test_speculations_are_counted_once_per_call_and_id() -> None:
    ev = [{"type": "speculation", "call_id": "a", "id": 1, "outcome": "started"},
          {"type": "speculation", "call_id": "a", "id": 1, "outcome": "used"},
          {"type": "speculation", "call_id": "a", "id": 2, "outcome": "started"},
          {"type": "speculation", "call_id": "a", "id": 2, "outcome": "wasted"},
          {"type": "speculation", "call_id": "b", "id": 1, "outcome": "started"},
          {"type": "speculation", "call_id": "b", "id": 1, "outcome": "started"},  # a retried write
          {"type": "end_of_turn", "call_id": "b"}]
    ev[1]["ready"] = 0.42
    assert speculation_counts(ev) == {"started": 3, "used": 1, "wasted": 1, "wasted_rate": 0.333,
                                      "head_start_ms_p50": 420.0}
    assert speculation_counts([]) == {"started": 0, "used": 0, "wasted": 0, "wasted_rate": None,
                                      "head_start_ms_p50": None}


def _config(name: str, p50: float | None, model: dict[str, float] | None, spec: dict[str, object] | None) -> dict:
    return {"name": name, "model": model, "samples": 3, "latency_ms": {"p50": p50, "p90": p50, "n": 3},
            "unanswered": 1, "errors": 0, "model_requests": 4 if model else 0,
            "extra_model_calls_per_turn": 0.333 if model else None, "speculation": spec}


def test_table_compares_with_the_offline_agent() -> None:
    spec = {"started": 4, "used": 3, "wasted": 1, "wasted_rate": 0.25, "head_start_ms_p50": 310.0}
    report = {"questions": 3, "transport": "twilio", "policy": "auto", "parallel": 2, "note": "",
              "machine": {"platform": "Linux", "cpu_count": 2, "load_avg_1m": 0.5},
              "configs": [_config("offline agent", 1000.0, None, spec),
                          _config("stub ttft 400 ms", 1530.0, {"ttft": 0.4, "words_per_second": 12.0}, None)]}
    lines = format_table(report).splitlines()
    assert "2 CPUs" in lines[0]
    assert lines[1].split()[:4] == ["configuration", "n", "p50", "ms"]
    offline, stub = lines[2], lines[3]
    assert re.match(r"offline agent\s+3\s+1000\s+1000\s+-\s+1\s+0\s+4\s+3\s+1\s+25%\s+310\s+-\s+-$", offline)
    assert re.match(r"stub ttft 400 ms\s+3\s+1530\s+1530\s+\+530\s+1\s+0(\s+-){5}\s+4\s+\+0\.33$", stub)


@pytest.mark.slow
def test_bench_brain_tiny_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench-brain.json"
    assert main(["bench", "brain", "--n", "2", "--parallel", "2", "--ttft", "0.4", "--voices", "espeak",
                 "--set", str(tmp_path / "set"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Brain bench: 2 caller questions" in printed
    assert re.search(r"^offline agent\s+2\s", printed, re.M) and re.search(r"^stub ttft 400 ms\s+2\s", printed, re.M)
    res = json.loads(out.read_text())
    assert res["bench"] == "brain" and res["questions"] == 2
    assert res["machine"]["cpu_count"] >= 1 and res["machine"]["platform"]
    offline, stub = res["configs"]
    assert (offline["model"], stub["model"]) == (None, {"ttft": 0.4, "words_per_second": 12.0})
    for c in (offline, stub):
        assert c["errors"] == 0, [r["error"] for r in c["rows"]]
        assert c["latency_ms"]["n"] + c["unanswered"] + c["takeovers"] == 2
        assert c["latency_ms"]["n"] >= 1 and c["latency_ms"]["p50"] > 0  # latencies were measured
        spec = c["speculation"]  # 0 until the engine speculates; None only without a Valkey
        assert spec is not None and spec["used"] + spec["wasted"] <= spec["started"]
        assert c["server_events"] > 0  # the calls' events were read back from the store
    assert offline["model_requests"] == 0 and offline["extra_model_calls_per_turn"] is None
    assert stub["model_requests"] >= stub["turns_taken"] >= 1  # every turn the bot took asked the stub
    assert stub["extra_model_calls_per_turn"] == pytest.approx(stub["model_requests"] / stub["turns_taken"] - 1,
                                                               abs=1e-3)
