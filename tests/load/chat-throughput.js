// The brain's `POST /chat/stream` (Server-Sent Events) under N closed-loop clients: requests
// per second and how long answers take.
//
// k6 hands a response to the script only once its body has ended, so the first `delta` event
// cannot be timed from here. First-delta percentiles come from the brain's own histogram
// (`arc_brain_first_delta_seconds`), scraped before and after the run; the client side gives
// the time to the response's headers and to the end of the stream (an upper bound of the
// first delta). Nothing else should talk to the brain during a run.
//
// Environment: BRAIN_URL (http://127.0.0.1:8081), ARC_API_KEY, VUS (2), DURATION (30s) or
// STAGES ("20s:1,20s:4"), CHAT_TEXTS ("|"-separated questions), THINK_MS (0), and the
// thresholds P95_FIRST_DELTA_MS (2500), P95_STREAM_MS (10000), MAX_ERROR_RATE (0.01).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import {
  apiKey,
  env,
  envFloat,
  envInt,
  histogramGauges,
  reportHistogram,
  scenario,
  scrapeHistogram,
} from './lib/common.js';

const BRAIN_URL = env('BRAIN_URL', 'http://127.0.0.1:8081');
const KEY = apiKey();
const THINK_MS = envInt('THINK_MS', 0);
const FIRST_DELTA = 'arc_brain_first_delta_seconds';
// Answered by the brain's skills (time, arithmetic, help) and, when `make run` serves a
// model, one open question for the language model.
const TEXTS = env(
  'CHAT_TEXTS',
  'what time is it?|what is twelve times four?|what can you do?|tell me one fact about the moon.',
).split('|');

const streamMs = new Trend('chat_stream_ms', true);
const headersMs = new Trend('chat_headers_ms', true);
const deltas = new Trend('chat_deltas');
const chatErrors = new Rate('chat_errors');
const chatOk = new Counter('chat_ok');
// 429s: the brain's per-client rate limit (ARC_HTTP__RATE_LIMIT_PER_MINUTE, 120 by default)
// counts every virtual user as one client, so a load test needs it raised (docs/load.md).
const rateLimited = new Counter('chat_rate_limited');
const serverFirstDelta = histogramGauges('brain_first_delta', 'brain_turns_observed');

export const options = {
  scenarios: { chat: scenario('chat', { vus: 2, duration: '30s', gracefulStop: '30s' }) },
  thresholds: {
    chat_errors: [`rate<=${envFloat('MAX_ERROR_RATE', 0.01)}`],
    chat_ok: ['count>0'],
    chat_stream_ms: [`p(95)<${envInt('P95_STREAM_MS', 10000)}`],
    brain_first_delta_p95_ms: [`value<${envInt('P95_FIRST_DELTA_MS', 2500)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export function setup() {
  return { before: scrapeHistogram(`${BRAIN_URL}/metrics`, FIRST_DELTA), runId: Date.now() };
}

// SSE blocks are separated by a blank line; sse-starlette ends lines with CRLF.
function parseEvents(body) {
  const events = [];
  for (const block of body.split(/\r?\n\r?\n/)) {
    let event = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length > 0) events.push({ event, data: data.join('\n') });
  }
  return events;
}

export function chat(data) {
  const text = TEXTS[exec.scenario.iterationInTest % TEXTS.length];
  const body = JSON.stringify({
    session_id: `load-${data.runId}-${exec.vu.idInTest}`,
    user_id: `load-${exec.vu.idInTest}`,
    text,
  });
  const started = Date.now();
  const res = http.post(`${BRAIN_URL}/chat/stream`, body, {
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      authorization: `Bearer ${KEY}`,
    },
    responseType: 'text',
    timeout: '60s',
    tags: { name: 'chat_stream' },
  });
  const events = res.status === 200 && res.body ? parseEvents(res.body) : [];
  const deltaCount = events.filter((e) => e.event === 'delta').length;
  const last = events.length > 0 ? events[events.length - 1].event : null;
  const ok = check(res, {
    'status 200': (r) => r.status === 200,
    'ends with `end`': () => last === 'end',
    'at least one delta': () => deltaCount > 0,
  });
  chatErrors.add(!ok, { status: String(res.status) });
  if (res.status === 429) rateLimited.add(1);
  if (ok) {
    chatOk.add(1);
    streamMs.add(Date.now() - started);
    headersMs.add(res.timings.waiting);
    deltas.add(deltaCount);
  }
  if (THINK_MS > 0) sleep(THINK_MS / 1000);
}

export function teardown(data) {
  reportHistogram(`${BRAIN_URL}/metrics`, FIRST_DELTA, data.before, serverFirstDelta);
}
