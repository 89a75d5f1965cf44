import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../shared/domain/errors';
import { AuditTrail } from './audit/audit';
import { Sessions } from './auth/sessions';
import { Users } from './auth/users';
import { openDatabase } from './db/db';
import { Dispatcher, Operations, type Handlers } from './dispatch';
import { HostsService } from './hosts/service';
import { fingerprintOfLine } from './ssh/fingerprint';
import { generateIdentity } from './ssh/identity';
import type { SshAuth } from './ssh/connection';
import { TerminalService } from './terminal/service';
import { DEFAULT_KDF, type KdfParams } from './vault/crypto';
import { Vault } from './vault/vault';
import type { ClientContext, Core, CoreConfig } from './types';

export const DB_FILE = 'airlock.db';
const IDENTITY_SECRET = 'ssh.identity.private';
const IDENTITY_PUBLIC = 'ssh.identity.public';

/**
 * The composition root: every service is built here, by hand, from the config.
 * Nothing in the core is a module-level singleton; tests build the same graph on a temp dir.
 */
export async function createCore(config: CoreConfig): Promise<Core> {
  const clock = config.clock ?? (() => new Date());
  const random = config.random ?? ((n: number) => crypto.randomBytes(n));
  const nowIso = () => clock().toISOString();
  const kdf: KdfParams = config.kdf ? { alg: 'argon2id', parallelism: 1, ...config.kdf } : DEFAULT_KDF;
  const version = config.version ?? '0.1.0';

  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = openDatabase(path.join(config.dataDir, DB_FILE));

  const audit = new AuditTrail(db, clock);
  const vault = new Vault({ db, kdf, random, now: nowIso });
  const users = new Users({ db, vault, kdf, now: nowIso });
  const sessions = new Sessions({ idleMs: (config.sessionIdleMinutes ?? 30) * 60_000, now: () => clock().getTime(), random });
  const ops = new Operations();
  const hosts = new HostsService({
    db,
    now: clock,
    timeoutMs: config.sshTimeoutMs ?? 15_000,
    concurrency: config.scanConcurrency ?? 32,
  });
  const terminals = new TerminalService({ hosts, random });

  const meta = {
    get: (k: string) => (db.prepare('SELECT value FROM meta WHERE key = ?').get(k) as { value: string } | undefined)?.value ?? null,
    set: (k: string, v: string) => db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(k, v),
  };

  /** Credentials for SSH: Airlock's own key (unsealed with this session's vault key), and the agent if configured. */
  const sshAuth = (sessionId: string): SshAuth => {
    const key = vault.getSecret(sessions.vaultKey(sessionId), IDENTITY_SECRET);
    return { privateKey: key?.toString('utf8'), agent: config.sshAgent ?? null };
  };

  const signIn = (client: ClientContext, u: { name: string; roles: import('../../shared/domain/roles').Role[]; vaultKey: Buffer }) => {
    if (client.session) sessions.close(client.session.id);
    client.session = sessions.open(u.name, u.roles, u.vaultKey);
    return users.view(u.name);
  };

  const handlers: Handlers = {
    'session:status': (ctx) => {
      const s = sessions.get(ctx.client.session?.id);
      return { setupRequired: users.count() === 0, user: s ? { name: s.user, roles: s.roles } : null, shell: config.shell, version };
    },
    'session:setup': async (ctx, input) => {
      const u = await users.createFirst(input.admin, input.password, (vaultKey) => {
        const id = generateIdentity(`airlock@${input.admin}`);
        vault.putSecret(vaultKey, IDENTITY_SECRET, Buffer.from(id.privateKey, 'utf8'));
        meta.set(IDENTITY_PUBLIC, id.publicKey);
      });
      return signIn(ctx.client, u);
    },
    'session:login': async (ctx, input) => signIn(ctx.client, await users.authenticate(input.name, input.password)),
    'session:logout': (ctx) => {
      terminals.closeAllFor(ctx.client);
      sessions.close(ctx.requireSession().id);
      ctx.client.session = null;
      return {};
    },
    'users:list': () => users.list(),
    'users:create': (ctx, input) => users.create(input.name, input.password, input.roles, sessions.vaultKey(ctx.requireSession().id)),
    'identity:show': () => {
      const publicKey = meta.get(IDENTITY_PUBLIC);
      if (!publicKey) throw new AirlockError('SETUP_REQUIRED', 'Airlock has no SSH identity yet: run the first-run setup.');
      return {
        publicKey,
        fingerprint: fingerprintOfLine(publicKey)?.fingerprint ?? '',
        agent: { available: Boolean(config.sshAgent), socket: config.sshAgent ?? null },
      };
    },
    'hosts:probe': (ctx, input) => hosts.probe(input.address, input.port, ctx.signal),
    'hosts:add': (ctx, input) => hosts.add(input, ctx.signal),
    'hosts:confirm': (ctx, input) => hosts.confirm(input.name, input.fingerprint, ctx.signal),
    'hosts:remove': (_ctx, input) => (hosts.remove(input.name), {}),
    'hosts:list': () => hosts.list(),
    'hosts:scan': (ctx, input) => hosts.scan(input.names, sshAuth(ctx.requireSession().id), ctx.signal, input.timeoutMs),
    'hosts:importKnownHosts': (_ctx, input) => hosts.importKnownHosts(input.text, input.user),
    'hosts:importSshConfig': (_ctx, input) => hosts.importSshConfig(input.text),
    'ops:cancel': (ctx, input) => ({ cancelled: ops.cancel(ctx.client, input.requestId) }),
    'terminal:open': (ctx, input) =>
      terminals.start(ctx.client, input.host, input.cols, input.rows, sshAuth(ctx.requireSession().id), ctx.signal),
    'terminal:input': (ctx, input) => (terminals.write(ctx.client, input.id, input.data), {}),
    'terminal:resize': (ctx, input) => (terminals.resize(ctx.client, input.id, input.cols, input.rows), {}),
    'terminal:close': (ctx, input) => (terminals.close(ctx.client, input.id), {}),
    'audit:list': (_ctx, input) => audit.list(input),
    'audit:verify': () => audit.verify(),
  };

  const dispatcher = new Dispatcher({ handlers, audit, sessions, ops });
  let clients = 0;

  return {
    config: { ...config },
    newClient({ shell, source, emit }) {
      return { id: `c${++clients}-${random(6).toString('hex')}`, shell, source, session: null, emit: emit ?? (() => {}) };
    },
    dispatch: (client, channel, input) => dispatcher.dispatch(client, channel, input),
    async closeClient(client) {
      ops.cancelAll(client);
      terminals.closeAllFor(client);
      if (client.session) sessions.close(client.session.id);
      client.session = null;
    },
    async close() {
      terminals.closeAll();
      sessions.closeAll();
      db.close();
    },
  };
}
