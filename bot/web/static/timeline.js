// The call timeline: both channels' levels (caller above the axis, bot below) with the engine's
// decisions on the same call-time axis, and a per-turn latency chart. Plain canvas, no library.
// Fed by CallView (common.js): events as they come, levels 10 times a second (dBFS).
"use strict";
window.DBTimeline = (function () {
  const FLOOR = -60;  // dBFS drawn as silence
  const COLORS = { caller: "#0f5fa8", bot: "#6a2fb0", end_of_turn: "#137a3a", hold: "#5b6470", barge_in: "#b42318",
                   backchannel: "#2454d6", false_barge_in: "#9a5b00", supervisor: "#9a3412", other: "#5b6470" };
  const LABELS = { end_of_turn: "End of turn", hold: "Hold", barge_in: "Barge-in", backchannel: "Backchannel",
                   false_barge_in: "False barge-in" };
  const SUP = { takeover: "Take-over", handback: "Hand-back", mute: "Muted", unmute: "Unmuted", hold: "On hold",
                resume: "Resumed", transfer: "Transfer", policy: "Policy" };
  const norm = (db) => Math.max(0, Math.min(1, (db - FLOOR) / -FLOOR));

  class Timeline {
    constructor(canvas, latency, opts) {
      this.canvas = canvas; this.latencyCanvas = latency;
      this.live = !(opts && opts.live === false);
      this.window = (opts && opts.window) || 60;  // seconds shown while live (the whole call once ended)
      this.reset();
      this._dirty = true;
      this._timer = setInterval(() => { if (this._dirty) this.draw(); }, 250);
    }

    reset() {
      this.levels = [];  // [t, callerDb, botDb]
      this.marks = [];   // {t, kind, label, confidence}
      this.spans = [];   // bot speech {t0, t1}
      this.turns = [];   // {turn, detect, reply} per answered turn; {barge} per barge-in
      this.end = null;
      this._dirty = true;
    }

    setLive(live) { this.live = live; this._dirty = true; }

    level(s) { this.levels.push([s.t, s.caller, s.bot]); if (this.levels.length > 36000) this.levels.splice(0, 6000); this._dirty = true; }

    series(sr) {
      if (!sr || sr.t0 == null) return;
      const out = [];
      for (let i = 0; i < sr.caller.length; i++) out.push([sr.t0 + i * sr.dt, sr.caller[i], sr.bot[i]]);
      const last = this.levels.length ? this.levels[0][0] : Infinity;
      this.levels = out.filter((x) => x[0] < last - 1e-6).concat(this.levels);
      this._dirty = true;
    }

    latency(kind, value, turn) { this.turns.push({ kind, value, turn }); this._dirty = true; }

    event(e) {
      if (typeof e.t !== "number") return;
      if (LABELS[e.type]) this.marks.push({ t: e.t, kind: e.type, label: LABELS[e.type], confidence: e.confidence });
      else if (e.type === "supervisor") this.marks.push({ t: e.t, kind: "supervisor", label: SUP[e.action] || e.action });
      else if (e.type === "bot_speech_start") this.spans.push({ t0: e.t, t1: null, turn: e.turn });
      else if (e.type === "bot_speech_stop") { const s = this.spans.find((x) => x.turn === e.turn && x.t1 == null); if (s) s.t1 = e.t; }
      else if (e.type === "call_ended") { this.end = e.t; this.live = false; }
      this._dirty = true;
    }

    now() {
      let t = this.end != null ? this.end : 0;
      if (this.levels.length) t = Math.max(t, this.levels[this.levels.length - 1][0] + 0.1);
      for (const m of this.marks) t = Math.max(t, m.t);
      for (const s of this.spans) t = Math.max(t, s.t1 != null ? s.t1 : s.t0);
      return t;
    }

    _ctx(canvas) {
      const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 600, h = canvas.clientHeight || 160;
      if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
      const c = canvas.getContext("2d");
      c.setTransform(dpr, 0, 0, dpr, 0, 0);
      c.clearRect(0, 0, w, h);
      c.font = "11px system-ui, sans-serif";
      return [c, w, h];
    }

    draw() {
      this._dirty = false;
      if (this.canvas) this._drawLevels();
      if (this.latencyCanvas) this._drawLatency();
    }

    _drawLevels() {
      const [c, w, h] = this._ctx(this.canvas);
      const left = 44, right = 8, top = 42, bottom = 18;
      const t1 = Math.max(this.now(), 1), t0 = this.live ? Math.max(0, t1 - this.window) : 0;
      const span = Math.max(1, t1 - t0), x = (t) => left + ((t - t0) / span) * (w - left - right);
      const mid = top + (h - top - bottom) / 2, amp = (h - top - bottom) / 2 - 2;
      // bot speech spans
      c.fillStyle = "rgba(106, 47, 176, .07)";
      for (const s of this.spans) { const a = x(Math.max(t0, s.t0)), b = x(s.t1 != null ? s.t1 : t1); if (b > left) c.fillRect(a, top, Math.max(1, b - a), h - top - bottom); }
      // axis and seconds grid
      c.strokeStyle = "#dde1e6"; c.fillStyle = "#5b6470"; c.lineWidth = 1;
      const step = span > 600 ? 60 : span > 240 ? 30 : span > 90 ? 10 : span > 30 ? 5 : 2;
      for (let s = Math.ceil(t0 / step) * step; s <= t1; s += step) {
        const px = x(s); c.beginPath(); c.moveTo(px, top); c.lineTo(px, h - bottom); c.stroke();
        const m = Math.floor(s / 60), sec = Math.round(s - 60 * m);
        c.fillText(`${m}:${String(sec).padStart(2, "0")}`, px - 12, h - 4);
      }
      c.beginPath(); c.moveTo(left, mid); c.lineTo(w - right, mid); c.stroke();
      c.fillStyle = COLORS.caller; c.fillText("Caller", 4, mid - amp / 2 + 4);
      c.fillStyle = COLORS.bot; c.fillText("Bot", 4, mid + amp / 2 + 4);
      // levels: caller up, bot down
      const seen = this.levels.filter((l) => l[0] >= t0 - 0.1);
      for (const [side, idx, sign] of [["caller", 1, -1], ["bot", 2, 1]]) {
        c.fillStyle = COLORS[side];
        c.globalAlpha = 0.75;
        for (const l of seen) {
          const v = norm(l[idx]); if (v <= 0) continue;
          const px = x(l[0]), pw = Math.max(1, x(l[0] + 0.1) - px - 0.3);
          c.fillRect(px, sign < 0 ? mid - v * amp : mid, pw, v * amp);
        }
        c.globalAlpha = 1;
      }
      // decisions: labels packed in three rows; one that fits nowhere is left out (its line stays)
      const rowEnd = [-1e9, -1e9, -1e9];
      for (const m of this.marks) {
        if (m.t < t0) continue;
        const px = x(m.t), col = COLORS[m.kind] || COLORS.other;
        c.strokeStyle = col; c.lineWidth = m.kind === "barge_in" || m.kind === "end_of_turn" ? 2 : 1.2;
        c.setLineDash(m.kind === "hold" || m.kind === "backchannel" ? [3, 3] : []);
        c.beginPath(); c.moveTo(px, top - 2); c.lineTo(px, h - bottom); c.stroke(); c.setLineDash([]);
        const text = m.confidence != null ? `${m.label} ${Math.round(m.confidence * 100)}%` : m.label;
        const tw = c.measureText(text).width, lx = Math.min(px + 2, w - right - tw);
        const row = rowEnd.findIndex((end) => lx >= end + 4);
        if (row < 0) continue;
        rowEnd[row] = lx + tw;
        c.fillStyle = col; c.fillText(text, lx, 11 + row * 12);
      }
      if (this.end != null) { c.fillStyle = "#5b6470"; c.fillText("ended", Math.min(x(this.end) + 2, w - 40), h - bottom - 4); }
      this.canvas.dataset.marks = String(this.marks.length);
      this.canvas.dataset.levels = String(this.levels.length);
      this.canvas.dataset.span = `${t0.toFixed(1)}-${t1.toFixed(1)}`;
    }

    _drawLatency() {
      const [c, w, h] = this._ctx(this.latencyCanvas);
      const rows = this.turns, left = 44, bottom = 18, top = 8;
      const max = Math.max(1, ...rows.map((r) => (r.kind === "response" ? r.value.detect + r.value.reply : r.value)));
      const y = (v) => h - bottom - (v / max) * (h - top - bottom);
      c.strokeStyle = "#dde1e6"; c.fillStyle = "#5b6470"; c.lineWidth = 1;
      const step = max > 2 ? 0.5 : max > 1 ? 0.25 : 0.1;
      for (let v = 0; v <= max + 1e-9; v += step) { const py = y(v); c.beginPath(); c.moveTo(left, py); c.lineTo(w - 4, py); c.stroke(); c.fillText(`${Math.round(v * 1000)}`, 4, py + 4); }
      if (!rows.length) { c.fillText("No turns yet: each answer and each barge-in adds a bar (ms).", left + 8, h / 2); return; }
      const bw = Math.min(28, (w - left - 8) / rows.length - 6);
      rows.forEach((r, i) => {
        const px = left + 6 + i * (bw + 6);
        if (r.kind === "response") {
          c.fillStyle = COLORS.end_of_turn; c.fillRect(px, y(r.value.detect), bw, h - bottom - y(r.value.detect));
          c.fillStyle = COLORS.bot; c.fillRect(px, y(r.value.detect + r.value.reply), bw, y(r.value.detect) - y(r.value.detect + r.value.reply));
        } else {
          c.fillStyle = r.kind === "heard" ? "#ef4444" : COLORS.barge_in; c.fillRect(px, y(r.value), bw, h - bottom - y(r.value));
        }
        c.fillStyle = "#5b6470"; c.fillText(r.kind === "response" ? `T${r.turn}` : r.kind === "heard" ? "H" : "B", px + 2, h - 4);
      });
      this.latencyCanvas.dataset.bars = String(rows.length);
    }
  }
  return { Timeline };
})();
