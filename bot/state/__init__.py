"""Call state in Redis: call records and liveness, barge-in policies, the event and audit log,
retention and privacy. The engine uses one `CallStore` (as `runtime.state`)."""
from .consumer import StreamConsumer
from .embedded import DataDirInUse
from .health import StoreWatch
from .keys import Keys
from .policy import BargeInPolicy, PolicyError
from .policy_store import PolicyStore, Scope
from .redact import redact
from .settings import Retention, StateSettings
from .store import CallStore

__all__ = ["BargeInPolicy", "CallStore", "DataDirInUse", "Keys", "PolicyError", "PolicyStore", "Retention", "Scope",
           "StateSettings", "StoreWatch", "StreamConsumer", "redact"]
