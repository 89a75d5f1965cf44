import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { UserView } from '../../../shared/contract/session';
import type { Db } from '../db/db';
import { hashPassword, verifyPassword, type KdfParams } from '../vault/crypto';
import type { Vault } from '../vault/vault';

interface UserRow {
  id: number;
  name: string;
  roles: string;
  password_hash: string;
  created_at: string;
  disabled: number;
}

export interface UnlockedUser {
  id: number;
  name: string;
  roles: Role[];
  vaultKey: Buffer;
}

export interface UsersDeps {
  db: Db;
  vault: Vault;
  kdf: KdfParams;
  now: () => string;
}

/**
 * Local users. A password both proves identity (Argon2id hash) and unwraps the
 * user's vault slot, so a successful login always yields the vault key.
 */
export class Users {
  private dummyHash: Promise<string> | null = null;

  constructor(private readonly deps: UsersDeps) {}

  count(): number {
    return (this.deps.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  list(): UserView[] {
    return (this.deps.db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[]).map(view);
  }

  /**
   * First run: the first admin, a fresh vault key and its first slot, all or nothing.
   * `init` receives the vault key to seal what the installation needs (the SSH identity).
   */
  async createFirst(name: string, password: string, init: (vaultKey: Buffer) => void): Promise<UnlockedUser> {
    const hash = await hashPassword(password, this.deps.kdf);
    const vaultKey = this.deps.vault.newVaultKey();
    const slot = await this.deps.vault.prepareSlot(password, vaultKey);
    const userId = this.deps.db
      .transaction(() => {
        if (this.count() > 0) throw new AirlockError('SETUP_DONE', 'Airlock is already set up; sign in instead.');
        const id = this.insert(name, ['admin'], hash);
        this.deps.vault.storeSlot(id, slot);
        init(vaultKey);
        return id;
      })
      .immediate();
    return { id: userId, name, roles: ['admin'], vaultKey };
  }

  async create(name: string, password: string, roles: Role[], vaultKey: Buffer): Promise<UserView> {
    const hash = await hashPassword(password, this.deps.kdf);
    const slot = await this.deps.vault.prepareSlot(password, vaultKey);
    const userId = this.deps.db
      .transaction(() => {
        if (this.deps.db.prepare('SELECT 1 FROM users WHERE name = ?').get(name)) {
          throw new AirlockError('CONFLICT', `A user named "${name}" already exists.`);
        }
        const id = this.insert(name, dedupe(roles), hash);
        this.deps.vault.storeSlot(id, slot);
        return id;
      })
      .immediate();
    return view(this.deps.db.prepare('SELECT * FROM users WHERE id = ?').get(userId) as UserRow);
  }

  async authenticate(name: string, password: string): Promise<UnlockedUser> {
    const row = this.deps.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    if (!row || row.disabled) {
      // Same work either way, so timing does not tell which user names exist.
      this.dummyHash ??= hashPassword('airlock-dummy-password', this.deps.kdf);
      await verifyPassword(await this.dummyHash, password);
      throw new AirlockError('BAD_CREDENTIALS', 'Wrong user name or password.');
    }
    if (!(await verifyPassword(row.password_hash, password))) {
      throw new AirlockError('BAD_CREDENTIALS', 'Wrong user name or password.');
    }
    const vaultKey = await this.deps.vault.unlock(row.id, password);
    return { id: row.id, name: row.name, roles: JSON.parse(row.roles) as Role[], vaultKey };
  }

  view(name: string): UserView {
    const row = this.deps.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    if (!row) throw new AirlockError('NOT_FOUND', `No user named "${name}".`);
    return view(row);
  }

  private insert(name: string, roles: Role[], hash: string): number {
    return Number(
      this.deps.db
        .prepare('INSERT INTO users (name, roles, password_hash, created_at) VALUES (?, ?, ?, ?)')
        .run(name, JSON.stringify(roles), hash, this.deps.now()).lastInsertRowid,
    );
  }
}

function view(row: UserRow): UserView {
  return {
    name: row.name,
    roles: JSON.parse(row.roles) as Role[],
    createdAt: row.created_at,
    disabled: row.disabled === 1,
  };
}

function dedupe(roles: Role[]): Role[] {
  return [...new Set(roles)];
}
