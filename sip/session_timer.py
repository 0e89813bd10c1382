"""RFC 4028 session timers: who refreshes a dialog and when, negotiated from Session-Expires,
Min-SE and Supported. Pure functions over messages; the UA core arms and fires them."""
from __future__ import annotations

from dataclasses import dataclass, field

from .message import Request, Response, parse_params


@dataclass
class SessionTimer:
    """RFC 4028 state for one dialog: who refreshes and when."""
    interval: int = 0              # 0: no session timer
    we_refresh: bool = False
    deadline: float | None = None  # refresh (if we refresh) or give up (if they do)
    fields: dict = field(default_factory=dict)

    def arm(self, now: float) -> None:
        if not self.interval:
            self.deadline = None
        elif self.we_refresh:
            self.deadline = now + self.interval / 2
        else:
            self.deadline = now + self.interval - min(32, self.interval / 3)


def negotiate(req: Request, min_se: int, default_interval: int) -> tuple[SessionTimer, list[tuple[str, str]]]:
    """For an INVITE/UPDATE we answer: the timer state and the header fields of our 2xx.
    (The caller has already refused intervals below `min_se` with 422.)"""
    se = req.headers.get("Session-Expires")
    peer_supports = "timer" in [s.lower() for s in req.headers.get_all("Supported")]
    if se:
        secs, _, params = se.partition(";")
        interval = max(int(secs.strip()), min_se)
        refresher = parse_params(params).get("refresher", "")
        if refresher not in ("uac", "uas"):
            refresher = "uac" if peer_supports else "uas"
    elif peer_supports and default_interval:
        interval, refresher = default_interval, "uac"
    else:
        return SessionTimer(), [("Supported", "timer")]
    # "uac" is the peer that sent this request (also in its re-INVITEs), "uas" is us
    out = [("Supported", "timer"), ("Session-Expires", f"{interval};refresher={refresher}")]
    if peer_supports:
        out.append(("Require", "timer"))
    return SessionTimer(interval, we_refresh=refresher == "uas"), out


def from_answer(resp: Response) -> SessionTimer | None:
    """For a call we placed: the timer the 2xx imposes (we are the "uac")."""
    se = resp.headers.get("Session-Expires")
    if not se:
        return None
    secs, _, params = se.partition(";")
    if not secs.strip().isdigit():
        return None
    return SessionTimer(int(secs.strip()), we_refresh=parse_params(params).get("refresher", "uac") == "uac")


def too_small(req: Request, min_se: int) -> bool:
    se = req.headers.get("Session-Expires")
    if not se:
        return False
    secs = se.split(";")[0].strip()
    return not secs.isdigit() or int(secs) < min_se
