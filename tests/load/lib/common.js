// Helpers shared by the k6 scripts in tests/load: settings from the environment, stages,
// and server-side latency from the services' Prometheus histograms.
import http from 'k6/http';
import { Gauge } from 'k6/metrics';

export function env(name, fallback) {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : value;
}

export function envInt(name, fallback) {
  const value = env(name, undefined);
  if (value === undefined) return fallback;
  const parsed = parseInt(value, 10);
  if (Number.isNaN(parsed)) throw new Error(`${name} must be an integer, not ${value}`);
  return parsed;
}

export function envFloat(name, fallback) {
  const value = env(name, undefined);
  if (value === undefined) return fallback;
  const parsed = parseFloat(value);
  if (Number.isNaN(parsed)) throw new Error(`${name} must be a number, not ${value}`);
  return parsed;
}

export function apiKey() {
  const key = env('ARC_API_KEY', undefined);
  if (!key) {
    throw new Error('ARC_API_KEY is not set (`make load` reads it from .arc/api-key)');
  }
  return key;
}

// STAGES="10s:2,30s:4,10s:0" ramps VUs; otherwise VUS constant for DURATION. Returns one k6
// scenario running `exec`.
export function scenario(exec, { vus, duration, gracefulStop }) {
  const stages = env('STAGES', '');
  if (stages) {
    return {
      executor: 'ramping-vus',
      exec,
      startVUs: envInt('START_VUS', 0),
      stages: stages.split(',').map((stage) => {
        const [span, target] = stage.split(':');
        return { duration: span.trim(), target: parseInt(target, 10) };
      }),
      gracefulRampDown: gracefulStop,
      gracefulStop,
    };
  }
  return {
    executor: 'constant-vus',
    exec,
    vus: envInt('VUS', vus),
    duration: env('DURATION', duration),
    gracefulStop,
  };
}

// Prometheus text format: the cumulative buckets of one histogram, summed over its labels.
export function histogramBuckets(text, name) {
  const buckets = {};
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const le = /le="([^"]+)"/.exec(line);
    if (!le) continue;
    const value = parseFloat(line.slice(line.lastIndexOf(' ') + 1));
    buckets[le[1]] = (buckets[le[1]] || 0) + value;
  }
  return buckets;
}

export function scrapeHistogram(metricsUrl, name) {
  const res = http.get(metricsUrl, { tags: { name: 'metrics' }, responseType: 'text' });
  if (res.status !== 200) {
    throw new Error(`${metricsUrl} answered ${res.status}; the server-side latency needs it`);
  }
  const buckets = histogramBuckets(res.body, name);
  if (Object.keys(buckets).length === 0) {
    throw new Error(`${metricsUrl} has no histogram ${name}`);
  }
  return buckets;
}

// The observations between two scrapes, as [upper bound, count in bucket] pairs in order.
export function bucketDiff(before, after) {
  const bounds = Object.keys(after)
    .map((le) => [le, le === '+Inf' ? Infinity : parseFloat(le)])
    .sort((a, b) => a[1] - b[1]);
  const out = [];
  let previous = 0;
  for (const [le, bound] of bounds) {
    const cumulative = after[le] - (before[le] || 0);
    out.push([bound, cumulative - previous]);
    previous = cumulative;
  }
  return out;
}

// Linear interpolation inside the bucket, as Prometheus's histogram_quantile does: the
// resolution is the bucket width, so these figures are coarser than the client-side ones.
export function bucketQuantile(pairs, q) {
  const total = pairs.reduce((sum, [, count]) => sum + count, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let cumulative = 0;
  let lower = 0;
  let lastFinite = 0;
  for (const [bound, count] of pairs) {
    if (bound !== Infinity) lastFinite = bound;
    if (cumulative + count >= rank && count > 0) {
      if (bound === Infinity) return lastFinite;
      return lower + ((bound - lower) * (rank - cumulative)) / count;
    }
    cumulative += count;
    lower = bound;
  }
  return lastFinite;
}

export function observationCount(pairs) {
  return pairs.reduce((sum, [, count]) => sum + count, 0);
}

// The three Gauges `reportHistogram` fills: `<prefix>_p50_ms`, `<prefix>_p95_ms` and `count`
// (how many observations the service made during the run). Made in the init context, where
// k6 requires custom metrics to be created.
export function histogramGauges(prefix, count) {
  return {
    p50: new Gauge(`${prefix}_p50_ms`),
    p95: new Gauge(`${prefix}_p95_ms`),
    count: new Gauge(count),
  };
}

// The service's histogram since `before` (from setup), reported into the Gauges of
// `histogramGauges`: how many it observed during the run, and its p50 and p95 in ms.
export function reportHistogram(metricsUrl, name, before, gauges) {
  const pairs = bucketDiff(before, scrapeHistogram(metricsUrl, name));
  gauges.count.add(observationCount(pairs));
  const p50 = bucketQuantile(pairs, 0.5);
  const p95 = bucketQuantile(pairs, 0.95);
  if (p50 !== null) gauges.p50.add(p50 * 1000);
  if (p95 !== null) gauges.p95.add(p95 * 1000);
}
