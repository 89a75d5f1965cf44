#!/usr/bin/env node
// The lab's inference server simulator: a lab host's /usr/local/bin/airlock-inference-sim.
//
// It has vLLM's command-line shape and HTTP surface, so provisioning can run it under a systemd
// unit exactly as it would run vLLM, without a GPU or model weights:
//
//   airlock-inference-sim --model PATH [--served-model-name NAME] [--host ADDR] [--port N]
//                         [--api-key-file FILE | --api-key KEY] [--max-model-len N]
//
//   GET  /health               200, empty body
//   GET  /v1/models            OpenAI list with the served name and max_model_len
//   POST /v1/completions       deterministic fake text, OpenAI response shape, usage counts
//   POST /v1/chat/completions  likewise (both answer `"stream": true` with server-sent events)
//   GET  /metrics              Prometheus text with vLLM's metric names (model_name labels)
//
// With an API key, /v1/* need `Authorization: Bearer <key>` (401 otherwise), like vLLM's
// --api-key; /health and /metrics never do. It binds only where told (127.0.0.1 by default) and
// refuses to start (exit 1) when the model path is missing or empty, or the key file unreadable.
// Lab-only flag: --sim-latency-ms N (time each request takes; default 0).
//
// Plain JavaScript with node: modules only: it runs on lab hosts, which have nothing but node.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const USAGE = `usage: airlock-inference-sim --model PATH [--served-model-name NAME] [--host ADDR] [--port N]
                            [--api-key-file FILE | --api-key KEY] [--max-model-len N] [--sim-latency-ms N]
`;

function fail(msg, code = 1) {
  process.stderr.write(`ERROR: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = { model: null, served: null, host: '127.0.0.1', port: 8000, keyFile: null, key: process.env.VLLM_API_KEY || null, maxLen: 4096, latency: 0 };
  const takes = new Map([
    ['--model', 'model'],
    ['--served-model-name', 'served'],
    ['--host', 'host'],
    ['--port', 'port'],
    ['--api-key-file', 'keyFile'],
    ['--api-key', 'key'],
    ['--max-model-len', 'maxLen'],
    ['--sim-latency-ms', 'latency'],
  ]);
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const key = takes.get(a);
    if (!key) fail(`unrecognized argument: ${a}\n${USAGE}`, 2);
    if (v === undefined) {
      if (i + 1 >= argv.length) fail(`argument ${a}: expected one argument`, 2);
      v = argv[++i];
    }
    o[key] = v;
  }
  for (const k of ['port', 'maxLen', 'latency']) {
    const n = Number(o[k]);
    if (!Number.isInteger(n) || n < 0 || (k === 'port' && n > 65535) || (k === 'maxLen' && n < 1)) fail(`invalid value for ${k}: ${o[k]}`, 2);
    o[k] = n;
  }
  if (!o.model) fail(`the following arguments are required: --model\n${USAGE}`, 2);
  return o;
}

/** A model path must exist and hold at least one non-empty file (or be a non-empty file). */
function checkModel(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    fail(`model path ${p} does not exist`);
  }
  if (st.isFile()) {
    if (st.size === 0) fail(`model path ${p} is an empty file`);
    return;
  }
  if (!st.isDirectory()) fail(`model path ${p} is neither a file nor a directory`);
  const queue = [p];
  let seen = 0;
  while (queue.length && seen < 10_000) {
    const dir = queue.shift();
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      fail(`cannot read model directory ${dir}: ${e.message}`);
    }
    for (const e of entries) {
      seen++;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) queue.push(full);
      else if (e.isFile() && fs.statSync(full).size > 0) return;
    }
  }
  fail(`model path ${p} is empty (no model files in it)`);
}

const opts = parseArgs(process.argv.slice(2));
checkModel(opts.model);
let apiKey = opts.key;
if (opts.keyFile) {
  try {
    apiKey = fs.readFileSync(opts.keyFile, 'utf8').trim();
  } catch (e) {
    fail(`cannot read --api-key-file ${opts.keyFile}: ${e.message}`);
  }
  if (!apiKey) fail(`--api-key-file ${opts.keyFile} is empty`);
}
const served = opts.served || opts.model;
const created = Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------------------------
// Metrics (names and types as vLLM exports them)
// ---------------------------------------------------------------------------------------------

const BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0];
const m = { running: 0, waiting: 0, prompt: 0, generation: 0, latency: BUCKETS.map(() => 0), latencySum: 0, latencyCount: 0, success: new Map() };
const num = (v) => (Number.isInteger(v) ? `${v}.0` : String(v));
const label = (s) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function metricsText() {
  const l = `model_name="${label(served)}"`;
  const out = [];
  const metric = (name, type, help, lines) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
  metric('vllm:num_requests_running', 'gauge', 'Number of requests currently running on GPU.', [`vllm:num_requests_running{${l}} ${num(m.running)}`]);
  metric('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.', [`vllm:num_requests_waiting{${l}} ${num(m.waiting)}`]);
  metric('vllm:gpu_cache_usage_perc', 'gauge', 'GPU KV-cache usage. 1 means 100 percent usage.', [
    `vllm:gpu_cache_usage_perc{${l}} ${num(Math.min(1, m.running * 0.05))}`,
  ]);
  metric('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', [`vllm:prompt_tokens_total{${l}} ${num(m.prompt)}`]);
  metric('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.', [`vllm:generation_tokens_total{${l}} ${num(m.generation)}`]);
  const success = [...m.success].map(([reason, n]) => `vllm:request_success_total{finished_reason="${reason}",${l}} ${num(n)}`);
  metric('vllm:request_success_total', 'counter', 'Count of successfully processed requests.', success);
  let cum = 0;
  const hist = BUCKETS.map((b, i) => {
    cum += m.latency[i];
    return `vllm:e2e_request_latency_seconds_bucket{le="${num(b)}",${l}} ${num(cum)}`;
  });
  metric('vllm:e2e_request_latency_seconds', 'histogram', 'Histogram of end to end request latency in seconds.', [
    ...hist,
    `vllm:e2e_request_latency_seconds_bucket{le="+Inf",${l}} ${num(m.latencyCount)}`,
    `vllm:e2e_request_latency_seconds_count{${l}} ${num(m.latencyCount)}`,
    `vllm:e2e_request_latency_seconds_sum{${l}} ${m.latencySum}`,
  ]);
  return out.join('\n') + '\n';
}

function observe(seconds, reason, promptTokens, completionTokens) {
  m.prompt += promptTokens;
  m.generation += completionTokens;
  m.latencyCount++;
  m.latencySum += seconds;
  const i = BUCKETS.findIndex((b) => seconds <= b);
  if (i >= 0) m.latency[i]++;
  m.success.set(reason, (m.success.get(reason) ?? 0) + 1);
}

// ---------------------------------------------------------------------------------------------
// Fake generation: deterministic for a given prompt
// ---------------------------------------------------------------------------------------------

const WORDS = ['the', 'lab', 'host', 'answers', 'with', 'simulated', 'tokens', 'from', 'a', 'model', 'that', 'is', 'not', 'really', 'there', 'but', 'counts', 'them', 'honestly', 'anyway'];
/** Tokens, roughly: whitespace-separated words (an empty text still costs one). */
const countTokens = (text) => Math.max(1, String(text).split(/\s+/).filter(Boolean).length);

function generate(prompt, maxTokens) {
  const seed = createHash('sha256').update(`${served}\0${prompt}`).digest();
  const words = [];
  for (let i = 0; i < maxTokens; i++) words.push(WORDS[(seed[i % seed.length] + 7 * i) % WORDS.length]);
  return words.map((w) => ` ${w}`).join('');
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

function send(res, status, body, type = 'application/json') {
  const text = body === '' ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const openAiError = (res, status, type, message) => send(res, status, { object: 'error', message, type, param: null, code: status });

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 16 * 1024 * 1024) {
        reject(new Error('request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function completion(req, res, chat) {
  let body;
  try {
    body = JSON.parse((await readBody(req)) || '{}');
  } catch {
    return openAiError(res, 400, 'BadRequestError', 'The request body is not valid JSON.');
  }
  if (typeof body !== 'object' || body === null) return openAiError(res, 400, 'BadRequestError', 'The request body must be a JSON object.');
  if (body.model !== undefined && body.model !== served) {
    return openAiError(res, 404, 'NotFoundError', `The model \`${body.model}\` does not exist.`);
  }
  let prompt;
  if (chat) {
    if (!Array.isArray(body.messages) || body.messages.length === 0) return openAiError(res, 400, 'BadRequestError', 'messages: a non-empty list is required.');
    prompt = body.messages.map((x) => (typeof x?.content === 'string' ? x.content : JSON.stringify(x?.content ?? ''))).join('\n');
  } else {
    if (body.prompt === undefined) return openAiError(res, 400, 'BadRequestError', 'prompt: field required.');
    prompt = Array.isArray(body.prompt) ? body.prompt.join('\n') : String(body.prompt);
  }
  const maxTokens = Number(body.max_tokens ?? body.max_completion_tokens ?? 16);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) return openAiError(res, 400, 'BadRequestError', 'max_tokens must be a positive integer.');
  const promptTokens = countTokens(prompt);
  if (promptTokens + maxTokens > opts.maxLen) {
    return openAiError(
      res,
      400,
      'BadRequestError',
      `This model's maximum context length is ${opts.maxLen} tokens. However, you requested ${promptTokens + maxTokens} tokens ` +
        `(${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
    );
  }
  const t0 = process.hrtime.bigint();
  m.running++;
  try {
    if (opts.latency) await sleep(opts.latency);
  } finally {
    m.running--;
  }
  const text = generate(prompt, maxTokens);
  const id = `${chat ? 'chatcmpl' : 'cmpl'}-${randomBytes(16).toString('hex')}`;
  const now = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: promptTokens, total_tokens: promptTokens + maxTokens, completion_tokens: maxTokens };
  const finish = 'length';
  observe(Number(process.hrtime.bigint() - t0) / 1e9, finish, promptTokens, maxTokens);
  if (body.stream === true) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const words = text.match(/ \S+/g) ?? [];
    words.forEach((w, i) => {
      const last = i === words.length - 1;
      const choice = chat
        ? { index: 0, delta: i === 0 ? { role: 'assistant', content: w } : { content: w }, logprobs: null, finish_reason: last ? finish : null }
        : { index: 0, text: w, logprobs: null, finish_reason: last ? finish : null, stop_reason: null };
      res.write(`data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: now, model: served, choices: [choice] })}\n\n`);
    });
    // vLLM's stream_options.include_usage: one more chunk, no choices, the request's usage.
    if (body.stream_options?.include_usage === true) res.write(`data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: now, model: served, choices: [], usage })}\n\n`);
    res.end('data: [DONE]\n\n');
    return;
  }
  const choice = chat
    ? { index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish, stop_reason: null }
    : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null };
  send(res, 200, { id, object: chat ? 'chat.completion' : 'text_completion', created: now, model: served, choices: [choice], usage });
}

function authorized(req) {
  if (!apiKey) return true;
  const h = req.headers.authorization ?? '';
  return h === `Bearer ${apiKey}`;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const route = `${req.method} ${url.pathname}`;
  if (url.pathname.startsWith('/v1/') && !authorized(req)) return send(res, 401, { error: 'Unauthorized' });
  switch (route) {
    case 'GET /health':
      return send(res, 200, '', 'text/plain');
    case 'GET /metrics':
      return send(res, 200, metricsText(), 'text/plain; version=0.0.4; charset=utf-8');
    case 'GET /v1/models':
      return send(res, 200, {
        object: 'list',
        data: [
          {
            id: served,
            object: 'model',
            created,
            owned_by: 'vllm',
            root: opts.model,
            parent: null,
            max_model_len: opts.maxLen,
            permission: [],
          },
        ],
      });
    case 'POST /v1/completions':
    case 'POST /v1/chat/completions':
      completion(req, res, route.endsWith('/chat/completions')).catch((e) => {
        if (!res.headersSent) openAiError(res, 500, 'InternalServerError', String(e?.message ?? e));
        else res.destroy();
      });
      return;
    default:
      if (['/health', '/metrics', '/v1/models', '/v1/completions', '/v1/chat/completions'].includes(url.pathname)) {
        return send(res, 405, { detail: 'Method Not Allowed' });
      }
      return send(res, 404, { detail: 'Not Found' });
  }
});

server.on('error', (e) => fail(`cannot listen on ${opts.host}:${opts.port}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`));
server.listen(opts.port, opts.host, () => {
  const a = server.address();
  const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  process.stdout.write(
    `INFO:     airlock-inference-sim (vLLM-compatible simulator) serving model ${opts.model} as "${served}", max_model_len=${opts.maxLen}, ` +
      `api key ${apiKey ? 'required' : 'not required'}\n` +
      `INFO:     Uvicorn running on http://${shown}:${a.port} (Press CTRL+C to quit)\n`,
  );
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    process.stdout.write(`INFO:     Shutting down (${sig})\n`);
    server.close();
    process.exit(0);
  });
}
