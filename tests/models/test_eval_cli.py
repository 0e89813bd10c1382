"""`duplexbot eval turns` and `duplexbot bench model` end to end on the fixture call (fast)."""
import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    for f in ("call.wav", "call.json"):
        shutil.copy(FIX / f, d / f)
    return d


@pytest.mark.parametrize("telephony", [False, True])
def test_eval_turns_writes_table_json_and_plots(dataset, tmp_path, capsys, telephony):
    out = tmp_path / "out"
    argv = ["eval", "turns", str(dataset), "--policy", "vad-timeout", "--policy", "duplex", "--out", str(out),
            "--no-curves"] + (["--telephony"] if telephony else [])
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "vad-timeout" in printed and "duplex" in printed and "EOT rec" in printed
    res = json.loads((out / "results.json").read_text())
    assert set(res["policies"]) == {"vad-timeout", "duplex"} and res["telephony"] is telephony
    for r in res["policies"].values():
        assert r["counts"] == {"eot": 1, "hold": 1, "interruption": 1, "backchannel": 1, "minutes": 0.13}
    assert (out / "latency.png").stat().st_size > 1000


def test_eval_turns_overrides_the_duplex_operating_point(dataset, tmp_path):
    """Confirm counts and the silence fallback can be set on the command line, and are recorded."""
    out = tmp_path / "out"
    assert main(["eval", "turns", str(dataset), "--policy", "duplex", "--out", str(out), "--no-curves",
                 "--eot-confirm", "3", "--interrupt-confirm", "1", "--max-eot-silence", "2.0"]) == 0
    got = json.loads((out / "results.json").read_text())["duplex_settings"]
    assert (got["eot_confirm"], got["interrupt_confirm"], got["max_eot_silence"]) == (3, 1, 2.0)


def test_eval_turns_reports_bad_dataset(tmp_path, capsys):
    (tmp_path / "x.wav").write_bytes(b"")
    assert main(["eval", "turns", str(tmp_path), "--no-curves"]) == 2
    assert "no labels file x.json" in capsys.readouterr().err


def test_bench_model(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "model", "--batches", "1,8", "--steps", "10", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["batch"] for r in res["rows"]] == [1, 8] and res["calls_per_core"] > 0
    assert "real time" in capsys.readouterr().out
