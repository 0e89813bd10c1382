"""Registration to a trunk (RFC 3261 section 10) with digest authentication and refresh. Sans-IO:
`request(now)` builds the next REGISTER, `on_response(resp, now)` reads the answer and says whether
to send again at once (a challenge) and when to refresh."""
from __future__ import annotations

from dataclasses import dataclass

from .digest import authorization, pick_challenge
from .message import Headers, Request, Response, parse_name_addr


@dataclass(frozen=True)
class RegistrationSettings:
    registrar: str                 # Request-URI, e.g. sip:trunk.example.com
    aor: str                       # address of record, e.g. sip:bot@trunk.example.com
    username: str = ""
    password: str = ""
    expires: int = 3600
    retry_after: float = 60.0      # after a failure


class Registration:
    def __init__(self, settings: RegistrationSettings, call_id: str, tag: str, contact: str):
        self.settings = settings
        self.call_id = call_id
        self.tag = tag
        self.contact = contact
        self.cseq = 0
        self.registered = False
        self.expires = 0
        self.refresh_at: float | None = None
        self._auth: tuple[str, str] | None = None   # (header name, value)
        self._challenged_nonce: str | None = None
        self.unregistering = False

    def request(self, branch_via: str, expires: int | None = None) -> Request:
        self.cseq += 1
        exp = self.settings.expires if expires is None else expires
        items = [("Via", branch_via), ("Max-Forwards", "70"), ("From", f"<{self.settings.aor}>;tag={self.tag}"),
                 ("To", f"<{self.settings.aor}>"), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} REGISTER"),
                 ("Contact", f"<{self.contact}>;expires={exp}"), ("Expires", str(exp)),
                 ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER, UPDATE")]
        if self._auth:
            items.append(self._auth)
        self.unregistering = exp == 0
        return Request("REGISTER", self.settings.registrar, Headers.of(*items))

    def on_response(self, resp: Response, now: float) -> str:
        """'retry' (send again now, with credentials), 'ok', or 'failed'."""
        if resp.status in (401, 407):
            name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            try:
                ch = pick_challenge(resp.headers.get_all(name) or [resp.headers.get(name) or ""])
            except ValueError:
                return self._fail(now)
            if ch.nonce == self._challenged_nonce and not ch.stale or not self.settings.username:
                return self._fail(now)
            self._challenged_nonce = ch.nonce
            value = authorization(ch, self.settings.username, self.settings.password, "REGISTER",
                                  self.settings.registrar, cnonce=f"{self.cseq:08x}{self.tag[:8]}")
            self._auth = ("Authorization" if resp.status == 401 else "Proxy-Authorization", value)
            return "retry"
        if 200 <= resp.status < 300:
            if self.unregistering:
                self.registered, self.expires, self.refresh_at = False, 0, None
                return "ok"
            exp: int | None = None
            for c in resp.headers.get_all("Contact"):
                try:
                    na = parse_name_addr(c)
                except ValueError:
                    continue
                if na.uri == self.contact and na.params.get("expires", "").isdigit():
                    exp = int(na.params["expires"])
            if exp is None:
                e = (resp.headers.get("Expires") or "").strip()
                exp = int(e) if e.isdigit() else self.settings.expires
            self.registered, self.expires = True, exp
            self.refresh_at = now + max(exp / 2, 1.0)
            return "ok"
        if resp.status >= 300:
            return self._fail(now)
        return "pending"

    def on_timeout(self, now: float) -> str:
        return self._fail(now)

    def _fail(self, now: float) -> str:
        self.registered = False
        self._challenged_nonce = None
        self.refresh_at = now + self.settings.retry_after
        return "failed"
