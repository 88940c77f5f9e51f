// The sessions console: a table of past sessions (GET /v1/sessions), and one session's view
// (GET /v1/sessions/{id}): its recording in an <audio> player whose position highlights the
// transcript line being heard, each turn's latency as stacked bars, the summary and the
// sentiment label, export and delete. A session someone came back to has a recording part per
// conversation: the player plays them one after the other, and a line plays its own part.
//
// Every API call needs the service's key. As on the talk page, the link carries it after
// `#key=` (a fragment never reaches a server or its logs) and the page keeps it for this tab
// only. An <audio src> cannot carry an Authorization header and the key must never go into a
// URL, so the recording is fetched with the key and played from a blob URL; range requests
// are there for players and tools that can send the key themselves.
(function () {
  const $ = (id) => document.getElementById(id);
  const STAGES = ["end_of_speech_ms", "stt_ms", "brain_first_delta_ms", "tts_first_chunk_ms",
    "transport_ms"];

  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("key")) {
    sessionStorage.setItem("arc-api-key", fragment.get("key"));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  const apiKey = sessionStorage.getItem("arc-api-key");
  let current = null; // the session on show
  let partUrls = new Map(); // part → blob URL, fetched once per session shown
  let playing = 0; // the part in the player

  // For automated checks.
  window.arcSessions = { loaded: 0, shown: null, highlighted: null, part: null };

  function problem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
  }

  async function api(path, options = {}) {
    const headers = { authorization: "Bearer " + apiKey, ...(options.headers || {}) };
    const answer = await fetch(path, { ...options, headers });
    if (!answer.ok) {
      let message = answer.status + " " + answer.statusText;
      try {
        const body = await answer.json();
        if (body.error) message = body.error.code + ": " + body.error.message;
      } catch (_) { /* not the contract's body */ }
      throw new Error(message);
    }
    return answer;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "—";
  }

  function clock(ms) {
    const s = Math.floor(ms / 1000);
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  function length(ms) {
    return ms == null ? "—" : clock(ms);
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "—" : String(text);
    row.appendChild(td);
  }

  // The newest list asked for: an older answer arriving after it must not replace it (the
  // page's first, unfiltered list overwrote a filtered one on a loaded CI box).
  let listing = 0;

  async function loadList(event) {
    if (event) event.preventDefault();
    const mine = ++listing;
    const params = new URLSearchParams();
    const form = new FormData($("filters"));
    for (const [name, value] of form.entries()) {
      if (!value) continue;
      // datetime-local has no zone: it is the viewer's local time.
      params.set(name, name === "since" || name === "until" ? new Date(value).toISOString() : value);
    }
    try {
      const body = await (await api("/v1/sessions?" + params)).json();
      if (mine !== listing) return;
      const tbody = document.querySelector("#sessions tbody");
      tbody.replaceChildren();
      for (const s of body.sessions) {
        const row = document.createElement("tr");
        row.dataset.sessionId = s.session_id;
        cell(row, when(s.started_at));
        cell(row, s.user_id);
        cell(row, s.room);
        cell(row, s.status);
        cell(row, s.turns);
        cell(row, length(s.duration_ms));
        cell(row, s.has_recording ? "yes" : "no");
        row.addEventListener("click", () => show(s.session_id));
        tbody.appendChild(row);
      }
      window.arcSessions.loaded = body.sessions.length;
      problem("");
    } catch (err) {
      if (mine !== listing) return;
      problem("Could not list sessions: " + err.message);
    }
  }

  async function show(sessionId) {
    try {
      const view = await (await api("/v1/sessions/" + encodeURIComponent(sessionId))).json();
      current = view;
      for (const row of document.querySelectorAll("#sessions tbody tr")) {
        row.classList.toggle("selected", row.dataset.sessionId === sessionId);
      }
      $("session").hidden = false;
      $("session-title").textContent = "Session " + view.session_id;
      $("session-meta").textContent = [
        "user " + (view.user_id || "—"), "room " + (view.room || "—"), view.status,
        "started " + when(view.started_at), "length " + length(view.duration_ms),
      ].join(" · ");
      $("summary").textContent = view.summary;
      const badge = $("sentiment");
      badge.textContent = view.sentiment.label + " (" + view.sentiment.score.toFixed(2) + ")";
      badge.className = "badge " + view.sentiment.label;
      renderTranscript(view.transcript);
      renderLatency(view.turn_timings);
      await loadAudio(view);
      window.arcSessions.shown = sessionId;
      problem("");
    } catch (err) {
      problem("Could not open session " + sessionId + ": " + err.message);
    }
  }

  function renderTranscript(lines) {
    const list = $("transcript");
    list.replaceChildren();
    for (const line of lines) {
      const item = document.createElement("li");
      item.className = line.role + (line.interrupted ? " interrupted" : "");
      item.dataset.offsetMs = line.offset_ms;
      item.dataset.part = line.part ?? "";
      const stamp = document.createElement("span");
      stamp.className = "when";
      const several = current.recordings.length > 1 && line.part != null;
      stamp.textContent = (several ? "#" + (line.part + 1) + " " : "") + clock(line.offset_ms);
      if (several) stamp.title = "conversation " + (line.part + 1) + " of the session";
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = (line.role === "user" ? "Person" : "Arc") + ": ";
      item.append(stamp, who, document.createTextNode(line.content));
      // Clicking a line plays from it, in its own part.
      item.addEventListener("click", async () => {
        if ($("audio-box").hidden || line.part == null) return;
        if (line.part !== playing && !(await playPart(line.part))) return;
        const audio = $("audio");
        audio.currentTime = line.offset_ms / 1000;
        audio.play().catch(() => {});
      });
      list.appendChild(item);
    }
  }

  // The line being heard: the last one of the part playing whose offset is at or before the
  // player's position.
  function highlight() {
    const ms = $("audio").currentTime * 1000;
    let found = null;
    for (const item of $("transcript").children) {
      if (item.dataset.part !== String(playing)) continue;
      if (Number(item.dataset.offsetMs) <= ms) found = item;
    }
    for (const item of $("transcript").children) item.classList.toggle("current", item === found);
    window.arcSessions.highlighted = found ? Array.from(found.parentNode.children).indexOf(found) : null;
  }

  function renderLatency(timings) {
    const box = $("latency");
    box.replaceChildren();
    const totals = timings.map((t) =>
      t.voice_to_voice_ms ?? STAGES.reduce((sum, k) => sum + (t[k] || 0), 0));
    const widest = Math.max(1, ...totals);
    if (!timings.length) {
      box.textContent = "No turn timings recorded for this session.";
      return;
    }
    timings.forEach((t, i) => {
      const row = document.createElement("div");
      row.className = "turn";
      const label = document.createElement("span");
      label.textContent = "turn " + (i + 1);
      label.title = t.turn_id;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = (100 * totals[i] / widest).toFixed(1) + "%";
      for (const stage of STAGES) {
        if (!t[stage]) continue;
        const part = document.createElement("span");
        part.className = "stage " + stage;
        part.style.width = (100 * t[stage] / totals[i]).toFixed(1) + "%";
        part.title = stage.replace(/_ms$/, "").replaceAll("_", " ") + ": " + Math.round(t[stage]) + " ms";
        bar.appendChild(part);
      }
      const ms = document.createElement("span");
      ms.className = "ms";
      ms.textContent = Math.round(totals[i]) + " ms";
      row.append(label, bar, ms);
      box.appendChild(row);
    });
  }

  async function loadAudio(view) {
    const audio = $("audio");
    for (const url of partUrls.values()) URL.revokeObjectURL(url);
    partUrls = new Map();
    audio.removeAttribute("src");
    $("audio-box").hidden = true;
    $("parts").replaceChildren();
    window.arcSessions.part = null;
    if (!view.recordings.length) return;
    if (view.recordings.length > 1) {
      view.recordings.forEach((r) => {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.part = r.part;
        button.textContent = "Conversation " + (r.part + 1) + " (" + length(r.duration_ms) + ")";
        button.addEventListener("click", () => playPart(r.part));
        $("parts").appendChild(button);
      });
    }
    if (await playPart(0, false)) $("audio-box").hidden = false;
  }

  // Puts part `n` of the session on show into the player (fetched with the key, once); true
  // when it is there.
  async function playPart(n, autoplay = true) {
    const view = current;
    try {
      if (!partUrls.has(n)) {
        const path = "/v1/sessions/" + encodeURIComponent(view.session_id) + "/recording?part=" + n;
        const blob = await (await api(path)).blob();
        if (view !== current) return false; // another session was opened meanwhile
        partUrls.set(n, URL.createObjectURL(blob));
      }
      const audio = $("audio");
      playing = n;
      audio.src = partUrls.get(n);
      for (const button of $("parts").children) {
        button.setAttribute("aria-pressed", String(button.dataset.part === String(n)));
      }
      window.arcSessions.part = n;
      if (autoplay) audio.play().catch(() => {});
      highlight();
      return true;
    } catch (err) {
      problem("The recording could not be loaded: " + err.message);
      return false;
    }
  }

  // One part ends: the next conversation's plays on, as one recording would.
  async function playNext() {
    if (current && playing + 1 < current.recordings.length) await playPart(playing + 1);
  }

  async function download(format) {
    if (!current) return;
    try {
      const path = "/v1/sessions/" + encodeURIComponent(current.session_id) + "/export?format=" + format;
      const blob = await (await api(path)).blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = "session-" + current.session_id + (format === "text" ? ".txt" : ".json");
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (err) {
      problem("Export failed: " + err.message);
    }
  }

  async function remove() {
    if (!current) return;
    if (!window.confirm("Delete session " + current.session_id +
      "? Its transcript and recording are removed for good.")) return;
    try {
      const force = current.status === "active" ? "?force=true" : "";
      await api("/v1/sessions/" + encodeURIComponent(current.session_id) + force, { method: "DELETE" });
      current = null;
      $("session").hidden = true;
      await loadList();
    } catch (err) {
      problem("Delete failed: " + err.message);
    }
  }

  $("audio").addEventListener("timeupdate", highlight);
  $("audio").addEventListener("seeked", highlight);
  $("audio").addEventListener("ended", playNext);
  $("filters").addEventListener("submit", loadList);
  $("export-json").addEventListener("click", () => download("json"));
  $("export-text").addEventListener("click", () => download("text"));
  $("delete").addEventListener("click", remove);

  if (!apiKey) {
    problem("This page needs its key: open it with #key=<the API key> (`uv run arc api-key`).");
  } else {
    loadList();
  }
})();
