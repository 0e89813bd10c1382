// duplexbot pages: shared helpers (no build step, no dependencies).
"use strict";
window.DB = (function () {
  const $ = (sel, root) => (root || document).querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  const ms = (s) => Math.round(s * 1000);
  const median = (xs) => { if (!xs.length) return null; const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const clock = (t) => { const m = Math.floor(t / 60), s = t - 60 * m; return `${m}:${s.toFixed(1).padStart(4, "0")}`; };
  const pct = (c) => (c != null ? `confidence ${Math.round(c * 100)} %` : "");
  const join = (...parts) => parts.filter((x) => x).join(" · ");

  // The policy's reason for a decision, in words. Probability labels ("p(interrupt)=0.94") repeat the
  // confidence shown beside them and are dropped; anything else that is not a known label is words
  // the caller said (an older policy put its transcript there).
  const REASONS = [
    [/^p\((\w+)\)=[\d.]+$/, () => ""],
    [/^smart turn p=[\d.]+$/, () => "turn model"],
    [/^silence ([\d.]+)s$/, (m) => `after ${Math.round(Number(m[1]) * 1000)} ms of silence`],
    [/^pause ([\d.]+)s$/, (m) => `a ${Math.round(Number(m[1]) * 1000)} ms pause`],
    [/^short overlap$/, () => "too short to be an interruption"],
    [/^VAD speech over bot$/, () => "speech over the bot"],
    [/^notice: (.*)$/, (m) => m[1]],
  ];
  function reasonText(reason) {
    const r = (reason || "").trim();
    if (!r) return "";
    for (const [re, f] of REASONS) { const m = r.match(re); if (m) return f(m); }
    if (/[=<>()]|\d\.\d/.test(r)) return r.replace(/_/g, " ");  // some other label: say it, never quote it
    return `heard “${r}”`;
  }
  const STOPS = { barge_in: "the caller interrupted", takeover: "a supervisor took over", hangup: "the call ended",
                  dtmf: "a key was pressed", done: "finished", supervisor: "a supervisor's notice" };
  const SUPERVISOR = { takeover: "Take-over", handback: "Hand-back", mute: "Bot muted", unmute: "Bot unmuted",
                       hold: "On hold", resume: "Resumed", transfer: "Transfer", policy: "Policy changed" };
  const ENDS = { remote: "the caller hung up", "caller hung up": "the caller hung up", bot: "the bot hung up",
                 network: "the connection was lost", shutdown: "the server shut down", local: "ended by the bot" };

  // Wait for ICE gathering to complete: the server takes one offer with every candidate in it.
  function waitIce(pc, timeoutMs = 3000) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); clearTimeout(timer); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, timeoutMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  // Prefer one codec (names as in SDP: "opus", "PCMU") on an audio transceiver, when the browser allows it.
  function preferCodec(transceiver, name) {
    if (!name || !transceiver.setCodecPreferences || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
    const caps = RTCRtpReceiver.getCapabilities("audio").codecs;
    const want = caps.filter((c) => c.mimeType.toLowerCase() === `audio/${name.toLowerCase()}`);
    if (want.length) transceiver.setCodecPreferences(want);
  }

  // A level meter on a MediaStream, measured with a WebAudio AnalyserNode. `stats` collects the
  // peak and the number of loud frames (the browser tests read them).
  let audioCtx = null;
  function meter(stream, bar, stats) {
    audio();
    const src = audioCtx.createMediaStreamSource(stream);
    const an = audioCtx.createAnalyser();
    an.fftSize = 1024;
    src.connect(an);
    const buf = new Float32Array(an.fftSize);
    let running = true;
    const tick = () => {
      if (!running) return;
      an.getFloatTimeDomainData(buf);
      let peak = 0, sum = 0;
      for (let i = 0; i < buf.length; i++) { const a = Math.abs(buf[i]); if (a > peak) peak = a; sum += buf[i] * buf[i]; }
      const rms = Math.sqrt(sum / buf.length);
      stats.peak = Math.max(stats.peak || 0, peak);
      stats.frames = (stats.frames || 0) + 1;
      if (rms > 0.01) stats.loud = (stats.loud || 0) + 1;
      if (bar) bar.style.width = `${Math.min(100, Math.round(Math.sqrt(rms) * 180))}%`;
      setTimeout(tick, 50);
    };
    tick();
    return () => { running = false; try { src.disconnect(); } catch (e) { /* gone */ } if (bar) bar.style.width = "0"; };
  }

  async function postJSON(url, body, headers) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...(headers || {}) }, body: JSON.stringify(body || {}) });
    let data = null;
    try { data = await r.json(); } catch (e) { data = { error: r.statusText }; }
    if (!r.ok) { const err = new Error((data && data.error) || `HTTP ${r.status}`); err.status = r.status; throw err; }
    return data;
  }

  // Renders one call's engine events: transcript, decision timeline and latency figures.
  // root holds [data-role=transcript|timeline|stats] elements.
  class CallView {
    constructor(root) {
      this.transcript = $("[data-role=transcript]", root);
      this.timeline = $("[data-role=timeline]", root);
      this.stats = $("[data-role=stats]", root);
      const chart = $("[data-role=chart]", root), latency = $("[data-role=latency-chart]", root);
      this.chart = chart && window.DBTimeline ? new window.DBTimeline.Timeline(chart, latency) : null;
      this.reset();
    }

    reset() {
      this.turnLines = new Map();
      this.lastBot = null;
      this.lastT = null;
      this.lastAt = null;
      this.partial = null;
      this.eot = null;
      this.lat = { response: [], detect: [], reply: [], barge: [], heard: [], silent: [] };
      this.seen = new Set();
      this.counts = {};
      this.supMarks = { local: [], engine: [] };
      if (this.chart) this.chart.reset();
      this.transcript.replaceChildren(el("li", { class: "empty", text: "Nothing said yet." }));
      this.timeline.replaceChildren(el("li", { class: "empty", text: "No decisions yet." }));
      this.renderStats();
    }

    _clearEmpty(list) { const e = list.querySelector(".empty"); if (e) e.remove(); }

    say(who, text, t, cls) {
      this._clearEmpty(this.transcript);
      const li = el("li", { class: `${who} ${cls || ""}` },
        el("span", { class: "who", text: { caller: "Caller", bot: "Bot", supervisor: "Supervisor" }[who] || who }),
        el("div", { class: "text" }, el("span", { class: "words", text }), t != null ? el("span", { class: "t", text: clock(t) }) : null));
      this.transcript.append(li);
      this.transcript.parentElement.scrollTop = 1e9;
      return li;
    }

    // The call time now: the last event's stream time plus the wall time since it arrived (for
    // actions taken here, which have no engine event of their own).
    callTime() {
      if (this.lastT == null) return null;
      return this.lastT + (performance.now() - this.lastAt) / 1000;
    }

    // A supervisor's action is marked twice: here when it is taken (its own call time) and by the
    // engine's `supervisor` event: the list shows whichever comes first, within 3 s.
    _twice(label, t, local) {
      const other = local ? this.supMarks.engine : this.supMarks.local;
      if (t != null && other.some((m) => m.label === label && Math.abs(m.t - t) < 3)) return true;
      (local ? this.supMarks.local : this.supMarks.engine).push({ label, t });
      return false;
    }

    mark(t, tag, label, detail) {
      const local = t == null;
      if (local) t = this.callTime();
      if (tag === "sup" && this._twice(label, t, local)) return;
      this._clearEmpty(this.timeline);
      this.timeline.append(el("li", {}, el("span", { class: "t", text: t != null ? clock(t) : "" }),
        el("span", {}, el("span", { class: `tag ${tag}`, text: label })), el("span", { text: detail || "" })));
      this.timeline.parentElement.scrollTop = 1e9;
    }

    handle(e) {
      const key = `${e.type}|${e.t}|${e.mono}`;
      if (this.seen.has(key)) return;  // backlog and live stream may overlap
      this.seen.add(key);
      if (typeof e.t === "number" && (this.lastT == null || e.t >= this.lastT)) { this.lastT = e.t; this.lastAt = performance.now(); }
      this.counts[e.type] = (this.counts[e.type] || 0) + 1;
      if (this.chart) this.chart.event(e);
      switch (e.type) {
        case "call_started": this.mark(e.t, "other", "Call started", join(e.transport, e.caller, e.tenant && `tenant ${e.tenant}`)); break;
        case "call_ended": this.mark(e.t, "other", "Call ended", ENDS[e.reason] || (e.reason || "").replace(/_/g, " ")); break;
        case "caller_speech_start": this.mark(e.t, "speech", e.during_bot_speech ? "Overlap" : "Caller speaks", e.during_bot_speech ? "caller started over the bot" : ""); break;
        case "transcript_partial":
          if (!this.partial) this.partial = this.say("caller", e.text, e.t, "partial");
          else this.partial.querySelector(".words").textContent = e.text;
          break;
        case "transcript_final":
          if (e.speaker === "caller") {
            if (this.partial) { this.partial.remove(); this.partial = null; }
            if (e.text && e.text.trim()) this.say("caller", e.text.trim(), e.t);
          } else if (e.speaker === "bot") {
            // the whole turn once it is done (bot_speech_start carried only its first sentence)
            const li = this.lastBot;
            if (li && !li.querySelector(".cut") && e.text) li.querySelector(".words").textContent = e.text;
          } else if (e.speaker) {
            this.say(e.speaker, e.text, e.t);
          }
          break;
        case "end_of_turn":
          this.eot = e;
          this.lat.detect.push(e.silence);
          this.mark(e.t, "end_of_turn", "End of turn", join(`after ${ms(e.silence)} ms of silence`, pct(e.confidence)));
          break;
        case "hold": this.mark(e.t, "hold", "Hold", join("a pause; the caller is expected to go on", pct(e.confidence))); break;
        case "barge_in":
          this.lat.barge.push(Math.max(0, e.t - e.onset));
          if (this.chart) this.chart.latency("barge", Math.max(0, e.t - e.onset));
          this.mark(e.t, "barge_in", "Barge-in", join(`the bot decided to stop ${ms(Math.max(0, e.t - e.onset))} ms after the caller started`,
            reasonText(e.reason), pct(e.confidence)));
          break;
        case "backchannel": {
          // `text` has held the policy's reason, not the caller's words; `reason` beside it means words
          const said = e.reason !== undefined && e.text ? `heard “${e.text}”` : "";
          this.mark(e.t, "backchannel", "Backchannel", join("the bot kept talking", said, reasonText(e.reason !== undefined ? e.reason : e.text), pct(e.confidence)));
          break;
        }
        case "false_barge_in": this.mark(e.t, "false_barge_in", "False barge-in", `no words followed; resuming: ${e.resumed_text}`); break;
        case "bot_speech_start": {
          let detail = `turn ${e.turn}`;
          if (this.eot && this.eot.mono <= e.mono) {
            const reply = e.mono - this.eot.mono, total = reply + this.eot.silence;
            this.lat.reply.push(reply); this.lat.response.push(total);
            if (this.chart) this.chart.latency("response", { detect: this.eot.silence, reply }, e.turn);
            detail = `${ms(total)} ms after the caller stopped (detect ${ms(this.eot.silence)} + reply ${ms(reply)})`;
            this.eot = null;
          }
          this.mark(e.t, "bot", "Bot speaks", detail);
          this.lastBot = this.say("bot", e.text, e.t);
          this.turnLines.set(e.turn, this.lastBot);
          break;
        }
        case "bot_speech_stop": if (e.reason !== "done") this.mark(e.t, "bot", "Bot stopped", STOPS[e.reason] || e.reason.replace(/_/g, " ")); break;
        case "bot_truncated": {
          const li = this.turnLines.get(e.turn);
          if (li) {
            const w = li.querySelector(".words");
            w.replaceChildren(document.createTextNode(e.heard + " "), el("span", { class: "cut", title: "not heard by the caller", text: e.unheard }));
          }
          break;
        }
        case "dtmf": this.mark(e.t, "other", "DTMF", e.digit); break;
        case "action": this.mark(e.t, "other", { transfer: "Transfer", hangup: "Hang-up", secure_input: "Secure input" }[e.name] || e.name,
          join(e.target, e.ok ? "" : "failed")); break;
        case "error": this.mark(e.t, "barge_in", "Error", `${e.where}: ${e.message}`); break;
        case "supervisor": this.mark(e.t, "sup", SUPERVISOR[e.action] || e.action,
          join(e.notice && `the caller is told “${e.notice}”`, e.detail)); break;
        default: break;
      }
      this.renderStats();
    }

    // The bot's stop as the caller heard it, measured in the browser (bot/web/static/stopwatch.js).
    heardStop(m) {
      this.lat.heard.push(m.drop);
      if (this.chart) this.chart.latency("heard", m.drop);
      if (m.silent != null) this.lat.silent.push(m.silent);
      this.mark(null, "barge_in", "Stop heard", join(`the bot's audio fell below 10 % ${ms(m.drop)} ms after you started`,
        m.silent != null ? `silent after ${ms(m.silent)} ms` : "", "measured in this browser"));
      this.renderStats();
    }

    // both channels' levels: one 100 ms sample {t, caller, bot} (dBFS), or a stored series
    levels(s) { if (this.chart) this.chart.level(s); }
    levelSeries(sr) { if (this.chart) this.chart.series(sr); }

    renderStats() {
      const card = (k, xs, good, slow, note) => {
        const last = xs.length ? xs[xs.length - 1] : null, med = median(xs);
        const cls = last == null ? "" : last <= good ? "good" : last <= slow ? "meh" : "slow";
        return el("div", { class: `stat ${cls}`, "data-stat": k.toLowerCase().replace(/\W+/g, "-") },
          el("div", { class: "k", text: k }),
          el("div", { class: "v" }, document.createTextNode(last == null ? "—" : String(ms(last))), last == null ? null : el("small", { text: "ms" })),
          el("div", { class: "n", text: xs.length ? `median ${ms(med)} ms · ${xs.length} turn${xs.length > 1 ? "s" : ""}` : note }));
      };
      this.stats.replaceChildren(
        card("Response", this.lat.response, 0.8, 1.5, "caller stops → bot audio"),
        card("Turn detection", this.lat.detect, 0.4, 0.8, "silence before end of turn"),
        card("Reply", this.lat.reply, 0.5, 1.0, "end of turn → first audio"),
        card("Barge-in decision", this.lat.barge, 0.3, 0.6, "caller starts → engine stops the bot"),
        card("Stop heard", this.lat.heard, 0.4, 0.8, "caller starts → bot audio below 10 % (this browser)"));
    }
  }

  const audio = () => {
    audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
    if (audioCtx.state === "suspended") audioCtx.resume();
    return audioCtx;
  };

  return { $, el, ms, clock, pct, reasonText, waitIce, preferCodec, meter, audio, postJSON, CallView };
})();
