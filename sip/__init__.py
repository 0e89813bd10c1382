"""duplexbot's SIP trunk bridge: sans-IO cores (message, transaction, dialog, sdp, digest, rtp,
jitter, dtmf, media, and the user agent: ua (server side), uac (client side), ua_state, timer_heap)
and a thin asyncio edge (server, with udp, tcp and media_clock). Never imports `bot`."""
from .call import AudioChunk, CallHangup, CallItem, CallSink, SipCall
from .media import DtmfDigit, MediaSettings, RtpSession
from .message import Request, Response, SipParseError, parse_message
from .server import ServerSettings, SipServer
from .ua import UaSettings, UserAgent

__all__ = ["AudioChunk", "CallHangup", "CallItem", "CallSink", "SipCall", "DtmfDigit", "MediaSettings",
           "RtpSession", "Request", "Response", "SipParseError", "parse_message", "ServerSettings", "SipServer",
           "UaSettings", "UserAgent"]
