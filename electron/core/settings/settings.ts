import type { Role } from '../../../shared/domain/roles';
import type { Settings as SettingsView } from '../../../shared/contract/settings';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import type { LockoutPolicy } from '../session/throttle';

const IDLE_KEY = 'settings.sessionIdleMinutes';
const STEP_UP_KEY = 'settings.stepUpMinutes';
type SettingKey = typeof IDLE_KEY | typeof STEP_UP_KEY;

/**
 * Identity settings an administrator may change at run time (idle lock, step-up window),
 * stored in `meta` so every shell on the database uses the same values. The config gives
 * the defaults; lockout and the TOTP policy stay in the config (shown read-only).
 */
export class IdentitySettings {
  constructor(
    private readonly deps: {
      db: Db;
      defaults: { sessionIdleMinutes: number; stepUpMinutes: number };
      lockout: LockoutPolicy;
      requireTotpFor: readonly Role[];
    },
  ) {}

  get(): SettingsView {
    return {
      sessionIdleMinutes: this.read(IDLE_KEY) ?? this.deps.defaults.sessionIdleMinutes,
      stepUpMinutes: this.read(STEP_UP_KEY) ?? this.deps.defaults.stepUpMinutes,
      lockout: {
        threshold: this.deps.lockout.threshold,
        baseSeconds: Math.round(this.deps.lockout.baseMs / 1000),
        maxSeconds: Math.round(this.deps.lockout.maxMs / 1000),
      },
      totpRequiredFor: [...this.deps.requireTotpFor],
    };
  }

  set(change: { sessionIdleMinutes?: number; stepUpMinutes?: number }): SettingsView {
    this.deps.db
      .transaction(() => {
        if (change.sessionIdleMinutes !== undefined) this.write(IDLE_KEY, change.sessionIdleMinutes);
        if (change.stepUpMinutes !== undefined) this.write(STEP_UP_KEY, change.stepUpMinutes);
      })
      .immediate();
    return this.get();
  }

  idleMs(): number {
    return this.get().sessionIdleMinutes * 60_000;
  }

  stepUpMs(): number {
    return this.get().stepUpMinutes * 60_000;
  }

  /** A value that is not a positive integer falls back to the config's default, as an absent one does. */
  private read(key: SettingKey): number | null {
    return meta(this.deps.db).getIfValid(key);
  }

  private write(key: SettingKey, value: number): void {
    meta(this.deps.db).set(key, value);
  }
}
