// How fast the bot goes quiet when the caller talks over it, as the caller hears it.
//
// The engine's barge-in event says when it *decided* to stop; the caller hears the stop later (the
// packets already on the way, the jitter buffer, the audio output). This watches both sides in the
// page with WebAudio AnalyserNodes every 10 ms: the caller's onset from the local microphone level,
// and the bot's level on the remote track. A stop is the first moment the bot's level falls below
// 10 % of its running level (what it was while talking, before the onset) and stays there 200 ms;
// "silent" is the same below 1 %. Onsets where the bot never goes quiet within 2.5 s (a
// backchannel, the bot kept talking) are kept as `stopped: false`. The bot counts as talking
// while its level is recent (300 ms) or while its turn lasts (the engine's events, setBotTurn):
// an onset in a pause between its sentences is measured too; the bot already below 10 % there, the
// stop is where it stays below after the pause (the level going up again restarts the count).
"use strict";
window.DB.StopWatch = (function () {
  const TICK_MS = 10, HOLD_MS = 200, GIVE_UP_MS = 2500;
  const MIC_MIN = 0.01;      // RMS (full scale 1) below this is never speech
  const BOT_MIN = 0.003;     // the bot's audio counts as talking above this RMS

  function rms(an, buf) {
    an.getFloatTimeDomainData(buf);
    let s = 0;
    for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
    return Math.sqrt(s / buf.length);
  }

  class StopWatch {
    // onMeasured(m) for every finished measurement: {onset (performance.now() ms), drop, silent
    // (seconds after the onset, null when not reached), stopped, ref (the bot's level)}.
    constructor(onMeasured) {
      this.onMeasured = onMeasured || (() => {});
      this.mic = null; this.bot = null;
      this.floor = 0.002; this.micRun = 0; this.micQuietRun = 0; this.inSpeech = false;
      this.botLevel = 0; this.botLastLoud = -1e9; this.botTurn = false;
      this.pending = null;
      this.results = [];
      this.timer = null;
    }

    _source(stream) {
      const ctx = window.DB.audio();
      const src = ctx.createMediaStreamSource(stream);
      const an = ctx.createAnalyser();
      an.fftSize = 512;  // 10.7 ms at 48 kHz: one tick's worth
      src.connect(an);
      return { src, an, buf: new Float32Array(an.fftSize) };
    }

    setMic(stream) {  // again when the sent track changes (echoprobe.js): the caller's onset is on what is sent
      if (this.mic) { try { this.mic.src.disconnect(); } catch (e) { /* gone */ } }
      this.mic = this._source(stream); this._start();
    }
    setBot(stream) { this.bot = this._source(stream); this._start(); }

    _start() { if (!this.timer) this.timer = setInterval(() => this._tick(performance.now()), TICK_MS); }

    stop() {
      clearInterval(this.timer); this.timer = null;
      for (const s of [this.mic, this.bot]) if (s) { try { s.src.disconnect(); } catch (e) { /* gone */ } }
      this.mic = this.bot = null;
    }

    // The bot's turn as the engine's events tell it (bot_speech_start .. bot_speech_stop): a caller
    // who starts inside a pause between the bot's sentences (300 ms and more) interrupts it too.
    setBotTurn(on) { this.botTurn = !!on; }

    botTalking(now) { return this.botLevel > BOT_MIN && (this.botTurn || now - this.botLastLoud < 300); }

    _tick(now) {
      if (!this.mic || !this.bot) return;
      const m = rms(this.mic.an, this.mic.buf), b = rms(this.bot.an, this.bot.buf);
      // the bot's running level: followed while it talks and nobody measures a stop
      if (!this.pending && b > BOT_MIN) {
        this.botLevel = this.botLevel ? 0.97 * this.botLevel + 0.03 * b : b;
      }
      if (b > Math.max(BOT_MIN, 0.1 * this.botLevel)) this.botLastLoud = now;
      // the caller's onset: 30 ms above the noise floor
      const loud = m > Math.max(MIC_MIN, 4 * this.floor);
      if (!loud) this.floor = Math.min(Math.max(0.0005, 0.995 * this.floor + 0.005 * m), 0.02);
      this.micRun = loud ? this.micRun + 1 : 0;
      this.micQuietRun = loud ? 0 : this.micQuietRun + 1;
      if (this.micQuietRun >= 30) this.inSpeech = false;  // 300 ms of quiet ends a caller's stretch
      if (this.micRun === 3 && !this.inSpeech) {
        this.inSpeech = true;
        if (!this.pending && this.botTalking(now)) {
          this.pending = { onset: now - 2 * TICK_MS, ref: this.botLevel, below: null, belowSilent: null, drop: null, silent: null };
        }
      }
      const p = this.pending;
      if (!p) return;
      if (b < 0.1 * p.ref) { if (p.below == null) p.below = now; } else p.below = null;
      if (b < 0.01 * p.ref) { if (p.belowSilent == null) p.belowSilent = now; } else p.belowSilent = null;
      if (p.drop == null && p.below != null && now - p.below >= HOLD_MS) p.drop = (p.below - p.onset) / 1000;
      if (p.silent == null && p.belowSilent != null && now - p.belowSilent >= HOLD_MS) p.silent = (p.belowSilent - p.onset) / 1000;
      const timedOut = now - p.onset > GIVE_UP_MS;
      if ((p.drop != null && p.silent != null) || timedOut) {
        const r = { onset: p.onset, drop: p.drop, silent: p.silent, stopped: p.drop != null, ref: p.ref };
        this.pending = null;
        this.results.push(r);
        this.onMeasured(r);
      }
    }
  }
  return StopWatch;
})();
