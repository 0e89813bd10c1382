"""The supervisor console: per-tenant tokens, live listening (mixed, per-listener bounded
buffers), whisper, take-over and hand-back, all audited."""
from .auth import Authenticator, Supervisor, SupervisorSettings
from .console import ConsoleError, SupervisorConsole
from .listen import ListenFeed, ListenTrack

__all__ = ["Authenticator", "Supervisor", "SupervisorSettings", "ConsoleError", "SupervisorConsole", "ListenFeed",
           "ListenTrack"]
