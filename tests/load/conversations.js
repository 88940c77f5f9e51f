// N concurrent spoken conversations over the voice service's WebSocket (`/v1/voice`,
// docs/websocket.md). Each conversation sends `start`, keeps a microphone open (PCM16 in
// real time, silence between questions, as a real client does), speaks a recorded question,
// waits for the agent's spoken reply to end, and does that TURNS times before `end`.
//
// Metrics (all from the client's clock):
// - voice_to_voice: end of the sent question to the first binary frame of the reply;
// - first_transcript: start of the sent question to its first `transcript` event;
// - final_transcript: end of the sent question to its final `transcript`;
// - reply_starved_ms / reply_underruns: a player that starts each reply JITTER_MS after its
//   first frame runs dry for this long / the share of replies where it ran dry for more than
//   UNDERRUN_TOLERANCE_MS (an audible gap);
// - conversation_errors (a Rate per turn: no reply in REPLY_TIMEOUT_MS, a socket that failed
//   or closed early) and conversation_error_events (the server's `error` events, by code).
//
// Environment: VOICE_URL (ws://127.0.0.1:8083/v1/voice), ARC_API_KEY, QUESTIONS (the
// manifest written by tests/load/questions.py; absolute path), VUS (2) and DURATION (60s) or
// STAGES ("30s:2,60s:4,30s:0"), TURNS (3), TURN_GAP_MS (1000), OUTPUT_SAMPLE_RATE (16000),
// FRAME_MS (20), PACING (realtime), GREETING ("0" asks the agent not to greet), and the
// thresholds P95_VOICE_TO_VOICE_MS (1000), MAX_ERROR_RATE (0.05), MAX_UNDERRUN_RATE (0.1).
import { WebSocket } from 'k6/experimental/websockets';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { apiKey, env, envFloat, envInt, scenario } from './lib/common.js';

const VOICE_URL = env('VOICE_URL', 'ws://127.0.0.1:8083/v1/voice');
const KEY = apiKey();
const TURNS = envInt('TURNS', 3);
const TURN_GAP_MS = envInt('TURN_GAP_MS', 1000);
const SETTLE_MS = envInt('SETTLE_MS', 1500);
const REPLY_TIMEOUT_MS = envInt('REPLY_TIMEOUT_MS', 20000);
const OUTPUT_RATE = envInt('OUTPUT_SAMPLE_RATE', 16000);
const FRAME_MS = envInt('FRAME_MS', 20);
const PACING = env('PACING', 'realtime');
const GREETING = env('GREETING', '');
const JITTER_MS = envInt('JITTER_MS', 100);
const UNDERRUN_TOLERANCE_MS = envInt('UNDERRUN_TOLERANCE_MS', 40);

const QUESTIONS = env('QUESTIONS', '');
if (!QUESTIONS) {
  throw new Error('QUESTIONS is not set: the manifest from `python -m tests.load.questions`');
}
const MANIFEST = JSON.parse(open(QUESTIONS));
const AUDIO_DIR = QUESTIONS.slice(0, QUESTIONS.lastIndexOf('/') + 1);
const INPUT_RATE = MANIFEST.sample_rate;
const FRAME_BYTES = 2 * Math.round((INPUT_RATE * FRAME_MS) / 1000);
const SILENCE = new ArrayBuffer(FRAME_BYTES);

function framesOf(buffer) {
  const frames = [];
  for (let at = 0; at < buffer.byteLength; at += FRAME_BYTES) {
    frames.push(buffer.slice(at, Math.min(at + FRAME_BYTES, buffer.byteLength)));
  }
  return frames;
}

const QUESTION_FRAMES = MANIFEST.questions.map((q) => framesOf(open(AUDIO_DIR + q.file, 'b')));

const voiceToVoice = new Trend('voice_to_voice', true);
const firstTranscript = new Trend('first_transcript', true);
const finalTranscript = new Trend('final_transcript', true);
const serverVoiceToVoice = new Trend('server_voice_to_voice', true);
const starvedMs = new Trend('reply_starved_ms', true);
const underruns = new Rate('reply_underruns');
const conversationErrors = new Rate('conversation_errors');
const errorEvents = new Counter('conversation_error_events');
const turnsOk = new Counter('turns_ok');

export const options = {
  scenarios: {
    conversations: scenario('conversation', { vus: 2, duration: '60s', gracefulStop: '60s' }),
  },
  thresholds: {
    voice_to_voice: [`p(95)<${envInt('P95_VOICE_TO_VOICE_MS', 1000)}`],
    conversation_errors: [`rate<=${envFloat('MAX_ERROR_RATE', 0.05)}`],
    reply_underruns: [`rate<=${envFloat('MAX_UNDERRUN_RATE', 0.1)}`],
    turns_ok: ['count>0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export function conversation() {
  const ws = new WebSocket(VOICE_URL, null, { headers: { authorization: `Bearer ${KEY}` } });
  ws.binaryType = 'arraybuffer';

  // idle → speaking (question frames going out) → waiting (for the reply's first frame) →
  // reply (frames until `audio_end`) → idle; `agentTalking` covers audio outside a turn
  // (the greeting), so a question never starts over the agent.
  let phase = 'idle';
  let agentTalking = false;
  let turnsDone = 0;
  let question = [];
  let next = 0;
  let speechStart = 0;
  let speechEnd = 0;
  let gotTranscript = false;
  let gotFinal = false;
  let micStart = 0;
  let micSent = 0;
  let mic = null;
  let replyTimer = null;
  let settleTimer = null;
  let playhead = 0;
  let starved = 0;
  let finished = false;

  function stopTimers() {
    if (mic !== null) clearInterval(mic);
    if (replyTimer !== null) clearTimeout(replyTimer);
    if (settleTimer !== null) clearTimeout(settleTimer);
    mic = replyTimer = settleTimer = null;
  }

  function fail(reason) {
    conversationErrors.add(1, { reason });
    errorEvents.add(1, { code: reason });
  }

  function finishConversation() {
    if (finished) return;
    finished = true;
    stopTimers();
    ws.send(JSON.stringify({ type: 'end' }));
    // `ended` and the server's close follow; this guards against a server that never closes.
    settleTimer = setTimeout(() => ws.close(), 5000);
  }

  function startTurn() {
    settleTimer = null;
    if (finished) return;
    const index = (exec.vu.iterationInScenario * TURNS + turnsDone) % QUESTION_FRAMES.length;
    question = QUESTION_FRAMES[index];
    next = 0;
    gotTranscript = gotFinal = false;
    speechStart = Date.now();
    phase = 'speaking';
  }

  function afterTurn() {
    turnsDone += 1;
    phase = 'idle';
    if (replyTimer !== null) clearTimeout(replyTimer);
    replyTimer = null;
    if (turnsDone >= TURNS) finishConversation();
    else settleTimer = setTimeout(startTurn, TURN_GAP_MS);
  }

  // A microphone: one frame per FRAME_MS by the wall clock; a late timer sends what is due.
  function tick() {
    const due = Math.floor((Date.now() - micStart) / FRAME_MS);
    while (micSent < due) {
      micSent += 1;
      if (phase === 'speaking') {
        ws.send(question[next]);
        next += 1;
        if (next >= question.length) {
          phase = 'waiting';
          speechEnd = Date.now();
          replyTimer = setTimeout(() => {
            fail('no_reply');
            afterTurn();
          }, REPLY_TIMEOUT_MS);
        }
      } else {
        ws.send(SILENCE);
      }
    }
  }

  function onBinary(data) {
    const now = Date.now();
    if (phase === 'waiting') {
      voiceToVoice.add(now - speechEnd);
      phase = 'reply';
      playhead = now + JITTER_MS;
      starved = 0;
    }
    if (phase !== 'reply') return;
    const seconds = data.byteLength / 2 / OUTPUT_RATE;
    if (now > playhead) {
      starved += now - playhead;
      playhead = now;
    }
    playhead += seconds * 1000;
  }

  function onEvent(event) {
    const now = Date.now();
    switch (event.type) {
      case 'ready':
        micStart = Date.now();
        micSent = 0;
        mic = setInterval(tick, FRAME_MS);
        settleTimer = setTimeout(function settle() {
          if (agentTalking) settleTimer = setTimeout(settle, 200);
          else startTurn();
        }, SETTLE_MS);
        break;
      case 'audio_start':
        if (phase === 'idle') agentTalking = true;
        break;
      case 'audio_end':
        agentTalking = false;
        if (phase === 'reply') {
          starvedMs.add(starved);
          underruns.add(starved > UNDERRUN_TOLERANCE_MS);
          conversationErrors.add(0);
          turnsOk.add(1);
          afterTurn();
        }
        break;
      case 'transcript':
        if (phase !== 'speaking' && phase !== 'waiting' && phase !== 'reply') break;
        if (!gotTranscript) {
          gotTranscript = true;
          firstTranscript.add(now - speechStart);
        }
        if (event.final && !gotFinal && phase !== 'speaking') {
          gotFinal = true;
          finalTranscript.add(now - speechEnd);
        }
        break;
      case 'turn_metrics':
        if (event.voice_to_voice_ms !== null && event.voice_to_voice_ms !== undefined) {
          serverVoiceToVoice.add(event.voice_to_voice_ms);
        }
        break;
      case 'error':
        errorEvents.add(1, { code: event.code || 'unknown' });
        // The summary counts them; the log says which and when, next to the turn's phase.
        console.warn(
          `conversation ${exec.vu.idInTest}: error ${event.code}: ${event.message} ` +
            `(turn ${turnsDone + 1}, ${phase})`,
        );
        break;
      case 'ended':
        stopTimers();
        if (turnsDone < TURNS) fail(`ended_${event.reason}`);
        finished = true;
        break;
      default:
        break;
    }
  }

  ws.onopen = () => {
    const start = {
      type: 'start',
      user_id: `load-${exec.vu.idInTest}`,
      input_sample_rate: INPUT_RATE,
      output_sample_rate: OUTPUT_RATE,
      frame_ms: FRAME_MS,
      pacing: PACING,
    };
    if (GREETING === '0') start.greeting = false;
    ws.send(JSON.stringify(start));
  };
  ws.onmessage = (message) => {
    if (typeof message.data === 'string') onEvent(JSON.parse(message.data));
    else onBinary(message.data);
  };
  ws.onerror = (e) => {
    if (!finished) fail('socket_error');
    finished = true;
    stopTimers();
    console.warn(`conversation ${exec.vu.idInTest}: ${e.error}`);
  };
  ws.onclose = () => {
    if (!finished) fail('closed_early');
    finished = true;
    stopTimers();
  };
}
