/**
 * The lab's inference server simulator on its own (no lab needed): vLLM's CLI shape, its OpenAI
 * HTTP surface, its Prometheus metric names, the API key, and refusing to start without a model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from './testkit';

const SIM = fileURLToPath(new URL('./host/airlock-inference-sim.mjs', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'airlock-sim-'));
const model = path.join(dir, 'models', 'tiny-llm', 'v1');
const KEY = 'lab-test-key-0123456789';

/** Starts the simulator on an ephemeral port; resolves with its base URL once it serves. */
function serve(args: string[]): Promise<{ child: ChildProcess; url: string; log: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIM, ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const onData = (d: Buffer) => {
      log += d.toString();
      const m = /Uvicorn running on (http:\/\/[^\s]+)/.exec(log);
      if (m) resolve({ child, url: m[1]!, log: () => log });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`simulator exited ${code}: ${log}`)));
  });
}

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; text: string; type: string | null }> {
  const r = await fetch(url, init);
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, text, type: r.headers.get('content-type') };
}

const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

describe('airlock-inference-sim', () => {
  let server: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    mkdirSync(model, { recursive: true });
    writeFileSync(path.join(model, 'config.json'), '{"architectures":["LabForCausalLM"]}\n');
    writeFileSync(path.join(dir, 'key'), `${KEY}\n`);
    server = await serve(['--model', model, '--served-model-name', 'tiny-llm', '--api-key-file', path.join(dir, 'key'), '--max-model-len', '64']);
  });

  afterAll(() => {
    server?.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds to the host loopback by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('answers /health with 200 and an empty body, without a key', async () => {
    const r = await json(`${server.url}/health`);
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
  });

  it('requires the API key on /v1/* only', async () => {
    for (const p of ['/v1/models', '/v1/completions', '/v1/chat/completions']) {
      const method = p === '/v1/models' ? 'GET' : 'POST';
      expect((await json(`${server.url}${p}`, { method, body: method === 'POST' ? '{}' : undefined })).status).toBe(401);
      const wrong = await json(`${server.url}${p}`, { method, headers: { authorization: 'Bearer nope' }, body: method === 'POST' ? '{}' : undefined });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual({ error: 'Unauthorized' });
    }
    expect((await json(`${server.url}/metrics`)).status).toBe(200);
  });

  it('lists the served model with max_model_len (OpenAI list format)', async () => {
    const r = await json(`${server.url}/v1/models`, { headers: auth });
    expect(r.status).toBe(200);
    expect(r.body.object).toBe('list');
    const data = r.body.data as Array<Record<string, unknown>>;
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ id: 'tiny-llm', object: 'model', owned_by: 'vllm', root: model, max_model_len: 64 });
  });

  it('completes deterministically in the OpenAI shape, with usage counts', async () => {
    const body = JSON.stringify({ model: 'tiny-llm', prompt: 'Say something about air gaps', max_tokens: 7 });
    const a = await json(`${server.url}/v1/completions`, { method: 'POST', headers: auth, body });
    const b = await json(`${server.url}/v1/completions`, { method: 'POST', headers: auth, body });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ object: 'text_completion', model: 'tiny-llm', usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } });
    expect(String(a.body.id)).toMatch(/^cmpl-[0-9a-f]{32}$/);
    const choice = (a.body.choices as Array<{ text: string; index: number; finish_reason: string }>)[0]!;
    expect(choice.index).toBe(0);
    expect(choice.finish_reason).toBe('length');
    expect(choice.text.trim().split(/\s+/)).toHaveLength(7);
    expect((b.body.choices as Array<{ text: string }>)[0]!.text).toBe(choice.text);
  });

  it('answers chat completions, also streamed as server-sent events', async () => {
    const req = { model: 'tiny-llm', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 3 };
    const r = await json(`${server.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: JSON.stringify(req) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: 'chat.completion', model: 'tiny-llm', usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } });
    const msg = (r.body.choices as Array<{ message: { role: string; content: string } }>)[0]!.message;
    expect(msg.role).toBe('assistant');
    expect(msg.content.trim().split(/\s+/)).toHaveLength(3);

    const s = await json(`${server.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: JSON.stringify({ ...req, stream: true }) });
    expect(s.type).toMatch(/^text\/event-stream/);
    const events = s.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')) as { object: string; choices: Array<{ delta: { content?: string } }> });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((c) => c.choices[0]!.delta.content).join('')).toBe(msg.content);
  });

  it('refuses an unknown model (404) and a request beyond max_model_len (400), like vLLM', async () => {
    const unknown = await json(`${server.url}/v1/completions`, { method: 'POST', headers: auth, body: JSON.stringify({ model: 'other', prompt: 'x' }) });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ object: 'error', type: 'NotFoundError', code: 404 });
    const long = await json(`${server.url}/v1/completions`, { method: 'POST', headers: auth, body: JSON.stringify({ model: 'tiny-llm', prompt: 'a b c', max_tokens: 62 }) });
    expect(long.status).toBe(400);
    expect(String(long.body.message)).toMatch(/maximum context length is 64 tokens\. However, you requested 65 tokens/);
  });

  it('exports vLLM metric names with model_name labels, counting what it served', async () => {
    const r = await json(`${server.url}/metrics`);
    expect(r.type).toMatch(/^text\/plain/);
    const l = 'model_name="tiny-llm"';
    for (const [name, type] of [
      ['vllm:num_requests_running', 'gauge'],
      ['vllm:num_requests_waiting', 'gauge'],
      ['vllm:gpu_cache_usage_perc', 'gauge'],
      ['vllm:prompt_tokens_total', 'counter'],
      ['vllm:generation_tokens_total', 'counter'],
      ['vllm:e2e_request_latency_seconds', 'histogram'],
    ]) {
      expect(r.text).toContain(`# TYPE ${name} ${type}\n`);
    }
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}+.]/g, '\\$&')} (\\S+)$`, 'm').exec(r.text)?.[1]);
    // 2 completions (5 + 7 tokens each), 2 chats (2 + 3 each), as above.
    expect(value(`vllm:prompt_tokens_total{${l}}`)).toBe(14);
    expect(value(`vllm:generation_tokens_total{${l}}`)).toBe(20);
    expect(value(`vllm:e2e_request_latency_seconds_count{${l}}`)).toBe(4);
    expect(value(`vllm:e2e_request_latency_seconds_bucket{le="+Inf",${l}}`)).toBe(4);
    expect(value(`vllm:num_requests_running{${l}}`)).toBe(0);
  });

  it('refuses to start without a model, with a clear message', async () => {
    const missing = await exec(process.execPath, [SIM, '--model', path.join(dir, 'nope'), '--port', '0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`ERROR: model path ${path.join(dir, 'nope')} does not exist\n`);
    const emptyDir = path.join(dir, 'empty');
    mkdirSync(path.join(emptyDir, 'sub'), { recursive: true });
    writeFileSync(path.join(emptyDir, 'sub', 'zero.bin'), '');
    const empty = await exec(process.execPath, [SIM, '--model', emptyDir, '--port', '0']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/is empty/);
    const noKey = await exec(process.execPath, [SIM, '--model', model, '--api-key-file', path.join(dir, 'no-key'), '--port', '0']);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/cannot read --api-key-file/);
    const usage = await exec(process.execPath, [SIM, '--port', '0']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/required: --model/);
  });

  it('without a key file, /v1/* are open; served name defaults to the model path', async () => {
    const open = await serve(['--model', model, '--host', '127.0.0.1']);
    try {
      const r = await json(`${open.url}/v1/models`);
      expect(r.status).toBe(200);
      expect((r.body.data as Array<{ id: string }>)[0]!.id).toBe(model);
    } finally {
      open.child.kill('SIGTERM');
    }
  });
});
