// The call page: a WebRTC call to the bot, its transcript, decisions and latency.
"use strict";
(function () {
  const { $, el, waitIce, preferCodec, meter, postJSON, CallView, StopWatch, EchoProbe } = window.DB;
  const view = new CallView($("#view"));
  const ui = { call: $("#call"), hangup: $("#hangup"), status: $("#status"), error: $("#error"), codec: $("#codec"),
               callId: $("#call-id"), tenant: $("#tenant") };
  const params = new URLSearchParams(location.search);
  // Read by the browser tests: audio levels measured in the page, and the call's state.
  const state = window.duplexbot = { callId: null, connected: false, ended: false, bot: { peak: 0, loud: 0 }, mic: { peak: 0, loud: 0 },
                                     events: [], stops: [], measurements: [], tenant: null, capture: null, echo: null,
                                     network: { browser: null, server: null }, levels: 0, notices: [] };
  Object.defineProperty(state, "latency", { get: () => view.lat });
  let pc = null, channel = null, mic = null, stops = [], watch = null, bargeAt = [], statsTimer = null;
  let raw = null, probe = null, sender = null, micMeter = null;

  // Network quality: this browser's getStats (the bot's audio as received here, the round trip of
  // the ICE candidate pair) beside the bot's own figures (aiortc's getStats, every 2 s on the channel).
  async function browserStats() {
    if (!pc) return;
    const out = { jitter: null, loss: null, rtt: null, lost: null, packets: null, buffer: null };
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        out.jitter = r.jitter; out.lost = r.packetsLost; out.packets = r.packetsReceived;
        // how long the bot's audio waits in this browser's jitter buffer (part of every stop heard)
        if (r.jitterBufferEmittedCount) out.buffer = r.jitterBufferDelay / r.jitterBufferEmittedCount;
        out.loss = r.packetsReceived + r.packetsLost > 0 ? r.packetsLost / (r.packetsReceived + r.packetsLost) : null;
      } else if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime != null) out.rtt = r.currentRoundTripTime;
      else if (r.type === "remote-inbound-rtp" && r.kind === "audio" && r.roundTripTime != null && out.rtt == null) out.rtt = r.roundTripTime;
    });
    state.network.browser = out;
    renderNetwork();
  }
  function renderNetwork() {
    const b = state.network.browser || {}, sv = state.network.server || {};
    const msv = (v) => (v == null ? "—" : String(Math.round(v * 1000))), pc100 = (v) => (v == null ? "—" : (v * 100).toFixed(1));
    const card = (k, v, unit, note, key) => el("div", { class: "stat", "data-net": key }, el("div", { class: "k", text: k }),
      el("div", { class: "v" }, document.createTextNode(v), v === "—" ? null : el("small", { text: unit })), el("div", { class: "n", text: note }));
    $("#network").replaceChildren(
      card("Round trip", msv(b.rtt != null ? b.rtt : sv.rtt), "ms", b.rtt != null ? "ICE candidate pair, this browser" : "the bot's RTCP", "rtt"),
      card("Jitter to you", msv(b.jitter), "ms", "the bot's audio, as received here", "jitter-in"),
      card("Loss to you", pc100(b.loss), "%", b.lost != null ? `${b.lost} of ${b.lost + b.packets} packets` : "", "loss-in"),
      card("Jitter to the bot", msv(sv.jitter), "ms", "your audio, measured by the bot", "jitter-out"),
      card("Loss to the bot", pc100(sv.loss), "%", sv.lost_in != null ? `${sv.lost_in} of ${sv.lost_in + sv.packets_in} packets` : "", "loss-out"));
  }

  // A supervisor takes over, holds or hands back: tell the caller on the page too.
  function supervisorNotice(e) {
    const text = { takeover: `A member of our team has joined the call${e.notice ? `: “${e.notice}”` : "."}`,
                   hold: `You are on hold${e.notice ? `: “${e.notice}”` : "."}`, handback: "You are back with the bot.",
                   resume: "You are back with the bot." }[e.action];
    if (text == null) return;
    state.notices.push(text);
    $("#notice").textContent = text;
  }

  // Capture, chosen deliberately: noise suppression and automatic gain control off: both act
  // hardest exactly when the caller talks over the bot (double talk), gating the onset of a short
  // "wait" and pulling the level down under the bot's echo. Echo cancellation only where there is
  // an echo to cancel: on laptop speakers it keeps the bot's own voice from coming back to it (it
  // would interrupt itself); without an echo path (a headset) it never converges and its
  // suppressor removes the caller's words whenever the bot talks, so the first "wait, stop" is lost.
  // ?echo=auto (the default) starts with it on and probes a second, unprocessed capture against the
  // bot's audio during the greeting (echoprobe.js): no echo heard, the unprocessed track replaces
  // the sent one. ?echo=on keeps it on, ?echo=off never uses it (docs/web.md has the measurements).
  const ECHO = ["on", "off"].includes(params.get("echo")) ? params.get("echo") : "auto";
  const CAPTURE = { echoCancellation: ECHO !== "off", noiseSuppression: false, autoGainControl: false, channelCount: 1 };
  const RAW = { ...CAPTURE, echoCancellation: false };

  // Which tenant the call belongs to (its supervisors see it): ?tenant=NAME, else the bot's default.
  async function loadConfig() {
    const config = await (await fetch("/webrtc/config")).json();
    const want = params.get("tenant");
    const tenants = config.tenants || [];
    ui.tenant.replaceChildren(...tenants.map((t) => el("option", { value: t, text: t })));
    if (!config.tenant && !want) ui.tenant.prepend(el("option", { value: "", text: "Choose…" }));
    ui.tenant.value = want || config.tenant || "";
    if (want && !tenants.includes(want)) fail(`Unknown tenant “${want}”: this bot serves ${tenants.join(", ")}.`);
    ui.tenant.disabled = tenants.length < 2 && !!ui.tenant.value;
    return config;
  }
  const configReady = loadConfig().catch((e) => { fail(`Could not load the call settings: ${e.message}`); return { iceServers: [] }; });

  function pairStops() {
    for (const r of state.measurements) {
      if (r.paired || !r.stopped) continue;
      if (bargeAt.some((t) => t >= r.onset - 500 && t <= r.onset + 2500)) {
        r.paired = true;
        state.stops.push({ drop: r.drop, silent: r.silent });
        view.heardStop(r);
      }
    }
  }

  function status(text, cls) { ui.status.textContent = text; ui.status.className = `pill ${cls || ""}`; }
  function fail(msg) { ui.error.textContent = msg; }

  for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
    const b = el("button", { type: "button", text: k, "aria-label": `Key ${k}` });
    b.addEventListener("click", () => { if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "dtmf", digit: k })); });
    $("#keypad").append(b);
  }

  async function call() {
    fail("");
    ui.call.disabled = true;
    status("Connecting…", "wait");
    view.reset();
    if (view.chart) view.chart.setLive(true);
    Object.assign(state, { callId: null, connected: false, ended: false, events: [], stops: [], measurements: [], echo: null,
                           network: { browser: null, server: null }, levels: 0, notices: [] });
    $("#notice").textContent = "";
    bargeAt = [];
    const t0 = performance.now();
    try {
      const config = await configReady;
      if (!ui.tenant.value) throw new Error("choose a tenant first");
      mic = await navigator.mediaDevices.getUserMedia({ audio: CAPTURE });
      state.capture = mic.getAudioTracks()[0].getSettings();
      micMeter = meter(mic, $("#mic-bar"), state.mic);
      watch = new StopWatch((r) => { state.measurements.push(r); pairStops(); });
      watch.setMic(mic);
      pc = new RTCPeerConnection({ iceServers: config.iceServers || [] });
      const tr = pc.addTransceiver(mic.getAudioTracks()[0], { direction: "sendrecv", streams: [mic] });
      sender = tr.sender;
      state.echo = { mode: ECHO, cancelling: CAPTURE.echoCancellation, decided: ECHO !== "auto" };
      if (ECHO === "auto") {
        try {
          raw = await navigator.mediaDevices.getUserMedia({ audio: RAW });
          if (raw.getAudioTracks()[0].getSettings().echoCancellation !== false) throw new Error("no unprocessed capture");
        } catch (e) {  // this browser cannot capture the device twice: keep the canceller
          if (raw) raw.getTracks().forEach((t) => t.stop());
          raw = null;
          Object.assign(state.echo, { decided: true, reason: `no probe: ${e.message}` });
        }
      }
      preferCodec(tr, ui.codec.value);
      channel = pc.createDataChannel("events");
      channel.onmessage = (m) => onMessage(JSON.parse(m.data));
      channel.onclose = () => { if (pc && !state.ended) teardown("Call ended", ""); };
      pc.ontrack = (ev) => {
        const stream = ev.streams[0] || new MediaStream([ev.track]);
        $("#remote").srcObject = stream;
        stops.push(meter(stream, $("#bot-bar"), state.bot));
        if (watch) watch.setBot(stream);
        if (raw && !probe) probe = new EchoProbe(raw, stream, echoDecided);
      };
      pc.onconnectionstatechange = () => {
        if (pc && pc.connectionState === "connected") {
          state.connected = true;
          status("Connected", "live");
          state.connectMs = Math.round(performance.now() - t0);
          $("#connect-time").textContent = `connected in ${state.connectMs} ms`;
          if (!statsTimer) statsTimer = setInterval(() => browserStats().catch(() => {}), 2000);
        } else if (pc && ["failed", "disconnected"].includes(pc.connectionState)) {
          status("Connection lost", "bad");
        }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await waitIce(pc);
      const answer = await postJSON("/webrtc/offer", { type: "offer", sdp: pc.localDescription.sdp, tenant: ui.tenant.value });
      state.callId = answer.call_id;
      state.tenant = answer.tenant;
      ui.callId.textContent = `${answer.tenant} · ${answer.call_id}`;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      ui.hangup.disabled = false;
      ui.codec.disabled = true;
      ui.tenant.disabled = true;
    } catch (e) {
      fail(e.name === "NotAllowedError" ? "Microphone access was refused: allow it to call the bot." : `Could not call: ${e.message}`);
      teardown("Idle", "");
    }
  }

  // The probe's answer: without an echo, the unprocessed capture replaces the sent track.
  async function echoDecided(r) {
    probe = null;
    Object.assign(state.echo, { decided: true, echo: r.echo, reason: r.reason, probe: r });
    if (!raw || !sender) return;
    if (r.echo) { raw.getTracks().forEach((t) => t.stop()); raw = null; return; }
    try {
      await sender.replaceTrack(raw.getAudioTracks()[0]);
    } catch (e) {
      state.echo.reason += `; could not switch (${e.message})`;
      raw.getTracks().forEach((t) => t.stop()); raw = null;
      return;
    }
    const old = mic;
    mic = raw; raw = null;
    state.echo.cancelling = false;
    state.echo.sent = mic.getAudioTracks()[0].getSettings();  // state.capture keeps what the call started with
    if (watch) watch.setMic(mic);
    if (micMeter) micMeter();
    micMeter = meter(mic, $("#mic-bar"), state.mic);
    if (old) old.getTracks().forEach((t) => t.stop());
  }

  function onMessage(m) {
    if (m.type === "event") {
      state.events.push(m.event);
      view.handle(m.event);
      if (m.event.type === "barge_in") { bargeAt.push(performance.now()); pairStops(); }
      if (watch && ["bot_speech_start", "bot_speech_stop"].includes(m.event.type)) watch.setBotTurn(m.event.type === "bot_speech_start");
      if (m.event.type === "supervisor") supervisorNotice(m.event);
    }
    else if (m.type === "levels") { state.levels++; view.levels(m); }
    else if (m.type === "network") { state.network.server = m.network; renderNetwork(); }
    else if (m.type === "ended") teardown("Call ended", "");
  }

  function teardown(text, cls) {
    state.ended = true;
    if (statsTimer) { clearInterval(statsTimer); statsTimer = null; }
    if (view.chart) view.chart.setLive(false);
    for (const s of stops) s();
    stops = [];
    if (micMeter) { micMeter(); micMeter = null; }
    if (watch) { watch.stop(); watch = null; }
    if (probe) { probe.stop(); probe = null; }
    if (raw) { raw.getTracks().forEach((t) => t.stop()); raw = null; }
    sender = null;
    if (channel) { try { channel.close(); } catch (e) { /* closed */ } }
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    pc = channel = mic = null;
    ui.call.disabled = false; ui.hangup.disabled = true; ui.codec.disabled = false;
    ui.tenant.disabled = ui.tenant.options.length < 2 && !!ui.tenant.value;
    status(text, cls);
  }

  function hangup() {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "hangup" }));
    teardown("Call ended", "");
  }

  ui.call.addEventListener("click", call);
  ui.hangup.addEventListener("click", hangup);
  window.addEventListener("pagehide", () => { if (pc) hangup(); });
})();
