"""sip.pacer: the one pacer of outgoing media and its lateness rule, with a fake clock."""
import pytest

from sip.pacer import MAX_LATE, Pacer

F = 0.02


def run(p: Pacer, now: float) -> int:
    """Produce every frame due at `now`; how many that was."""
    n = p.due(now)
    for _ in range(n):
        p.advance()
    return n


def test_one_frame_per_period_from_the_first_call():
    p = Pacer(F)
    assert run(p, 10.0) == 1  # the first call starts the schedule: frame 0 plays now
    assert p.due(10.0) == 0 and p.wait(10.0) == pytest.approx(F)
    assert p.due(10.0199) == 0
    assert run(p, 10.02) == 1
    assert p.frames == 2 and p.resyncs == 0


def test_lateness_up_to_max_late_catches_up_back_to_back():
    p = Pacer(F)
    run(p, 0.0)
    # the loop stalls 90 ms (< MAX_LATE): the frames due meanwhile all go out now, none skipped
    assert run(p, 0.02 + 0.09) == 5
    assert p.resyncs == 0 and p.skipped == 0
    assert p.due(0.11) == 0 and p.playout() == pytest.approx(0.12)


def test_past_max_late_the_pacer_resyncs_instead_of_bursting():
    p = Pacer(F)
    run(p, 0.0)
    assert MAX_LATE == 0.1
    # frame 1 was due at 0.02; at 0.5 it is 480 ms late: one frame now, the schedule restarts from now
    assert run(p, 0.5) == 1
    assert p.resyncs == 1 and p.skipped == 24
    assert p.due(0.5) == 0 and p.wait(0.5) == pytest.approx(F)
    assert run(p, 0.52) == 1 and p.resyncs == 1


def test_ahead_produces_a_lead_before_playout():
    p = Pacer(F, ahead=0.06)  # each frame is due 60 ms before it plays
    assert run(p, 5.0) == 4  # frames playing at 5.00 .. 5.06 are due at once
    assert p.due(5.0) == 0 and p.deadline() == pytest.approx(5.02)
    assert run(p, 5.02) == 1
    # a stall: only the lead goes out again, never the frames whose time passed
    assert run(p, 6.0) == 4 and p.resyncs == 1


def test_restart_and_bad_arguments():
    p = Pacer(F)
    with pytest.raises(RuntimeError):
        p.advance()
    assert p.wait(0.0) == 0.0 and not p.started
    p.restart(3.0)
    assert p.playout() == 3.0 and p.due(3.0) == 1
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(F, ahead=-1)
