// The TTS service's `POST /tts/stream` under N concurrent streams: streams per second, the
// time to the first audio chunk, and the real-time margin of each stream (seconds of audio
// received / wall seconds from request to the last byte; above 1 the stream outran playback).
//
// k6 hands a response to the script only once its body has ended, so the first chunk cannot
// be timed from here. First-chunk percentiles come from the worker's own histogram
// (`arc_tts_first_chunk_seconds`), scraped before and after the run. Nothing else should
// talk to this TTS worker during a run.
//
// Environment: TTS_URL (http://127.0.0.1:8082), ARC_API_KEY, VUS (2), DURATION (30s) or
// STAGES, TTS_TEXT, SAMPLE_RATE (48000), FRAME_MS (20), VOICE, and the thresholds
// P95_FIRST_CHUNK_MS (1000), P5_REALTIME_MARGIN (1.0), MAX_ERROR_RATE (0.01).
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
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

const TTS_URL = env('TTS_URL', 'http://127.0.0.1:8082');
const KEY = apiKey();
const SAMPLE_RATE = envInt('SAMPLE_RATE', 48000);
const FRAME_MS = envInt('FRAME_MS', 20);
const VOICE = env('VOICE', undefined);
const FIRST_CHUNK = 'arc_tts_first_chunk_seconds';
// Three sentences, about nine seconds of speech: a typical spoken answer.
const TEXT = env(
  'TTS_TEXT',
  'Thanks for calling the front desk. Your room is on the fourth floor, to the left of the ' +
    'elevators. Breakfast is served from seven until ten in the garden restaurant.',
);

const streamMs = new Trend('tts_stream_ms', true);
const audioS = new Trend('tts_audio_s');
const margin = new Trend('tts_realtime_margin');
const ttsErrors = new Rate('tts_errors');
const ttsOk = new Counter('tts_ok');
const serverFirstChunk = histogramGauges('tts_first_chunk', 'tts_streams_observed');

export const options = {
  scenarios: { tts: scenario('tts', { vus: 2, duration: '30s', gracefulStop: '30s' }) },
  thresholds: {
    tts_errors: [`rate<=${envFloat('MAX_ERROR_RATE', 0.01)}`],
    tts_ok: ['count>0'],
    tts_realtime_margin: [`p(5)>=${envFloat('P5_REALTIME_MARGIN', 1.0)}`],
    tts_first_chunk_p95_ms: [`value<${envInt('P95_FIRST_CHUNK_MS', 1000)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(5)', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export function setup() {
  return { before: scrapeHistogram(`${TTS_URL}/metrics`, FIRST_CHUNK) };
}

export function tts() {
  const request = { text: TEXT, sample_rate: SAMPLE_RATE, frame_ms: FRAME_MS, format: 'pcm' };
  if (VOICE) request.voice = VOICE;
  const started = Date.now();
  const res = http.post(`${TTS_URL}/tts/stream`, JSON.stringify(request), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    responseType: 'binary',
    timeout: '60s',
    tags: { name: 'tts_stream' },
  });
  const wallS = (Date.now() - started) / 1000;
  const bytes = res.body ? res.body.byteLength : 0;
  const seconds = bytes / 2 / SAMPLE_RATE;
  // A stream cut short by an error after its headers is a 200 with too little audio.
  const ok = check(res, {
    'status 200': (r) => r.status === 200,
    'some audio': () => seconds > 0.5,
    'whole samples': () => bytes % 2 === 0,
  });
  ttsErrors.add(!ok, { status: String(res.status) });
  if (ok) {
    ttsOk.add(1);
    streamMs.add(wallS * 1000);
    audioS.add(seconds);
    margin.add(seconds / wallS);
  }
}

export function teardown(data) {
  reportHistogram(`${TTS_URL}/metrics`, FIRST_CHUNK, data.before, serverFirstChunk);
}
