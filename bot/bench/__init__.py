"""Benchmarks behind `duplexbot bench ...` and the peers they drive; nothing in the runtime imports
this package.

- `sip`: sipp at rising call rates and concurrency against the SIP bridge (`bench sip`).
- `twilio`: Twilio Media Streams calls against a server in its own process (`bench twilio`);
  `ServerProcess` and `LoopLag` are shared with `duplexbot bench phone` (bot/eval/phone.py).
- `twilio_peer`: `TwilioPeer`, Twilio's side of one call over real sockets (the bench's callers and
  the Twilio tests' peer).
- `state`: the call-state store under load (`bench state`).
"""
