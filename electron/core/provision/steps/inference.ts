import crypto from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { z } from 'zod';
import { ModelName, ModelVersion } from '../../../../shared/contract/provision';
import { deliverApiKey, ensureApiKey, hostSecretsSource, INFERENCE_UNIT_DIR, keyFileState, NO_HIERARCHY_NOTE, sealedApiKey } from '../../keys/host-secrets';
import { httpRequestViaSsh } from '../../ssh/tunnel';
import { checkHostPath, HostPath, q, StepFailure } from '../remote';
import { modelDir } from './models';
import { defineStep, type StepContext } from './types';

const Params = z
  .object({
    model: ModelName,
    version: ModelVersion,
    dest: HostPath.default('/srv/models'),
    /** Name clients ask for (OpenAI `model`); defaults to the model name. */
    servedName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/).optional(),
    /** The server binary (vLLM-style CLI). */
    command: HostPath.default('/usr/local/bin/vllm-serve'),
    /** 127.0.0.1 keeps it on the host's loopback; or the cluster interface's address. */
    bind: z.string().regex(/^[0-9a-fA-F.:]+$/).default('127.0.0.1'),
    port: z.number().int().min(1024).max(65535).default(8000),
    maxModelLen: z.number().int().min(128).max(1_048_576).default(8192),
    unit: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/).default('airlock-inference'),
    apiKeyFile: HostPath.default('/etc/airlock/inference.key'),
    /** Seconds to wait for /health after the restart. */
    healthTimeoutSeconds: z.number().int().min(1).max(900).default(30),
  })
  .strict();
type Params = z.infer<typeof Params>;

const unitPath = (p: Params) => `${INFERENCE_UNIT_DIR}/${p.unit}.service`;

export function renderUnit(p: Params): string {
  const args = [
    checkHostPath(p.command, 'command'),
    '--model',
    modelDir(p),
    '--served-model-name',
    p.servedName ?? p.model,
    '--host',
    p.bind,
    '--port',
    String(p.port),
    '--api-key-file',
    checkHostPath(p.apiKeyFile, 'apiKeyFile'),
    '--max-model-len',
    String(p.maxModelLen),
  ];
  return [
    '# Written by Airlock: changes here are drift and will be reported.',
    '[Unit]',
    `Description=Inference server for ${p.model} ${p.version} (managed by Airlock)`,
    'After=network.target',
    '',
    '[Service]',
    `ExecStart=${args.join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2',
    'NoNewPrivileges=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

async function active(ctx: StepContext, p: Params): Promise<boolean> {
  return (await ctx.remote.sh(`systemctl is-active --quiet ${q(p.unit)}`)).code === 0;
}

/** A host-made API key (no hierarchy) is read from the host for the health check only; it is never stored or logged by Airlock. */
async function hostApiKey(ctx: StepContext, p: Params): Promise<string | null> {
  const k = await ctx.remote.readFile(p.apiKeyFile, 4096);
  return k === null ? null : k.trim();
}

async function health(ctx: StepContext, p: Params, waitSeconds: number) {
  const deadline = Date.now() + waitSeconds * 1000;
  let last = '';
  for (;;) {
    try {
      const h = await httpRequestViaSsh(ctx.remote.conn, { host: p.bind, port: p.port, method: 'GET', path: '/health', timeoutMs: 5000, maxBytes: 4096 });
      if (h.status === 200) return { ok: true as const, detail: 'GET /health 200' };
      last = `GET /health answered ${h.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline || ctx.signal.aborted) return { ok: false as const, detail: last };
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Where this host's API key comes from (keys/host-secrets.ts): `sealed` — a `host-secrets` data key
 * Airlock made and delivers; `host` — no key hierarchy, the host makes its own. A sealed hierarchy
 * throws KEY_UNAVAILABLE: the step fails closed rather than fall back to a key outside it.
 */
function keySource(ctx: StepContext, p: Params): 'host' | 'sealed' {
  return hostSecretsSource(ctx.hostSecrets, `The inference API key of ${ctx.host.name} (${p.unit})`);
}

/** What would change about the key file; null when it already holds the right key. */
async function keyFileChange(ctx: StepContext, p: Params, source: 'host' | 'sealed') {
  const change = (from: string | null, to: string) => ({ kind: 'file' as const, target: p.apiKeyFile, from, to, diff: null });
  const present = async () => (await ctx.remote.sh(`[ -s ${q(p.apiKeyFile)} ]`)).code === 0;
  if (source === 'host') return (await present()) ? null : change(null, `a new random API key made on the host (0600): ${NO_HIERARCHY_NOTE.toLowerCase()}`);
  const want = sealedApiKey(ctx.hostSecrets!, ctx.host.name, p.unit);
  if (want === null) return change((await present()) ? 'a key Airlock did not seal (replaced)' : null, 'a new API key sealed under the host-secrets KEK (0600)');
  const st = await keyFileState(ctx.remote, p.apiKeyFile, want);
  if (st === 'matches') return null;
  return change(st === 'absent' ? null : 'another key, or a mode other than 0600 (drift)', 'the API key sealed under the host-secrets KEK (0600)');
}

/**
 * Inference service configuration: the systemd unit for a vLLM-style server (model path, port on
 * the host's loopback or the cluster interface, an API key file), restarted, then proven healthy
 * through an SSH tunnel: /health answers 200 and /v1/models lists the served model with the key.
 * The API key is a `host-secrets` data key delivered over SSH when a key hierarchy exists
 * (docs/keys.md "Host secrets"); made on the host, as before, when there is none.
 */
export const inferenceService = defineStep<Params>({
  type: 'inference-service',
  title: 'Inference service configuration',
  params: Params,
  needs: { root: true, store: () => [] },
  async check(ctx, p) {
    const source = keySource(ctx, p);
    const want = renderUnit(p);
    const have = await ctx.remote.readFile(unitPath(p));
    const changes = [];
    if (have !== want) {
      changes.push({
        kind: 'file' as const,
        target: unitPath(p),
        from: have === null ? null : `${have.length} bytes`,
        to: `${want.length} bytes`,
        diff: createTwoFilesPatch(unitPath(p), unitPath(p), have ?? '', want, have === null ? '(absent)' : 'now', 'wanted'),
      });
    }
    const key = await keyFileChange(ctx, p, source);
    if (key) changes.push(key);
    if (!(await active(ctx, p))) changes.push({ kind: 'service' as const, target: p.unit, from: 'inactive', to: 'active', diff: null });
    return { state: changes.length ? 'change' : 'ok', changes, ...(source === 'host' ? { message: NO_HIERARCHY_NOTE } : {}) };
  },
  async apply(ctx, p) {
    if (keySource(ctx, p) === 'sealed') {
      // Made once by Airlock, wrapped in its database; the host gets it on stdin, 0600 from the start.
      const text = ensureApiKey(ctx.hostSecrets!, ctx.host.name, p.unit);
      if ((await keyFileState(ctx.remote, p.apiKeyFile, text)) !== 'matches') await deliverApiKey(ctx.remote, p.apiKeyFile, text);
    } else {
      const dir = p.apiKeyFile.slice(0, p.apiKeyFile.lastIndexOf('/')) || '/';
      // No hierarchy to seal it under: the key is made on the host from its own randomness, and Airlock never holds it at rest.
      await ctx.remote.must(
        `set -e; mkdir -p ${q(dir)}; if [ ! -s ${q(p.apiKeyFile)} ]; then umask 077; head -c 32 /dev/urandom | base64 | tr -d '=+/\\n' > ${q(p.apiKeyFile)}.tmp; mv -f ${q(p.apiKeyFile)}.tmp ${q(p.apiKeyFile)}; fi; chmod 0600 ${q(p.apiKeyFile)}`,
        'creating the API key file',
      );
    }
    await ctx.remote.writeFile(unitPath(p), renderUnit(p), '0644');
    await ctx.remote.must(`systemctl daemon-reload && systemctl enable ${q(p.unit)} && systemctl restart ${q(p.unit)}`, `restarting ${p.unit}`, {
      onOutput: (s) => ctx.log(s),
      timeoutMs: 120_000,
    });
    const h = await health(ctx, p, p.healthTimeoutSeconds);
    if (!h.ok) {
      const logs = await ctx.remote.sh(`systemctl status ${q(p.unit)} 2>&1 | tail -n 20`);
      throw new StepFailure(`${p.unit} did not become healthy within ${p.healthTimeoutSeconds} s: ${h.detail}`, null, logs.stdout);
    }
    ctx.log(`${p.unit}: ${h.detail}\n`);
  },
  async verify(ctx, p) {
    const source = keySource(ctx, p);
    const unit = await ctx.remote.readFile(unitPath(p));
    const isActive = await active(ctx, p);
    const h = await health(ctx, p, 5);
    let models: string[] = [];
    let modelsStatus: number | null = null;
    const key = source === 'host' ? await hostApiKey(ctx, p) : sealedApiKey(ctx.hostSecrets!, ctx.host.name, p.unit);
    const keyFile = source === 'sealed' && key !== null ? await keyFileState(ctx.remote, p.apiKeyFile, key) : null;
    try {
      const r = await httpRequestViaSsh(ctx.remote.conn, {
        host: p.bind,
        port: p.port,
        method: 'GET',
        path: '/v1/models',
        headers: key ? { authorization: `Bearer ${key}` } : {},
        timeoutMs: 5000,
        maxBytes: 256 * 1024,
      });
      modelsStatus = r.status;
      const body = JSON.parse(r.body.toString('utf8')) as { data?: Array<{ id?: unknown }> };
      models = (body.data ?? []).map((m) => String(m.id)).slice(0, 100);
    } catch {
      // reported through modelsStatus/models below
    }
    const served = p.servedName ?? p.model;
    const problems = [
      unit !== renderUnit(p) ? `${unitPath(p)} differs from what Airlock wrote` : null,
      !isActive ? `${p.unit} is not active` : null,
      !h.ok ? `health: ${h.detail}` : null,
      !models.includes(served) ? `/v1/models (${modelsStatus ?? 'no answer'}) does not list ${served}` : null,
      source === 'sealed' && key === null ? `Airlock holds no sealed API key for ${p.unit} on this host yet (apply makes one)` : null,
      keyFile !== null && keyFile !== 'matches' ? `${p.apiKeyFile} is not the API key sealed under the host-secrets KEK (${keyFile === 'absent' ? 'absent' : 'another key or mode'})` : null,
    ].filter((x): x is string => x !== null);
    return {
      ok: problems.length === 0,
      message: problems.join('; ') || (source === 'host' ? NO_HIERARCHY_NOTE : undefined),
      facts: {
        unit: p.unit,
        unitSha256: unit === null ? null : crypto.createHash('sha256').update(unit).digest('hex'),
        modelDir: modelDir(p),
        servedName: served,
        bind: p.bind,
        port: p.port,
        active: isActive,
        health: h.ok,
        models,
        /** Where the API key comes from: never the key, nor its hash. */
        apiKey: source === 'sealed' ? 'host-secrets' : 'made-on-host',
      },
    };
  },
});
