// Is there an echo to cancel? Decided from the first seconds of the bot's speech.
//
// The browser's echo canceller (WebRTC AEC3) is needed on laptop speakers, where the bot's voice
// comes back through the microphone. Without an echo path (a headset, a phone's earpiece, an OS
// that cancels echo itself) it only does harm: until its filter has converged on an echo path,
// and it never does when there is none, its suppressor removes the caller's speech whenever the
// bot is talking, so the caller's first "wait, stop" reaches the bot as 0.1-0.3 s scraps (read as
// a backchannel) or not at all. Measured with `duplexbot bench bargein-browser`, docs/web.md.
//
// This watches a second, unprocessed capture of the same microphone against the bot's audio as
// the page plays it, every 10 ms. Ticks are "bot loud" (the bot's level over the last 300 ms above
// BOT_LOUD: any echo, delayed up to 300 ms, is in the microphone then) or "bot quiet" (below
// BOT_QUIET over the last 300 ms). After ENOUGH_LOUD loud ticks: no echo when the raw
// microphone's level while the bot is loud is no higher than while it is quiet (and low in
// absolute terms); echo otherwise. Caller speech during the probe counts as echo, so a doubtful
// probe keeps the echo canceller (the safe side). Decided once, within GIVE_UP_MS of the bot's
// first audio (undecided: echo, canceller kept).
"use strict";
window.DB.EchoProbe = (function () {
  const TICK_MS = 10, WINDOW_MS = 300, GIVE_UP_MS = 8000;
  const BOT_LOUD = 0.02, BOT_QUIET = 0.003;  // RMS, full scale 1
  const ENOUGH_LOUD = 150, ENOUGH_QUIET = 20;  // 1.5 s of loud bot audio, 0.2 s of quiet
  const MIC_ECHO_MIN = 0.002;  // raw microphone RMS (-54 dBFS) below which nothing is heard back
  const RATIO = 1.5;  // loud-tick microphone level over quiet-tick level that counts as an echo

  class EchoProbe {
    // onDecided({echo: bool, reason, micLoud, micQuiet, botLoud, ticks}) once.
    constructor(raw, bot, onDecided) {
      const ctx = window.DB.audio();
      this.parts = [raw, bot].map((s) => {
        const src = ctx.createMediaStreamSource(s), an = ctx.createAnalyser();
        an.fftSize = 512;
        src.connect(an);
        return { src, an, buf: new Float32Array(an.fftSize) };
      });
      this.onDecided = onDecided;
      this.recent = [];  // the bot's level over the last WINDOW_MS
      this.loud = { n: 0, mic: 0, bot: 0 };
      this.quiet = { n: 0, mic: 0 };
      this.first = null;
      this.done = false;
      this.timer = setInterval(() => this._tick(performance.now()), TICK_MS);
    }

    static rms(p) {
      p.an.getFloatTimeDomainData(p.buf);
      let s = 0;
      for (let i = 0; i < p.buf.length; i++) s += p.buf[i] * p.buf[i];
      return Math.sqrt(s / p.buf.length);
    }

    _tick(now) {
      const m = EchoProbe.rms(this.parts[0]), b = EchoProbe.rms(this.parts[1]);
      this.recent.push(b);
      if (this.recent.length > WINDOW_MS / TICK_MS) this.recent.shift();
      const hi = Math.max(...this.recent);
      if (b > BOT_LOUD && this.first == null) this.first = now;
      if (hi > BOT_LOUD && Math.min(...this.recent.slice(-5)) > BOT_QUIET) {
        this.loud.n++; this.loud.mic += m * m; this.loud.bot += b * b;
      } else if (hi < BOT_QUIET && this.recent.length >= WINDOW_MS / TICK_MS) {
        this.quiet.n++; this.quiet.mic += m * m;
      }
      if (this.loud.n >= ENOUGH_LOUD && this.quiet.n >= ENOUGH_QUIET) {
        const micLoud = Math.sqrt(this.loud.mic / this.loud.n), micQuiet = Math.sqrt(this.quiet.mic / this.quiet.n);
        const none = micLoud < MIC_ECHO_MIN || micLoud < RATIO * micQuiet;
        this._decide(!none, none ? "the microphone hears nothing of the bot" : "the bot's voice comes back through the microphone",
                     micLoud, micQuiet);
      } else if (this.first != null && now - this.first > GIVE_UP_MS) {
        this._decide(true, "undecided (too little of the bot's audio, or the caller talked over it)", null, null);
      }
    }

    _decide(echo, reason, micLoud, micQuiet) {
      if (this.done) return;
      this.done = true;
      this.stop();
      const r3 = (v) => (v == null ? null : Math.round(v * 10000) / 10000);
      this.onDecided({ echo, reason, micLoud: r3(micLoud), micQuiet: r3(micQuiet),
                       botLoud: this.loud.n ? r3(Math.sqrt(this.loud.bot / this.loud.n)) : null,
                       ticks: { loud: this.loud.n, quiet: this.quiet.n } });
    }

    stop() {
      clearInterval(this.timer);
      for (const p of this.parts) { try { p.src.disconnect(); } catch (e) { /* gone */ } }
    }
  }
  return EchoProbe;
})();
