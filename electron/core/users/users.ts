import crypto from 'node:crypto';
import { AirlockError } from '../../../shared/domain/errors';
import { passwordProblem } from '../../../shared/domain/password-policy';
import type { Role } from '../../../shared/domain/roles';
import type { UserView } from '../../../shared/contract/users';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import { hashPassword, verifyPassword, type KdfParams } from '../vault/crypto';
import type { Vault } from '../vault/vault';

export interface UserRow {
  id: number;
  /** The account identity: random, immutable, never given to another account (migration 0004). */
  uid: string;
  name: string;
  roles: string;
  password_hash: string;
  created_at: string;
  disabled: number;
  created_by: number | null;
  created_seq: number;
  roles_seq: number;
  cred_seq: number;
  auth_epoch: number;
  must_change_password: number;
  password_changed_at: string | null;
  last_login_at: string | null;
  disabled_at: string | null;
}

interface ViewRow extends UserRow {
  created_by_name: string | null;
  totp_enrolled: number;
}

export interface UnlockedUser {
  id: number;
  uid: string;
  name: string;
  roles: Role[];
  vaultKey: Buffer;
  epoch: number;
}

/** What a live session needs to know about its user on every call. */
export interface UserState {
  id: number;
  uid: string;
  name: string;
  roles: Role[];
  disabled: boolean;
  epoch: number;
  mustChangePassword: boolean;
  totpEnrolled: boolean;
}

export interface UsersDeps {
  db: Db;
  vault: Vault;
  kdf: KdfParams;
  now: () => string;
  /** The running sign-in lockout of a user name (ISO end), for the users list. */
  lockedUntil?: (name: string) => string | null;
}

/** Who is acting, for the checks that protect the last admin and one's own account. */
export interface Actor {
  id: number;
  name: string;
}

/**
 * An account as an approval binds it: its identity and every counter that moves when its
 * credentials, roles, sessions or enablement change. A request about an account executes only on
 * the same account in the same state (not on another account that took its name, nor on one whose
 * password someone reset meanwhile).
 */
export interface AccountState {
  uid: string;
  epoch: number;
  rolesSeq: number;
  credSeq: number;
  disabled: boolean;
}

export function accountState(row: UserRow): AccountState {
  return { uid: row.uid, epoch: row.auth_epoch, rolesSeq: row.roles_seq, credSeq: row.cred_seq, disabled: row.disabled === 1 };
}

/** Why the account named `name` is not the one (or not in the state) `expected` describes, or null. */
export function accountChange(name: string, row: UserRow | null, expected: AccountState): string | null {
  if (!row) return `the account "${name}" no longer exists`;
  if (row.uid !== expected.uid) return `"${name}" is no longer the same account (it was removed and another was created with its name)`;
  const now = accountState(row);
  if (now.disabled !== expected.disabled) return `"${name}" was ${now.disabled ? 'disabled' : 're-enabled'} since`;
  if (now.credSeq !== expected.credSeq) return `an administrator set "${name}"'s password or TOTP since`;
  if (now.rolesSeq !== expected.rolesSeq) return `"${name}"'s roles changed since`;
  if (now.epoch !== expected.epoch) return `"${name}"'s credentials or sessions changed since`;
  return null;
}

const VIEW_SQL = `SELECT u.*, c.name AS created_by_name,
    (t.sealed_secret IS NOT NULL) AS totp_enrolled
  FROM users u LEFT JOIN users c ON c.id = u.created_by LEFT JOIN user_totp t ON t.user_id = u.id`;

/**
 * Local users. A password both proves identity (Argon2id hash) and unwraps the
 * user's vault slot, so a successful login always yields the vault key.
 *
 * Every identity change that matters to the two-person rule (an account created, roles changed,
 * credentials set by someone else) stamps the user with the next value of a counter kept in
 * `meta` ('identity.seq'); an approval request records the counter when filed.
 */
export class Users {
  private dummyHash: Promise<string> | null = null;

  constructor(private readonly deps: UsersDeps) {}

  count(): number {
    return (this.deps.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  list(): UserView[] {
    return (this.deps.db.prepare(`${VIEW_SQL} ORDER BY u.name`).all() as ViewRow[]).map((r) => this.toView(r));
  }

  view(name: string): UserView {
    const row = this.deps.db.prepare(`${VIEW_SQL} WHERE u.name = ?`).get(name) as ViewRow | undefined;
    if (!row) throw new AirlockError('NOT_FOUND', `No user named "${name}".`);
    return this.toView(row);
  }

  row(name: string): UserRow {
    const row = this.deps.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    if (!row) throw new AirlockError('NOT_FOUND', `No user named "${name}".`);
    return row;
  }

  rowById(id: number): UserRow | null {
    return (this.deps.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined) ?? null;
  }

  state(id: number): UserState | null {
    const r = this.deps.db
      .prepare(
        `SELECT u.id, u.uid, u.name, u.roles, u.disabled, u.auth_epoch, u.must_change_password,
           (t.sealed_secret IS NOT NULL) AS totp_enrolled
         FROM users u LEFT JOIN user_totp t ON t.user_id = u.id WHERE u.id = ?`,
      )
      .get(id) as
      | { id: number; uid: string; name: string; roles: string; disabled: number; auth_epoch: number; must_change_password: number; totp_enrolled: number }
      | undefined;
    if (!r) return null;
    return {
      id: r.id,
      uid: r.uid,
      name: r.name,
      roles: JSON.parse(r.roles) as Role[],
      disabled: r.disabled === 1,
      epoch: r.auth_epoch,
      mustChangePassword: r.must_change_password === 1,
      totpEnrolled: r.totp_enrolled === 1,
    };
  }

  /** The identity counter now (what an approval request records when filed). */
  identitySeq(): number {
    return meta(this.deps.db).get('identity.seq') ?? 0;
  }

  /** Inside a transaction: the next identity counter value. */
  private nextSeq(): number {
    const next = this.identitySeq() + 1;
    meta(this.deps.db).set('identity.seq', next);
    return next;
  }

  /**
   * First run: the first admin, a fresh vault key and its first slot, all or nothing.
   * `init` receives the vault key to seal what the installation needs (the SSH identity).
   */
  async createFirst(name: string, password: string, init: (vaultKey: Buffer) => void): Promise<UnlockedUser> {
    checkPolicy(password, name);
    const hash = await hashPassword(password, this.deps.kdf);
    const vaultKey = this.deps.vault.newVaultKey();
    const slot = await this.deps.vault.prepareSlot(password, vaultKey);
    const made = this.deps.db
      .transaction(() => {
        if (this.count() > 0) throw new AirlockError('SETUP_DONE', 'Airlock is already set up; sign in instead.');
        const id = this.insert(name, ['admin'], hash, null, false);
        this.deps.vault.storeSlot(id, slot);
        init(vaultKey);
        return this.rowById(id) as UserRow;
      })
      .immediate();
    return { id: made.id, uid: made.uid, name, roles: ['admin'], vaultKey, epoch: made.auth_epoch };
  }

  async create(
    actor: Actor,
    name: string,
    password: string,
    roles: Role[],
    vaultKey: Buffer,
    opts: { mustChangePassword: boolean },
  ): Promise<UserView> {
    checkPolicy(password, name);
    const hash = await hashPassword(password, this.deps.kdf);
    const slot = await this.deps.vault.prepareSlot(password, vaultKey);
    this.deps.db
      .transaction(() => {
        if (this.deps.db.prepare('SELECT 1 FROM users WHERE name = ?').get(name)) {
          throw new AirlockError('CONFLICT', `A user named "${name}" already exists.`);
        }
        const id = this.insert(name, dedupe(roles), hash, actor.id, opts.mustChangePassword);
        this.deps.vault.storeSlot(id, slot);
      })
      .immediate();
    return this.view(name);
  }

  /** Password check and vault unlock. Unknown and disabled users cost the same work and get the same answer. */
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
    return { id: row.id, uid: row.uid, name: row.name, roles: JSON.parse(row.roles) as Role[], vaultKey, epoch: row.auth_epoch };
  }

  /** The password alone (step-up, changing one's own password): no vault work. Only the account `uid` names. */
  async checkPassword(id: number, uid: string, password: string): Promise<boolean> {
    const row = this.rowById(id);
    if (!row || row.uid !== uid || row.disabled) return false;
    return verifyPassword(row.password_hash, password);
  }

  recordLogin(id: number): void {
    this.deps.db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?').run(this.deps.now(), id);
  }

  /**
   * A user's own new password: new hash and a new slot wrapping the vault key this session holds.
   * Other sessions of the user end (the epoch moves); the caller keeps its own. Returns the new epoch.
   */
  async changeOwnPassword(id: number, newPassword: string, vaultKey: Buffer): Promise<number> {
    const row = this.rowById(id);
    if (!row) throw new AirlockError('NOT_FOUND', 'Your account no longer exists.');
    checkPolicy(newPassword, row.name);
    if (await verifyPassword(row.password_hash, newPassword)) {
      throw new AirlockError('WEAK_PASSWORD', 'Choose a password different from the current one.');
    }
    const hash = await hashPassword(newPassword, this.deps.kdf);
    const slot = await this.deps.vault.prepareSlot(newPassword, vaultKey);
    return this.deps.db
      .transaction(() => {
        this.deps.db
          .prepare(
            `UPDATE users SET password_hash = ?, must_change_password = 0, password_changed_at = ?,
               auth_epoch = auth_epoch + 1 WHERE id = ?`,
          )
          .run(hash, this.deps.now(), id);
        this.deps.vault.storeSlot(id, slot);
        return (this.rowById(id) as UserRow).auth_epoch;
      })
      .immediate();
  }

  /** An administrator sets another user's password: a new slot, their sessions end, they must change it. */
  async resetPassword(actor: Actor, name: string, password: string, vaultKey: Buffer): Promise<UserView> {
    const target = this.row(name);
    if (target.id === actor.id) {
      throw new AirlockError('CONFLICT', 'To change your own password, use Change password on your account (it asks for the current one).');
    }
    if (target.disabled) throw new AirlockError('CONFLICT', `"${name}" is disabled: enable the account (with a new password) instead.`);
    checkPolicy(password, name);
    const hash = await hashPassword(password, this.deps.kdf);
    const slot = await this.deps.vault.prepareSlot(password, vaultKey);
    this.deps.db
      .transaction(() => {
        this.deps.db
          .prepare(
            `UPDATE users SET password_hash = ?, must_change_password = 1, password_changed_at = ?, cred_seq = ?,
               auth_epoch = auth_epoch + 1 WHERE id = ?`,
          )
          .run(hash, this.deps.now(), this.nextSeq(), target.id);
        this.deps.vault.storeSlot(target.id, slot);
      })
      .immediate();
    return this.view(name);
  }

  /** `expect`: an approved request's binding — the account must still be that one, in that state. */
  setRoles(name: string, roles: Role[], expect?: AccountState): UserView {
    const next = dedupe(roles);
    this.deps.db
      .transaction(() => {
        const target = this.row(name);
        if (expect) assertAccount(name, target, expect);
        const had = JSON.parse(target.roles) as Role[];
        if (had.includes('admin') && !next.includes('admin')) this.assertNotLastAdmin(target, 'lose the admin role');
        if (sameRoles(had, next)) return;
        this.deps.db.prepare('UPDATE users SET roles = ?, roles_seq = ? WHERE id = ?').run(JSON.stringify(next), this.nextSeq(), target.id);
      })
      .immediate();
    return this.view(name);
  }

  /**
   * Disabling destroys the user's vault key slot: their password no longer opens the vault even
   * with a copy of the database, and re-enabling needs a new password set by an administrator.
   */
  disable(actor: Actor, name: string): UserView {
    this.deps.db
      .transaction(() => {
        const target = this.row(name);
        if (target.disabled) return;
        this.assertNotLastAdmin(target, 'be disabled');
        if (target.id === actor.id) throw new AirlockError('CONFLICT', 'You cannot disable your own account.');
        this.deps.db
          .prepare('UPDATE users SET disabled = 1, disabled_at = ?, auth_epoch = auth_epoch + 1 WHERE id = ?')
          .run(this.deps.now(), target.id);
        this.deps.vault.destroySlot(target.id);
      })
      .immediate();
    return this.view(name);
  }

  async enable(name: string, password: string, vaultKey: Buffer, expect?: AccountState): Promise<UserView> {
    const target = this.row(name);
    if (expect) assertAccount(name, target, expect);
    if (!target.disabled) throw new AirlockError('CONFLICT', `"${name}" is not disabled.`);
    checkPolicy(password, name);
    const hash = await hashPassword(password, this.deps.kdf);
    const slot = await this.deps.vault.prepareSlot(password, vaultKey);
    this.deps.db
      .transaction(() => {
        const now = this.row(name);
        if (now.id !== target.id || now.uid !== target.uid) throw new AirlockError('CONFLICT', `"${name}" was removed and re-created meanwhile; nothing was changed.`);
        if (expect) assertAccount(name, now, expect);
        if (!now.disabled) throw new AirlockError('CONFLICT', `"${name}" is not disabled.`);
        this.deps.db
          .prepare(
            `UPDATE users SET disabled = 0, disabled_at = NULL, password_hash = ?, must_change_password = 1,
               password_changed_at = ?, cred_seq = ?, auth_epoch = auth_epoch + 1 WHERE id = ?`,
          )
          .run(hash, this.deps.now(), this.nextSeq(), target.id);
        this.deps.vault.storeSlot(target.id, slot);
      })
      .immediate();
    return this.view(name);
  }

  /** Removal deletes the account, its slot, TOTP seed and recovery codes (foreign keys cascade). */
  remove(actor: Actor, name: string): number {
    return this.deps.db
      .transaction(() => {
        const target = this.row(name);
        this.assertNotLastAdmin(target, 'be removed');
        if (target.id === actor.id) throw new AirlockError('CONFLICT', 'You cannot remove your own account.');
        this.deps.db.prepare('DELETE FROM users WHERE id = ?').run(target.id);
        return target.id;
      })
      .immediate();
  }

  /** An administrator removes another user's second factor (lost device); they enrol again. */
  resetTotp(actor: Actor, name: string): UserView {
    this.deps.db
      .transaction(() => {
        const target = this.row(name);
        if (target.id === actor.id) throw new AirlockError('CONFLICT', 'Your own authenticator is set up or removed from your account, not reset here.');
        this.deps.db.prepare('DELETE FROM user_totp WHERE user_id = ?').run(target.id);
        this.deps.db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(target.id);
        this.deps.db.prepare('UPDATE users SET cred_seq = ?, auth_epoch = auth_epoch + 1 WHERE id = ?').run(this.nextSeq(), target.id);
      })
      .immediate();
    return this.view(name);
  }

  private assertNotLastAdmin(target: UserRow, what: string): void {
    if (target.disabled || !(JSON.parse(target.roles) as Role[]).includes('admin')) return;
    const others = (this.deps.db.prepare('SELECT roles FROM users WHERE disabled = 0 AND id <> ?').all(target.id) as Array<{ roles: string }>).filter(
      (r) => (JSON.parse(r.roles) as Role[]).includes('admin'),
    ).length;
    if (others === 0) {
      throw new AirlockError(
        'CONFLICT',
        `"${target.name}" is the last enabled administrator and cannot ${what}: give another user the admin role first.`,
      );
    }
  }

  private insert(name: string, roles: Role[], hash: string, createdBy: number | null, mustChange: boolean): number {
    const seq = this.nextSeq();
    return Number(
      this.deps.db
        .prepare(
          `INSERT INTO users (uid, name, roles, password_hash, created_at, created_by, created_seq, roles_seq, must_change_password, password_changed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(crypto.randomUUID(), name, JSON.stringify(roles), hash, this.deps.now(), createdBy, seq, seq, mustChange ? 1 : 0, this.deps.now()).lastInsertRowid,
    );
  }

  private toView(row: ViewRow): UserView {
    return {
      name: row.name,
      roles: JSON.parse(row.roles) as Role[],
      createdAt: row.created_at,
      disabled: row.disabled === 1,
      createdBy: row.created_by_name,
      totpEnrolled: row.totp_enrolled === 1,
      mustChangePassword: row.must_change_password === 1,
      lastLoginAt: row.last_login_at,
      lockedUntil: this.deps.lockedUntil?.(row.name) ?? null,
    };
  }
}

function assertAccount(name: string, row: UserRow, expected: AccountState): void {
  const why = accountChange(name, row, expected);
  if (why) throw new AirlockError('CONFLICT', `The approved request was about another state of the account: ${why}; nothing was changed.`);
}

/** Throws WEAK_PASSWORD with the rule that failed. */
export function checkPolicy(password: string, name: string): void {
  const problem = passwordProblem(password, name);
  if (problem) throw new AirlockError('WEAK_PASSWORD', problem);
}

function dedupe(roles: Role[]): Role[] {
  return [...new Set(roles)];
}

function sameRoles(a: Role[], b: Role[]): boolean {
  return a.length === b.length && a.every((r) => b.includes(r));
}
