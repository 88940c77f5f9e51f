// The talk page: joins the room with the LiveKit JavaScript client, publishes the microphone,
// plays the agent and shows what livekit-agents publishes for any LiveKit client: the
// transcripts of both sides (text streams on "lk.transcription"; the agent's is released in
// step with its audio and ends where a barge-in cut it), the agent's state (the agent
// participant's "lk.agent.state" attribute), and typed messages go to the agent on "lk.chat".
// The per-turn latency row joins what this page can time itself (you went quiet → Arc became
// audible) with the stage timings the worker sends on the "arc.turn_metrics" text stream.
//
// Tokens and timings need the service's API key. The link `make run` prints carries it after
// `#key=`: a fragment never reaches a server or its logs; the page keeps it for this tab only.
(function () {
  const { Room, RoomEvent, Track, ParticipantKind } = LivekitClient;
  const $ = (id) => document.getElementById(id);
  const AGENT_STATE = "lk.agent.state";
  const RECORDING = "arc.recording";
  const AGENT_JOIN_TIMEOUT_MS = 10000;
  // A level over this (dBFS, 20 ms blocks) counts as someone speaking; a microphone's floor
  // sits near -60, speech well over -40.
  const SPEECH_DB = -45;

  let room = null;
  let muted = false;
  let timers = [];
  const lines = new Map(); // segment id → transcript <li>
  const turns = new Map(); // turn id → latency <tr>
  const heardMs = []; // page-timed replies ("612 ms", or "typed") not yet matched with a turn

  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("key")) {
    sessionStorage.setItem("arc-api-key", fragment.get("key"));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  const apiKey = sessionStorage.getItem("arc-api-key");

  // For people and for automated checks alike.
  window.arcStates = [];
  window.arcAgentPeakDb = -120;

  function log(text) {
    const item = document.createElement("li");
    item.textContent = new Date().toLocaleTimeString() + " " + text;
    $("log").appendChild(item);
  }

  function problem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
    if (text) log(text);
  }

  function setState(state) {
    $("state").textContent = state;
    document.body.dataset.state = state;
    if (window.arcStates[window.arcStates.length - 1] !== state) window.arcStates.push(state);
  }

  function isAgent(participant) {
    return participant.kind === ParticipantKind.AGENT || participant.identity.startsWith("arc-agent");
  }

  function readAgent(participant) {
    const attributes = participant.attributes || {};
    if (attributes[AGENT_STATE]) setState(attributes[AGENT_STATE]);
    $("recording").hidden = attributes[RECORDING] !== "on";
  }

  function line(id, role, text, final) {
    let item = lines.get(id);
    if (!item) {
      item = document.createElement("li");
      item.dataset.role = role;
      lines.set(id, item);
      $("transcript").appendChild(item);
    }
    item.textContent = text;
    item.dataset.final = String(final);
    $("transcript").scrollTop = $("transcript").scrollHeight;
    return item;
  }

  function localTrackSids() {
    const sids = new Set();
    if (room) room.localParticipant.trackPublications.forEach((p) => sids.add(p.trackSid));
    return sids;
  }

  async function onTranscription(reader) {
    const attributes = reader.info.attributes || {};
    const segment = attributes["lk.segment_id"] || reader.info.id;
    const track = attributes["lk.transcribed_track_id"];
    const role = localTrackSids().has(track) ? "user" : "agent";
    if (role === "agent" && track && !agentTrackIsMine(track)) return; // another person's talk
    let text = "";
    for await (const chunk of reader) {
      text += chunk;
      line(segment, role, text, false);
    }
    line(segment, role, text, role === "agent" || attributes["lk.transcription_final"] === "true");
  }

  // Several people can share a room; the agent answers each on a track named for them, and
  // transcribes each person's microphone: only this person's lines belong on this page.
  function agentTrackIsMine(trackSid) {
    if (!room) return false;
    for (const participant of room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        if (publication.trackSid === trackSid) {
          return !isAgent(participant) ? false
            : publication.trackName === "arc-agent-for-" + room.localParticipant.identity;
        }
      }
    }
    return true; // not published yet (the first words can race the track): keep them
  }

  // Levels: the microphone meter, the agent visualizer, and the page's own reply timing.
  let lastUserLoud = 0;
  let lastTyped = 0;
  let lastAgentLoud = 0;
  let agentAudible = false;

  function levelOf(analyser, samples) {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const v of samples) sum += v * v;
    return 10 * Math.log10(sum / samples.length + 1e-12);
  }

  function analyse(mediaStreamTrack) {
    const context = new AudioContext();
    const source = context.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    return { context, analyser, samples: new Float32Array(analyser.fftSize) };
  }

  function watchMicrophone(mediaStreamTrack) {
    const { analyser, samples } = analyse(mediaStreamTrack);
    timers.push(setInterval(() => {
      const db = muted ? -120 : levelOf(analyser, samples);
      $("mic-level").value = Math.max(0, Math.min(1, (db + 70) / 60));
      // The agent's own voice can come back through the microphone: only count the person
      // while the agent is quiet.
      if (db > SPEECH_DB && !agentAudible) lastUserLoud = performance.now();
    }, 20));
  }

  function watchAgent(mediaStreamTrack) {
    const { analyser, samples } = analyse(mediaStreamTrack);
    const canvas = $("agent-visualizer");
    const draw = canvas.getContext("2d");
    const bins = new Uint8Array(analyser.frequencyBinCount);
    timers.push(setInterval(() => {
      const db = levelOf(analyser, samples);
      window.arcAgentPeakDb = Math.max(window.arcAgentPeakDb, db);
      const now = performance.now();
      if (db > SPEECH_DB) {
        if (!agentAudible && Math.max(lastUserLoud, lastTyped) > lastAgentLoud) {
          // A typed question has no end of speech to time from: its row says so.
          heardMs.push(lastTyped > lastUserLoud ? "typed" : Math.round(now - lastUserLoud) + " ms");
          matchHeard();
        }
        agentAudible = true;
        lastAgentLoud = now;
      } else if (now - lastAgentLoud > 300) {
        agentAudible = false;
      }
      analyser.getByteFrequencyData(bins);
      draw.clearRect(0, 0, canvas.width, canvas.height);
      const bars = 24;
      const width = canvas.width / bars;
      for (let i = 0; i < bars; i++) {
        const value = bins[Math.floor((i * bins.length) / bars / 2)] / 255;
        draw.fillStyle = "#2563eb";
        draw.fillRect(i * width + 1, canvas.height * (1 - value), width - 2, canvas.height * value);
      }
    }, 20));
  }

  // Latency rows: one per turn the agent answered, as its timings arrive from the worker
  // serving the room (text stream "arc.turn_metrics"), newest last.
  const ms = (value) => (value === null || value === undefined ? "—" : Math.round(value) + " ms");

  async function onTurnMetrics(reader) {
    const turn = JSON.parse(await reader.readAll());
    if (turns.has(turn.turn_id)) return;
    const row = document.createElement("tr");
    row.dataset.turn = turn.turn_id;
    row.innerHTML = "<td></td><td class='heard'>—</td><td></td><td></td><td></td><td></td>";
    row.cells[0].textContent = String(turns.size + 1) + (turn.interrupted ? " (cut)" : "");
    row.cells[2].textContent = ms(turn.stt_ms);
    row.cells[3].textContent = ms(turn.end_of_speech_ms);
    row.cells[4].textContent = ms(turn.brain_first_delta_ms);
    row.cells[5].textContent = ms(turn.tts_first_chunk_ms);
    turns.set(turn.turn_id, row);
    $("latency").tBodies[0].appendChild(row);
    matchHeard();
  }

  // Replies the page heard, oldest first, go to the rows that have no figure yet.
  function matchHeard() {
    for (const row of turns.values()) {
      if (row.cells[1].textContent === "—" && heardMs.length) {
        row.cells[1].textContent = heardMs.shift();
      }
    }
  }

  $("identity").value = "guest-" + Math.random().toString(36).slice(2, 8);

  function connected(yes) {
    $("join").disabled = yes;
    $("leave").disabled = !yes;
    $("mute").disabled = !yes;
    $("message").disabled = !yes;
    $("send").disabled = !yes;
  }

  async function join() {
    problem("");
    connected(true);
    $("leave").disabled = true;
    if (!apiKey) {
      problem("This page needs its key: open the link `make run` printed (it ends in #key=…).");
      setState("error");
      connected(false);
      return;
    }
    let body;
    try {
      const params = new URLSearchParams({ room: $("room").value, identity: $("identity").value });
      let answer;
      try {
        answer = await fetch("/token?" + params, { headers: { authorization: "Bearer " + apiKey } });
      } catch (error) {
        throw new Error("Cannot reach the Arc voice server at " + location.origin
          + ": is `make run` still running?");
      }
      body = await answer.json().catch(() => ({}));
      if (!answer.ok) throw new Error(body.error ? body.error.message : answer.statusText);
      room = new Room({ adaptiveStream: true });
      room.registerTextStreamHandler("lk.transcription", (reader) => {
        onTranscription(reader).catch((error) => log("transcript: " + error.message));
      });
      room.registerTextStreamHandler("arc.turn_metrics", (reader) => {
        onTurnMetrics(reader).catch((error) => log("timings: " + error.message));
      });
      room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => {
        if (track.kind !== Track.Kind.Audio || !isAgent(participant)) return;
        if (publication.trackName !== "arc-agent-for-" + room.localParticipant.identity) return;
        const element = track.attach();
        element.id = "agent-audio-" + publication.trackSid;
        document.body.appendChild(element);
        log("hearing " + participant.identity);
        watchAgent(track.mediaStreamTrack);
      });
      room.on(RoomEvent.ParticipantConnected, (participant) => {
        if (isAgent(participant)) readAgent(participant);
      });
      room.on(RoomEvent.ParticipantAttributesChanged, (changed, participant) => {
        if (isAgent(participant)) readAgent(participant);
      });
      room.on(RoomEvent.Disconnected, () => {
        setState("not connected");
        connected(false);
      });
      try {
        await room.connect(body.url, body.token);
      } catch (error) {
        throw new Error("Cannot reach the LiveKit server at " + body.url + ": " + error.message);
      }
    } catch (error) {
      problem(error.message);
      setState("error");
      room = null;
      connected(false);
      return;
    }
    log("joined " + body.room + " as " + body.identity);
    setState("connected");
    connected(true);
    for (const participant of room.remoteParticipants.values()) {
      if (isAgent(participant)) readAgent(participant);
    }
    timers.push(setTimeout(() => {
      const here = room && [...room.remoteParticipants.values()].some(isAgent);
      if (room && !here) {
        problem("Arc did not join the room within 10 s: check the voice worker (`make status`).");
      }
    }, AGENT_JOIN_TIMEOUT_MS));
    try {
      await room.localParticipant.setMicrophoneEnabled(true);
      const microphone = room.localParticipant.getTrackPublication(Track.Source.Microphone);
      if (microphone && microphone.track) watchMicrophone(microphone.track.mediaStreamTrack);
    } catch (error) {
      const blocked = error.name === "NotAllowedError" || error.name === "SecurityError";
      problem(blocked
        ? "The microphone is blocked for this page: allow it in the browser's site settings, or type below."
        : "No microphone could be opened (" + error.message + "): you can still type below.");
      $("mute").disabled = true;
    }
  }

  async function leave() {
    timers.forEach((t) => { clearInterval(t); clearTimeout(t); });
    timers = [];
    if (room) await room.disconnect();
    room = null;
    connected(false);
  }

  $("join").onclick = join;
  $("leave").onclick = leave;

  $("mute").onclick = async () => {
    if (!room) return;
    muted = !muted;
    await room.localParticipant.setMicrophoneEnabled(!muted);
    $("mute").textContent = muted ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(muted));
  };

  $("chat").onsubmit = async (event) => {
    event.preventDefault();
    const text = $("message").value.trim();
    if (!room || !text) return;
    $("message").value = "";
    line("typed-" + Date.now(), "user", text, true);
    lastTyped = performance.now();
    try {
      await room.localParticipant.sendText(text, { topic: "lk.chat" });
    } catch (error) {
      problem("Your message was not sent: " + error.message);
    }
  };
})();
