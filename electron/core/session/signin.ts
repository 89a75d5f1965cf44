import { AirlockError } from '../../../shared/domain/errors';
import { rolesInWords, type Role } from '../../../shared/domain/roles';
import type { RecoveryCodes, TotpEnrolment } from '../../../shared/contract/totp';
import type { Restriction } from '../../../shared/contract/session';
import type { UserView } from '../../../shared/contract/users';
import type { z } from 'zod';
import type { Db } from '../db/db';
import type { Vault } from '../vault/vault';
import type { ClientContext, SessionInfo } from '../types';
import { restrictionFor, totpRequired } from './policy';
import type { Sessions } from './sessions';
import { throttleKeys, type Throttle } from './throttle';
import {
  TOTP_ISSUER,
  TOTP_PARAMS,
  hashRecoveryCode,
  matchStep,
  newRecoveryCodes,
  newTotpSecret,
  qrSvg,
  svgDataUrl,
  totpUri,
} from '../totp/totp';
import type { UnlockedUser, Users } from '../users/users';

export interface IdentityDeps {
  db: Db;
  users: Users;
  vault: Vault;
  sessions: Sessions;
  throttle: Throttle;
  now: () => number;
  random: (n: number) => Buffer;
  requireTotpFor: readonly Role[];
}

export interface SecondFactor {
  totp?: string | undefined;
  recoveryCode?: string | undefined;
}

/** An enrolment not confirmed within this time must start again. */
const PENDING_TTL_MS = 15 * 60_000;

/**
 * Sign-in, step-up, one's own password and TOTP. Every attempt that checks a credential is
 * serialised per throttle key (the account; this machine or the other machine it comes from; see
 * `throttleKeys`), so parallel guesses cannot outrun the lockout counter, and throttled with
 * back-off. Step-up and password changes name a signed-in account (no name to guess): they count
 * on the account, not on this machine's bucket.
 */
export class Identity {
  private readonly mutex = new KeyedMutex();

  constructor(private readonly deps: IdentityDeps) {}

  restrictionOf(userId: number): Restriction | null {
    const s = this.deps.users.state(userId);
    return s ? restrictionFor(s, this.deps.requireTotpFor) : null;
  }

  totpRequiredFor(roles: readonly Role[]): boolean {
    return totpRequired(roles, this.deps.requireTotpFor);
  }

  recoveryCodesLeft(userId: number): number {
    return (this.deps.db.prepare('SELECT count(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL').get(userId) as { n: number }).n;
  }

  /** Password, then (when enrolled) a TOTP or recovery code; opens a session on the client. */
  async login(client: ClientContext, input: { name: string; password: string } & SecondFactor): Promise<UserView> {
    const keys = throttleKeys(client, input.name, { machine: true });
    return this.mutex.run(keys, async () => {
      this.deps.throttle.assertOpen(keys);
      let u: UnlockedUser;
      try {
        u = await this.deps.users.authenticate(input.name, input.password);
      } catch (e) {
        if (e instanceof AirlockError && e.code === 'BAD_CREDENTIALS') throw this.deps.throttle.fail(keys, e.message) ?? e;
        throw e;
      }
      try {
        this.secondFactor(u.id, u.vaultKey, input, keys);
      } catch (e) {
        u.vaultKey.fill(0);
        throw e;
      }
      this.deps.throttle.succeed(keys);
      this.deps.users.recordLogin(u.id);
      if (client.session) this.deps.sessions.close(client.session.id);
      client.session = this.deps.sessions.open({ ...u, restriction: this.restrictionOf(u.id) });
      return this.deps.users.view(u.name);
    });
  }

  /** Re-prove the password (and TOTP when enrolled) for sensitive channels. */
  async stepUp(client: ClientContext, session: SessionInfo, input: { password: string } & SecondFactor): Promise<{ stepUpUntil: string }> {
    const keys = throttleKeys(client, session.user, { machine: false });
    const userId = this.deps.sessions.userId(session.id);
    const uid = this.deps.sessions.uid(session.id);
    return this.mutex.run(keys, async () => {
      this.deps.throttle.assertOpen(keys);
      if (!(await this.deps.users.checkPassword(userId, uid, input.password))) {
        const wrong = new AirlockError('BAD_CREDENTIALS', 'Wrong password.');
        throw this.deps.throttle.fail(keys, wrong.message) ?? wrong;
      }
      this.secondFactor(userId, this.deps.sessions.vaultKey(session.id), input, keys);
      this.deps.throttle.succeed(keys);
      return { stepUpUntil: new Date(this.deps.sessions.markStepUp(session.id)).toISOString() };
    });
  }

  /** One's own password: the old one proves it is you; the slot is re-wrapped; other sessions end. */
  async changePassword(client: ClientContext, session: SessionInfo, oldPassword: string, newPassword: string): Promise<void> {
    const keys = throttleKeys(client, session.user, { machine: false });
    const userId = this.deps.sessions.userId(session.id);
    const uid = this.deps.sessions.uid(session.id);
    await this.mutex.run(keys, async () => {
      this.deps.throttle.assertOpen(keys);
      if (!(await this.deps.users.checkPassword(userId, uid, oldPassword))) {
        const wrong = new AirlockError('BAD_CREDENTIALS', 'The current password is wrong.');
        throw this.deps.throttle.fail(keys, wrong.message) ?? wrong;
      }
      this.deps.throttle.succeed(keys);
      const epoch = await this.deps.users.changeOwnPassword(userId, newPassword, this.deps.sessions.vaultKey(session.id));
      this.deps.sessions.adoptEpoch(session.id, epoch);
      this.deps.sessions.closeUser(userId, session.id);
      this.deps.sessions.markStepUp(session.id);
    });
  }

  // ---- TOTP ----------------------------------------------------------------

  async totpBegin(session: SessionInfo): Promise<z.input<typeof TotpEnrolment>> {
    const userId = this.deps.sessions.userId(session.id);
    const vaultKey = this.deps.sessions.vaultKey(session.id);
    const secret = newTotpSecret(this.deps.random);
    const sealed = this.deps.vault.sealValue(vaultKey, pendingContext(userId), Buffer.from(secret, 'utf8'));
    this.deps.db
      .prepare(
        `INSERT INTO user_totp (user_id, pending_secret, pending_at) VALUES (?, ?, ?)
         ON CONFLICT(user_id) DO UPDATE SET pending_secret = excluded.pending_secret, pending_at = excluded.pending_at`,
      )
      .run(userId, sealed, new Date(this.deps.now()).toISOString());
    const uri = totpUri(secret, session.user);
    const svg = await qrSvg(uri);
    return { secret, uri, qrSvg: svg, qrDataUrl: svgDataUrl(svg), issuer: TOTP_ISSUER, account: session.user, ...TOTP_PARAMS };
  }

  /** The first code proves the authenticator holds the secret; the secret becomes active. */
  totpConfirm(session: SessionInfo, code: string): z.input<typeof RecoveryCodes> {
    const userId = this.deps.sessions.userId(session.id);
    const vaultKey = this.deps.sessions.vaultKey(session.id);
    const row = this.deps.db.prepare('SELECT pending_secret, pending_at FROM user_totp WHERE user_id = ?').get(userId) as
      | { pending_secret: Buffer | null; pending_at: string | null }
      | undefined;
    if (!row?.pending_secret || !row.pending_at) throw new AirlockError('CONFLICT', 'No authenticator set-up is in progress: start it again.');
    if (this.deps.now() - Date.parse(row.pending_at) > PENDING_TTL_MS) {
      throw new AirlockError('CONFLICT', 'This authenticator set-up is older than 15 minutes: start it again.');
    }
    const secret = this.deps.vault.openValue(vaultKey, pendingContext(userId), row.pending_secret)?.toString('utf8');
    if (!secret) throw new AirlockError('INTERNAL', 'The pending TOTP secret could not be opened: the vault data was altered.');
    const step = matchStep(secret, code, this.deps.now());
    if (step === null) {
      throw new AirlockError('BAD_CREDENTIALS', 'That code does not match: check the authenticator’s clock and enter the current code.');
    }
    const codes = newRecoveryCodes(this.deps.random);
    this.deps.db
      .transaction(() => {
        this.deps.db
          .prepare(
            `UPDATE user_totp SET sealed_secret = ?, enrolled_at = ?, last_step = ?, pending_secret = NULL, pending_at = NULL
             WHERE user_id = ?`,
          )
          .run(this.deps.vault.sealValue(vaultKey, activeContext(userId), Buffer.from(secret, 'utf8')), new Date(this.deps.now()).toISOString(), step, userId);
        this.storeRecoveryCodes(userId, codes);
      })
      .immediate();
    return { recoveryCodes: codes };
  }

  regenerateRecoveryCodes(session: SessionInfo): z.input<typeof RecoveryCodes> {
    const userId = this.deps.sessions.userId(session.id);
    if (!this.enrolled(userId)) throw new AirlockError('CONFLICT', 'Recovery codes come with an authenticator app: set one up first.');
    const codes = newRecoveryCodes(this.deps.random);
    this.deps.db.transaction(() => this.storeRecoveryCodes(userId, codes)).immediate();
    return { recoveryCodes: codes };
  }

  totpDisable(session: SessionInfo): void {
    const userId = this.deps.sessions.userId(session.id);
    if (!this.enrolled(userId)) throw new AirlockError('CONFLICT', 'You have no TOTP enrolled.');
    if (this.totpRequiredFor(session.roles)) {
      throw new AirlockError(
        'CONFLICT',
        `The policy requires a second factor for ${rolesInWords(session.roles.filter((r) => this.deps.requireTotpFor.includes(r)))}, so it cannot be removed: set up your new device instead.`,
      );
    }
    this.deps.db
      .transaction(() => {
        this.deps.db.prepare('DELETE FROM user_totp WHERE user_id = ?').run(userId);
        this.deps.db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
      })
      .immediate();
  }

  enrolled(userId: number): boolean {
    return Boolean(this.deps.db.prepare('SELECT 1 FROM user_totp WHERE user_id = ? AND sealed_secret IS NOT NULL').get(userId));
  }

  /**
   * Throws TOTP_REQUIRED when the user has TOTP and sent neither code, and BAD_CREDENTIALS (or
   * LOCKED_OUT) for a wrong, replayed or used code. Accepting a code moves the user's last
   * accepted step (or marks the recovery code used) in the same statement that checks it, so
   * two shells cannot both accept one code.
   */
  private secondFactor(userId: number, vaultKey: Buffer, f: SecondFactor, keys: string[]): void {
    const row = this.deps.db.prepare('SELECT sealed_secret FROM user_totp WHERE user_id = ?').get(userId) as
      | { sealed_secret: Buffer | null }
      | undefined;
    if (!row?.sealed_secret) return;
    if (!f.totp && !f.recoveryCode) {
      throw new AirlockError('TOTP_REQUIRED', 'Enter the 6-digit code from your authenticator app (or a recovery code).');
    }
    let ok = false;
    if (f.totp) {
      const secret = this.deps.vault.openValue(vaultKey, activeContext(userId), row.sealed_secret)?.toString('utf8');
      if (!secret) throw new AirlockError('INTERNAL', 'The TOTP secret could not be opened: the vault data was altered.');
      const step = matchStep(secret, f.totp, this.deps.now());
      ok =
        step !== null &&
        this.deps.db.prepare('UPDATE user_totp SET last_step = ? WHERE user_id = ? AND last_step < ?').run(step, userId, step).changes === 1;
    } else if (f.recoveryCode) {
      ok =
        this.deps.db
          .prepare('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL')
          .run(new Date(this.deps.now()).toISOString(), userId, hashRecoveryCode(userId, f.recoveryCode)).changes === 1;
    }
    if (!ok) {
      const wrong = new AirlockError('BAD_CREDENTIALS', f.totp ? 'Wrong or already used code.' : 'Wrong or already used recovery code.');
      throw this.deps.throttle.fail(keys, wrong.message) ?? wrong;
    }
  }

  private storeRecoveryCodes(userId: number, codes: string[]): void {
    this.deps.db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
    const insert = this.deps.db.prepare('INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)');
    const at = new Date(this.deps.now()).toISOString();
    for (const c of codes) insert.run(userId, hashRecoveryCode(userId, c), at);
  }
}

const pendingContext = (userId: number) => `totp-pending:${userId}`;
const activeContext = (userId: number) => `totp:${userId}`;

/** Runs one task at a time per key (a task holding several keys waits for all of them). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    const before = keys.map((k) => this.tails.get(k) ?? Promise.resolve());
    const result = Promise.allSettled(before).then(task);
    const tail = result.catch(() => undefined);
    for (const k of keys) this.tails.set(k, tail);
    try {
      return await result;
    } finally {
      for (const k of keys) if (this.tails.get(k) === tail) this.tails.delete(k);
    }
  }
}
