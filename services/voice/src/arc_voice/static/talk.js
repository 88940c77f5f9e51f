// Joins the room with the LiveKit JavaScript client, publishes the microphone and plays the
// agent's audio. The page's own server (the voice worker) hands out the token and makes the
// agent join the room first.
//
// Tokens need the service's API key. The link `make run` prints carries it after `#key=`:
// a fragment never reaches a server or its logs; the page keeps it for this tab only.
(function () {
  const { Room, RoomEvent, Track } = LivekitClient;
  const $ = (id) => document.getElementById(id);
  let room = null;

  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("key")) {
    sessionStorage.setItem("arc-api-key", fragment.get("key"));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  const apiKey = sessionStorage.getItem("arc-api-key");

  function log(text) {
    const item = document.createElement("li");
    item.textContent = text;
    $("log").appendChild(item);
  }

  function setState(text) {
    $("state").textContent = text;
    document.body.dataset.state = text;
  }

  $("identity").value = "guest-" + Math.random().toString(36).slice(2, 8);

  // How loud the agent is, for the page's own indicator and for automated checks
  // (window.arcAgentPeakDb: loudest 50 ms block so far, in dBFS).
  window.arcAgentPeakDb = -120;
  function watchLevel(track) {
    const context = new AudioContext();
    const source = context.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      const db = 10 * Math.log10(sum / samples.length + 1e-12);
      window.arcAgentPeakDb = Math.max(window.arcAgentPeakDb, db);
      if (db > -45) setState("agent speaking");
    }, 50);
  }

  $("join").onclick = async () => {
    $("join").disabled = true;
    try {
      const params = new URLSearchParams({ room: $("room").value, identity: $("identity").value });
      if (!apiKey) {
        throw new Error("this page needs its key: open the link `make run` printed (it ends in #key=…)");
      }
      const answer = await fetch("/token?" + params, {
        headers: { authorization: "Bearer " + apiKey },
      });
      const body = await answer.json();
      if (!answer.ok) throw new Error(body.error ? body.error.message : answer.statusText);
      room = new Room({ adaptiveStream: true });
      room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => {
        if (track.kind !== Track.Kind.Audio) return;
        const element = track.attach();
        element.id = "agent-audio-" + publication.trackSid;
        document.body.appendChild(element);
        log("hearing " + participant.identity);
        watchLevel(track);
        setState("listening");
      });
      room.on(RoomEvent.Disconnected, () => setState("not connected"));
      await room.connect(body.url, body.token);
      await room.localParticipant.setMicrophoneEnabled(true);
      setState("connected");
      log("joined " + body.room + " as " + body.identity);
      $("leave").disabled = false;
    } catch (error) {
      log("could not join: " + error.message);
      setState("error");
      $("join").disabled = false;
    }
  };

  $("leave").onclick = async () => {
    if (room) await room.disconnect();
    room = null;
    $("leave").disabled = true;
    $("join").disabled = false;
  };
})();
