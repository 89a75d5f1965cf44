import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCore } from '../../electron/core/app';
import type { ClientContext, Core, CoreConfig, ShellKind } from '../../electron/core/types';
import type { ChannelName, In, Out } from '../../shared/contract/index';
import type { Result } from '../../shared/domain/errors';

/** Cheap Argon2id for tests only; production keeps OWASP's parameters. */
export const TEST_KDF = { memoryKiB: 1024, iterations: 1 };

export interface TestCore {
  core: Core;
  dir: string;
  client(shell?: ShellKind): TestClient;
  close(): Promise<void>;
}

export interface TestClient {
  ctx: ClientContext;
  events: Array<{ event: string; payload: unknown }>;
  call<C extends ChannelName>(channel: C, input: In<C> | Record<string, unknown>): Promise<Result<Out<C>>>;
  /** Like call, but throws on a refusal: for steps that must succeed. */
  ok<C extends ChannelName>(channel: C, input: In<C> | Record<string, unknown>): Promise<Out<C>>;
}

/**
 * The same composition root the shells use, on a temp data dir.
 * TOTP is not required by default here (as with the shells' AIRLOCK_TOTP_POLICY=off), so tests of
 * other areas can sign in with a password; identity tests pass `requireTotpFor` explicitly.
 */
export async function testCore(config: Partial<CoreConfig> = {}): Promise<TestCore> {
  const dir = config.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-core-'));
  const core = await createCore({ shell: 'cli', kdf: TEST_KDF, sshTimeoutMs: 5000, requireTotpFor: [], ...config, dataDir: dir });
  return {
    core,
    dir,
    client(shell: ShellKind = 'cli') {
      const events: Array<{ event: string; payload: unknown }> = [];
      const ctx = core.newClient({ shell, source: 'test', emit: (event, payload) => events.push({ event, payload }) });
      const call = ((channel: ChannelName, input: unknown) => core.dispatch(ctx, channel, input)) as TestClient['call'];
      return {
        ctx,
        events,
        call,
        async ok(channel, input) {
          const r = await call(channel, input);
          if (!r.ok) throw new Error(`${channel} failed: ${r.error.code}: ${r.error.message}`);
          return r.value;
        },
      };
    },
    async close() {
      await core.close();
      if (!config.dataDir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const ADMIN = { admin: 'alice', password: 'correct horse battery staple' };
