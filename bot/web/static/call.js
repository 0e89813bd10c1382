// The call page: a WebRTC call to the bot, its transcript, decisions and latency.
"use strict";
(function () {
  const { $, el, waitIce, preferCodec, meter, postJSON, CallView } = window.DB;
  const view = new CallView($("#view"));
  const ui = { call: $("#call"), hangup: $("#hangup"), status: $("#status"), error: $("#error"), codec: $("#codec"), callId: $("#call-id") };
  // Read by the browser tests: audio levels measured in the page, and the call's state.
  const state = window.duplexbot = { callId: null, connected: false, ended: false, bot: { peak: 0, loud: 0 }, mic: { peak: 0, loud: 0 }, events: [] };
  Object.defineProperty(state, "latency", { get: () => view.lat });
  let pc = null, channel = null, mic = null, stops = [];

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
    Object.assign(state, { callId: null, connected: false, ended: false, events: [] });
    const t0 = performance.now();
    try {
      const config = await (await fetch("/webrtc/config")).json();
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
      stops.push(meter(mic, $("#mic-bar"), state.mic));
      pc = new RTCPeerConnection({ iceServers: config.iceServers || [] });
      const tr = pc.addTransceiver(mic.getAudioTracks()[0], { direction: "sendrecv", streams: [mic] });
      preferCodec(tr, ui.codec.value);
      channel = pc.createDataChannel("events");
      channel.onmessage = (m) => onMessage(JSON.parse(m.data));
      channel.onclose = () => { if (pc && !state.ended) teardown("Call ended", ""); };
      pc.ontrack = (ev) => {
        const stream = ev.streams[0] || new MediaStream([ev.track]);
        $("#remote").srcObject = stream;
        stops.push(meter(stream, $("#bot-bar"), state.bot));
      };
      pc.onconnectionstatechange = () => {
        if (pc && pc.connectionState === "connected") {
          state.connected = true;
          status("Connected", "live");
          state.connectMs = Math.round(performance.now() - t0);
          $("#connect-time").textContent = `connected in ${state.connectMs} ms`;
        } else if (pc && ["failed", "disconnected"].includes(pc.connectionState)) {
          status("Connection lost", "bad");
        }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await waitIce(pc);
      const answer = await postJSON("/webrtc/offer", { type: "offer", sdp: pc.localDescription.sdp });
      state.callId = answer.call_id;
      ui.callId.textContent = answer.call_id;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      ui.hangup.disabled = false;
      ui.codec.disabled = true;
    } catch (e) {
      fail(e.name === "NotAllowedError" ? "Microphone access was refused: allow it to call the bot." : `Could not call: ${e.message}`);
      teardown("Idle", "");
    }
  }

  function onMessage(m) {
    if (m.type === "event") { state.events.push(m.event); view.handle(m.event); }
    else if (m.type === "ended") teardown("Call ended", "");
  }

  function teardown(text, cls) {
    state.ended = true;
    for (const s of stops) s();
    stops = [];
    if (channel) { try { channel.close(); } catch (e) { /* closed */ } }
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    pc = channel = mic = null;
    ui.call.disabled = false; ui.hangup.disabled = true; ui.codec.disabled = false;
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
