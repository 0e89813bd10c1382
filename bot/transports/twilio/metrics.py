"""Process-wide Prometheus counters of the Twilio transport (per-call counters: `StreamStats`)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

WEBHOOKS = Counter("duplexbot_twilio_webhooks_total", "Voice webhook requests by result", ["result"])
STREAMS = Counter("duplexbot_twilio_streams_total", "Media stream WebSockets by outcome", ["result"])
LIVE_STREAMS = Gauge("duplexbot_twilio_live_streams", "Media streams open now")
FRAMES = Counter("duplexbot_twilio_media_frames_total", "Media frames by direction", ["direction"])
DROPPED = Counter("duplexbot_twilio_frames_dropped_total", "Inbound frames dropped, by reason", ["reason"])
CLEARS = Counter("duplexbot_twilio_clears_total", "clear messages sent (barge-in)")
UNDERRUNS = Counter("duplexbot_twilio_underruns_total", "Times the outbound pacer fell behind real time mid-speech")
REST = Counter("duplexbot_twilio_rest_requests_total", "Twilio REST API requests", ["op", "result"])
FRAMES_IN = FRAMES.labels("in")  # children looked up once: labels() costs ~20 us, per frame that adds up
FRAMES_OUT = FRAMES.labels("out")
