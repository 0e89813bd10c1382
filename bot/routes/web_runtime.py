"""What the browser-facing routes (bot/routes/webrtc.py, bot/routes/supervisor.py) use of the
runtime: its settings for browsers and supervisors, the live calls, the call store and the
admission controller. `Runtime` satisfies it; the web tests' `FakeRuntime` (tests/web/fakes.py)
does too, so the routes run there without models."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..engine.admission import AdmissionController
from ..engine.port import Transport
from ..supervisor.auth import SupervisorSettings
from ..transports.webrtc import WebRTCSettings

if TYPE_CHECKING:
    from ..runtime import Runtime


class WebSettings(Protocol):
    """The part of `Settings` the browser and console routes read (already parsed)."""

    @property
    def webrtc(self) -> WebRTCSettings: ...

    @property
    def supervisor(self) -> SupervisorSettings: ...


class LiveCallRegistry(Protocol):
    """`Runtime.calls`: runs a transport's call and finds the live sessions."""

    async def run(self, transport: Transport) -> object: ...

    def get(self, call_id: str) -> Any: ...  # the live session, or None

    def live(self) -> list[Any]: ...


class CallRecords(Protocol):
    """`Runtime.state` as the console uses it: every worker's live calls, and the audit trail."""

    async def live_calls(self, tenant: str | None = None) -> list[dict[str, Any]]: ...

    def audit(self, *, tenant: str, actor: str, action: str, call_id: str, detail: str = "") -> object: ...


class WebRuntime(Protocol):
    @property
    def settings(self) -> WebSettings: ...

    @property
    def calls(self) -> LiveCallRegistry: ...

    @property
    def state(self) -> CallRecords | None: ...

    @property
    def admission(self) -> AdmissionController | None: ...


if TYPE_CHECKING:
    def _runtime_is_a_web_runtime(rt: Runtime) -> WebRuntime:
        return rt  # mypy holds the real runtime to this contract
