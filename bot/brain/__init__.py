"""The conversation brain: a language model behind the bot, its tools, and the rules that keep
what callers say from steering it (`chat`, `tools`, `safety`)."""
from ..services.responder import ChatSettings, ResponderError
from .chat import MAX_TOOL_ROUNDS, OpenAIChatResponder
from .safety import Confirmation, Screening, is_affirmative, redact_digits, screen
from .tools import (
    RunnerSettings,
    ToolOutcome,
    ToolRunner,
    ToolSet,
    ToolSpec,
    Webhook,
    load_tools,
    parse_tools,
)

__all__ = [
    "ChatSettings", "Confirmation", "MAX_TOOL_ROUNDS", "OpenAIChatResponder", "ResponderError", "RunnerSettings",
    "Screening", "ToolOutcome", "ToolRunner", "ToolSet", "ToolSpec", "Webhook", "is_affirmative", "load_tools",
    "parse_tools", "redact_digits", "screen",
]
