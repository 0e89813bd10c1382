"""The eval's metric code on hand-made cases and the hand-labelled fixture call."""
from pathlib import Path

import pytest

from bot.eval.dataset import Labels, load_sample
from bot.eval.metrics import Scores, score, summary

FIX = Path(__file__).parent / "fixtures"


def test_eot_detection_window_latency_and_holds():
    labels = Labels(eot=(10.0, 20.0, 30.0), hold=((5.0, 6.0), (15.0, 16.5)))
    # 5.5 and 5.8 fall in the first pause (one FP); 9.8 is inside -0.25 s of 10.0 (latency -0.2);
    # 20.3 detects 20.0; 33.5 is past +3.0 s of 30.0 and is spurious.
    s = score(labels, eot_times=[5.5, 5.8, 9.8, 20.3, 33.5], stop_times=[])
    assert s.eot_total == 3 and s.eot_latencies == pytest.approx([-0.2, 0.3])
    assert (s.holds_total, s.holds_fp, s.eot_spurious) == (2, 1, 1)
    out = summary(s)
    assert out["eot_recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert out["eot_fp_rate"] == 0.5
    assert out["eot_latency_p50"] == pytest.approx(0.05)


def test_early_decision_does_not_count():
    s = score(Labels(eot=(10.0,)), eot_times=[9.7], stop_times=[])
    assert s.eot_latencies == [] and s.eot_spurious == 1


def test_interruptions_and_false_stops():
    labels = Labels(interruption=(10.0, 30.0), backchannel=(4.0, 9.0, 20.0))
    # 4.2 stops on a backchannel; 9.1 is in the backchannel at 9.0's window, which ends 0.25 s
    # before the interruption at 10.0; 10.15 detects it; nothing near 30.
    s = score(labels, eot_times=[], stop_times=[4.2, 9.1, 10.15])
    assert s.stop_latencies == pytest.approx([0.15])
    assert (s.bc_total, s.bc_false_stops) == (3, 2)
    out = summary(s)
    assert out["interruption_recall"] == 0.5 and out["false_stop_rate"] == pytest.approx(2 / 3, abs=1e-3)


def test_scores_add_and_empty_summary():
    total = Scores().add(score(Labels(eot=(1.0,)), [1.2], [], 60.0)).add(score(Labels(), [], [], 60.0))
    out = summary(total)
    assert out["counts"]["minutes"] == 2.0 and out["eot_recall"] == 1.0
    assert out["interruption_recall"] is None and out["stop_latency_p50"] is None


def test_fixture_call_scores_as_labelled():
    s = load_sample(FIX / "call.wav")
    assert s.audio.shape == (2, 8 * 16000)  # 8 kHz file resampled to 16 kHz
    assert s.labels.eot == (3.17,) and s.labels.hold == ((1.46, 2.26),)
    perfect = score(s.labels, [3.4], [6.6], s.duration)
    assert summary(perfect)["eot_recall"] == 1.0 and summary(perfect)["false_stop_rate"] == 0.0
    # a silence-timeout policy that ends the turn in the hold and stops the bot on the "mm hmm"
    naive = summary(score(s.labels, [1.96, 3.67], [5.3, 6.9], s.duration))
    assert naive["eot_fp_rate"] == 1.0 and naive["false_stop_rate"] == 1.0
    assert naive["eot_latency_p50"] == pytest.approx(0.5) and naive["stop_latency_p50"] == pytest.approx(0.43)
