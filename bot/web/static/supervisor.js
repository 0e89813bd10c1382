// The supervisor console: live calls of one tenant; listen, whisper, take over, hand back.
"use strict";
(function () {
  const { $, el, clock, waitIce, preferCodec, meter, postJSON, CallView } = window.DB;
  const view = new CallView($("#view"));
  // Read by the browser tests.
  const state = window.supervisor = { tenant: null, calls: [], watching: null, listening: false, takenOver: false, listen: { peak: 0, loud: 0 }, events: [], errors: [],
                                      viewing: null, history: null, ended: [], controls: { mode: "", by: "" }, network: null, levels: 0, policy: null, exported: null };
  let auth = null, ws = null, listenPc = null, listenId = null, stopMeter = null, takePc = null, takeMic = null, retry = null;
  let clockSkew = 0;  // the browser's clock minus the server's (ms), from each call list

  const headers = () => ({ Authorization: `Bearer ${auth.token}`, "X-Supervisor-Name": auth.name });
  function error(msg) { $("#error").textContent = msg || ""; if (msg) state.errors.push(msg); }
  function notice(msg) { $("#notice").textContent = msg || ""; }
  function link(text, cls) { const l = $("#link"); l.textContent = text; l.className = `pill ${cls || ""}`; }

  // ---- sign-in ---------------------------------------------------------------------------------
  async function login(token, name) {
    const me = await postJSON("/supervisor/api/login", { token, name });
    auth = { token, name: me.name, tenant: me.tenant, actor: me.actor };
    sessionStorage.setItem("duplexbot.supervisor", JSON.stringify({ token, name }));
    state.tenant = me.tenant;
    $("#tenant").textContent = me.tenant;
    $("#who").textContent = me.actor;
    for (const id of ["#who", "#logout", "#console"]) $(id).classList.remove("hidden");
    $("#login").classList.add("hidden");
    connect();
  }

  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#login-error").textContent = "";
    try { await login($("#token").value.trim(), $("#name").value.trim()); }
    catch (e) { $("#login-error").textContent = e.status === 401 ? "This token is not valid." : `Sign-in failed: ${e.message}`; }
  });

  $("#logout").addEventListener("click", () => {
    sessionStorage.removeItem("duplexbot.supervisor");
    location.reload();
  });

  // ---- live calls over the WebSocket -----------------------------------------------------------
  function connect() {
    clearTimeout(retry);
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/supervisor/ws`);
    link("Connecting…", "wait");
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: auth.token, name: auth.name }));
    ws.onmessage = (m) => onMessage(JSON.parse(m.data));
    ws.onclose = (ev) => {
      link("Offline", "bad");
      if (ev.code !== 4401) retry = setTimeout(connect, 2000);
    };
  }

  function onMessage(m) {
    switch (m.type) {
      case "hello": link("Live", "live"); if (state.watching) watch(state.watching); loadHistory().catch(() => {}); break;
      case "calls": if (typeof m.now === "number") clockSkew = Date.now() - m.now; renderCalls(m.calls); break;
      case "watching":
        view.reset();
        if (view.chart) view.chart.setLive(true);
        view.levelSeries(m.levels);
        for (const e of m.backlog || []) { state.events.push(e); view.handle(e); }
        renderControls(m.controls);
        break;
      case "levels": if (m.call_id === state.watching) { state.levels++; view.levels(m); } break;
      case "network": if (m.call_id === state.watching) { renderNetwork(m.network); renderControls(m.controls); } break;
      case "watch_error": error(m.status === 403 ? "You cannot open this call: it belongs to another tenant." : m.error); break;
      case "event":
        if (m.call_id === state.watching) { state.events.push(m.event); view.handle(m.event); if (m.event.type === "call_ended") callEnded(); }
        break;
      case "error": link("Unauthorized", "bad"); break;
      default: break;
    }
  }

  function renderCalls(calls) {
    state.calls = calls;
    const body = $("#calls");
    body.replaceChildren();
    $("#no-calls").classList.toggle("hidden", calls.length > 0);
    $("#count").textContent = `${calls.length} live`;
    for (const c of calls) {
      const badges = [];
      if (c.listeners > 0) badges.push(el("span", { class: "tag speech", text: `${c.listeners} listening` }));
      if (c.taken_over_by) badges.push(el("span", { class: "tag sup", text: `taken over by ${c.taken_over_by}` }));
      const open = el("button", { type: "button", text: "Open", "aria-label": `Open call ${c.call_id}` });
      open.addEventListener("click", () => watch(c.call_id));
      const tr = el("tr", { class: c.call_id === state.watching ? "selected" : "", "data-call": c.call_id },
        el("td", {}, el("div", { text: c.caller || "unknown caller" }), el("div", { class: "mono muted", text: c.call_id }),
          el("div", { class: "muted", text: `${c.transport}${c.worker ? " · " + c.worker : ""}` }), el("div", {}, ...badges)),
        el("td", { class: "mono age", "data-started": String(c.started || ""), text: age(c.started) }),
        el("td", {}, open));
      body.append(tr);
    }
  }

  // the Time column ticks between call list updates (they come only when the list changes)
  function age(started) {
    return started ? clock(Math.max(0, (Date.now() - clockSkew - Number(started)) / 1000)).replace(/\.\d$/, "") : "";
  }
  setInterval(() => { for (const td of document.querySelectorAll("#calls td.age")) td.textContent = age(td.dataset.started); }, 1000);

  // ---- one call ----------------------------------------------------------------------------------
  function watch(callId) {
    if (state.watching !== callId) { stopListening(); }
    state.watching = callId; state.events = []; state.viewing = null; state.history = null;
    error(""); notice("");
    $("#live-only").classList.remove("hidden");
    $("#ended-only").classList.add("hidden");
    $("#audit-box").classList.add("hidden");
    $("#network").replaceChildren(el("p", { class: "empty", text: "No figures yet." }));
    loadPolicy().catch((e) => error(`Could not read the policy: ${e.message}`));
    $("#d-call").textContent = callId;
    $("#d-none").classList.add("hidden");
    $("#d-body").classList.remove("hidden");
    const c = state.calls.find((x) => x.call_id === callId);
    $("#d-meta").textContent = c ? `${c.transport} · ${c.caller || ""}` : "";
    for (const tr of document.querySelectorAll("#calls tr")) tr.classList.toggle("selected", tr.dataset.call === callId);
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "watch", call_id: callId }));
  }

  function callEnded() {
    notice("The call has ended.");
    setTimeout(() => loadHistory().catch(() => {}), 1500);
    $("#d-meta").textContent = `${$("#d-meta").textContent} · ended`;
    stopListening(true);
    endTakeover(true);
  }

  async function listen(callId) {
    error("");
    const pc = new RTCPeerConnection({ iceServers: [] });
    preferCodec(pc.addTransceiver("audio", { direction: "recvonly" }), "opus");
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      $("#listen-audio").srcObject = stream;
      stopMeter = meter(stream, $("#listen-bar"), state.listen);
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitIce(pc);
      const ans = await postJSON(`/supervisor/api/calls/${encodeURIComponent(callId)}/listen`, { type: "offer", sdp: pc.localDescription.sdp }, headers());
      await pc.setRemoteDescription({ type: "answer", sdp: ans.sdp });
      listenPc = pc; listenId = ans.listener_id;
      state.listening = true;
      $("#listen").textContent = "Stop listening";
      return ans;
    } catch (e) {
      pc.close();
      error(e.status === 403 ? "You cannot listen to this call: it belongs to another tenant." : `Listen failed: ${e.message}`);
      throw e;
    }
  }

  function stopListening(quiet) {
    if (stopMeter) { stopMeter(); stopMeter = null; }
    if (listenId && !quiet) fetch(`/supervisor/api/listeners/${listenId}`, { method: "DELETE", headers: headers() });
    if (listenPc) listenPc.close();
    listenPc = null; listenId = null; state.listening = false;
    $("#listen").textContent = "Listen";
  }

  $("#listen").addEventListener("click", () => { if (state.listening) stopListening(); else if (state.watching) listen(state.watching).catch(() => {}); });

  $("#whisper-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("#whisper").value.trim();
    if (!text || !state.watching) return;
    error(""); notice("");
    try {
      const r = await postJSON(`/supervisor/api/calls/${encodeURIComponent(state.watching)}/whisper`, { text }, headers());
      view.say("supervisor", `(whisper) ${text}`, view.callTime());
      view.mark(null, "sup", "Whisper", `${auth.actor}: ${text}`);
      $("#whisper").value = "";
      notice(`Whisper sent: ${r.effect || "the bot takes it into its next answer"}. The caller does not hear the whisper itself.`);
    } catch (e) {
      if (e.status === 422) { error(e.message); view.mark(null, "sup", "Whisper refused", `${auth.actor}: ${text}`); }
      else error(`Whisper failed: ${e.message}`);
    }
  });

  async function takeOver(callId) {
    error("");
    takeMic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    const pc = new RTCPeerConnection({ iceServers: [] });
    preferCodec(pc.addTransceiver(takeMic.getAudioTracks()[0], { direction: "sendonly", streams: [takeMic] }), "opus");
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitIce(pc);
      const ans = await postJSON(`/supervisor/api/calls/${encodeURIComponent(callId)}/takeover`, { type: "offer", sdp: pc.localDescription.sdp }, headers());
      await pc.setRemoteDescription({ type: "answer", sdp: ans.sdp });
      takePc = pc; state.takenOver = true;
      $("#takeover").textContent = "Hand back to the bot";
      $("#takeover").classList.add("danger");
      $("#takeover-state").classList.remove("hidden");
      view.mark(null, "sup", "Take-over", `${auth.actor} is speaking; the bot is silent`);
    } catch (e) {
      pc.close(); takeMic.getTracks().forEach((t) => t.stop()); takeMic = null;
      error(`Take-over failed: ${e.message}`);
      throw e;
    }
  }

  async function handBack(callId) {
    try { await postJSON(`/supervisor/api/calls/${encodeURIComponent(callId)}/handback`, {}, headers()); }
    catch (e) { if (e.status !== 404) error(`Hand-back failed: ${e.message}`); }
    endTakeover(false);
    view.mark(null, "sup", "Hand-back", "the bot has the call again");
  }

  function endTakeover() {
    if (takePc) takePc.close();
    if (takeMic) takeMic.getTracks().forEach((t) => t.stop());
    takePc = null; takeMic = null; state.takenOver = false;
    $("#takeover").textContent = "Take over";
    $("#takeover").classList.remove("danger");
    $("#takeover-state").classList.add("hidden");
  }

  $("#takeover").addEventListener("click", () => {
    if (!state.watching) return;
    if (state.takenOver) handBack(state.watching); else takeOver(state.watching).catch(() => {});
  });

  // ---- controls: mute, hold, transfer, the tenant's barge-in policy ------------------------------
  async function api(method, url, body) {
    const r = await fetch(url, { method, headers: { ...headers(), ...(body ? { "Content-Type": "application/json" } : {}) },
                                 body: body ? JSON.stringify(body) : undefined });
    let data = null;
    try { data = await r.json(); } catch (e) { data = { error: r.statusText }; }
    if (!r.ok) { const err = new Error((data && data.error) || `HTTP ${r.status}`); err.status = r.status; throw err; }
    return data;
  }
  const enc = encodeURIComponent;

  function renderControls(c) {
    state.controls = c || { mode: "", by: "" };
    const mode = state.controls.mode, m = $("#mute"), h = $("#hold");
    m.textContent = mode === "mute" ? "Unmute the bot" : "Mute the bot";
    h.textContent = mode === "hold" ? "Resume" : "Hold";
    m.classList.toggle("on", mode === "mute"); h.classList.toggle("on", mode === "hold");
    m.setAttribute("aria-pressed", String(mode === "mute")); h.setAttribute("aria-pressed", String(mode === "hold"));
    m.disabled = mode === "hold"; h.disabled = mode === "mute";
  }

  async function control(kind, on) {
    error("");
    const callId = state.watching;
    try {
      const r = await postJSON(`/supervisor/api/calls/${enc(callId)}/${kind}`, { on }, headers());
      renderControls(r);
      return r;
    } catch (e) { error(`${kind === "mute" ? "Mute" : "Hold"} failed: ${e.message}`); throw e; }
  }
  $("#mute").addEventListener("click", () => { if (state.watching) control("mute", state.controls.mode !== "mute").catch(() => {}); });
  $("#hold").addEventListener("click", () => { if (state.watching) control("hold", state.controls.mode !== "hold").catch(() => {}); });

  $("#transfer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const target = $("#transfer-to").value.trim();
    if (!target || !state.watching) return;
    error(""); notice("");
    try { await postJSON(`/supervisor/api/calls/${enc(state.watching)}/transfer`, { target }, headers()); notice(`Transferred to ${target}.`); }
    catch (e) { error(`Transfer failed: ${e.message}`); }
  });

  function showPolicy(p) {
    state.policy = p;
    $("#sensitivity").value = String(p.policy.interruption_sensitivity);
    $("#sensitivity-v").textContent = Number(p.policy.interruption_sensitivity).toFixed(2);
    $("#eot").value = p.policy.end_of_turn;
  }
  async function loadPolicy() { showPolicy(await api("GET", "/supervisor/api/policy")); }
  $("#sensitivity").addEventListener("input", () => { $("#sensitivity-v").textContent = Number($("#sensitivity").value).toFixed(2); });
  async function setPolicy(changes) {
    error(""); notice("");
    try {
      const r = await api("PUT", "/supervisor/api/policy", { ...changes, ...(state.watching ? { call_id: state.watching } : {}) });
      showPolicy(r);
      notice(r.changed ? `Policy of ${state.tenant} changed: ${r.changed}. Every live call of the tenant follows it within a second.` : "The policy is unchanged.");
      return r;
    } catch (e) { error(`Policy not changed: ${e.message}`); throw e; }
  }
  $("#policy-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setPolicy({ interruption_sensitivity: Number($("#sensitivity").value), end_of_turn: $("#eot").value }).catch(() => {});
  });

  function renderNetwork(n) {
    state.network = n;
    if (!n || !n.available) { $("#network").replaceChildren(el("p", { class: "empty", text: (n && n.why) || "No figures yet." })); return; }
    const msv = (v) => (v == null ? "—" : String(Math.round(v * 1000))), pc100 = (v) => (v == null ? "—" : (v * 100).toFixed(1));
    const card = (k, v, unit, note, key) => el("div", { class: "stat", "data-net": key }, el("div", { class: "k", text: k }),
      el("div", { class: "v" }, document.createTextNode(v), v === "—" ? null : el("small", { text: unit })), el("div", { class: "n", text: note }));
    $("#network").replaceChildren(
      card("Jitter", msv(n.jitter), "ms", "caller → bot", "jitter"),
      card("Loss", pc100(n.loss), "%", n.lost_in != null ? `${n.lost_in} lost · ${n.packets_in} received` : "caller → bot", "loss"),
      card("Round trip", msv(n.rtt), "ms", n.rtt == null ? (n.rtt_why || "no RTCP report yet") : n.source, "rtt"));
  }

  // ---- ended calls: history, audit trail, export --------------------------------------------------
  async function loadHistory() {
    const r = await api("GET", "/supervisor/api/history?limit=50");
    state.ended = r.calls;
    const body = $("#history");
    body.replaceChildren();
    $("#no-history").classList.toggle("hidden", r.calls.length > 0);
    for (const c of r.calls) {
      const open = el("button", { type: "button", text: "Open", "aria-label": `Open ended call ${c.call_id}` });
      open.addEventListener("click", () => openEnded(c.call_id).catch((e) => error(`Could not open the call: ${e.message}`)));
      body.append(el("tr", { class: c.call_id === state.viewing ? "selected" : "", "data-call": c.call_id },
        el("td", {}, el("div", { text: c.caller || "unknown caller" }), el("div", { class: "mono muted", text: c.call_id }),
          el("div", { class: "muted", text: `${c.transport} · ${new Date(c.started).toLocaleString()}` })),
        el("td", { class: "mono", text: c.seconds != null ? clock(c.seconds).replace(/\.\d$/, "") : "" }), el("td", {}, open)));
    }
    return r.calls;
  }
  $("#history-refresh").addEventListener("click", () => loadHistory().catch((e) => error(e.message)));

  async function openEnded(callId) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "unwatch" }));
    stopListening(); if (state.takenOver) endTakeover();
    const h = await api("GET", `/supervisor/api/history/${enc(callId)}`);
    state.watching = null; state.viewing = callId; state.history = h; state.events = [];
    error(""); notice("");
    $("#d-call").textContent = callId;
    $("#d-meta").textContent = `${h.call.transport} · ${h.call.caller || ""} · ended${h.call.seconds != null ? ` after ${clock(h.call.seconds).replace(/\.\d$/, "")}` : ""}`;
    $("#d-none").classList.add("hidden"); $("#d-body").classList.remove("hidden");
    $("#live-only").classList.add("hidden"); $("#ended-only").classList.remove("hidden");
    for (const tr of document.querySelectorAll("#calls tr, #history tr")) tr.classList.toggle("selected", tr.dataset.call === callId);
    view.reset();
    if (view.chart) view.chart.setLive(false);
    view.levelSeries(h.levels);
    for (const e of h.events) { state.events.push(e); view.handle(e); }
    $("#recording-note").textContent = h.levels ? `Recording: ${h.recording.why}.` : `Recording: ${h.recording.why}. Levels are kept only by the worker that had the call.`;
    $("#audit").replaceChildren(...(h.audit.length ? h.audit.map((a) => el("li", {},
      el("span", { class: "mono", text: new Date(a.ts).toLocaleTimeString() }), document.createTextNode(` ${a.action} by ${a.actor}${a.detail ? `: ${a.detail}` : ""}`)))
      : [el("li", { class: "empty", text: "No supervisor actions on this call." })]));
    $("#audit-box").classList.remove("hidden");
    $("#network").replaceChildren(el("p", { class: "empty", text: "Network figures are shown while a call is live." }));
    return h;
  }

  $("#export").addEventListener("click", async () => {
    if (!state.viewing) return;
    const r = await fetch(`/supervisor/api/history/${enc(state.viewing)}/export`, { headers: headers() });
    if (!r.ok) { error(`Export failed: ${(await r.json()).error}`); return; }
    const text = await r.text();
    state.exported = text;
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/json" })), download: `call-${state.viewing}.json` });
    document.body.append(a); a.click(); a.remove();
  });

  // for the browser tests and power users: the same actions as the buttons
  Object.assign(state, { login, watch, listen, stopListening, takeOver, handBack, control, setPolicy, loadPolicy, loadHistory, openEnded });

  const saved = sessionStorage.getItem("duplexbot.supervisor");
  if (saved) { const s = JSON.parse(saved); login(s.token, s.name).catch(() => sessionStorage.removeItem("duplexbot.supervisor")); }
})();
