import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../db/db';
import { DEFAULT_LOCKOUT, MACHINE_KEY, Throttle, isThisMachine, machineLimit, sourceKey, throttleKeys, userKey } from './throttle';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function setup(): { db: Db; file: string; clock: { now: number }; throttle: Throttle } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-throttle-'));
  dirs.push(d);
  const file = path.join(d, 'airlock.db');
  const db = openDatabase(file);
  const clock = { now: Date.UTC(2026, 0, 1) };
  return { db, file, clock, throttle: new Throttle({ db, now: () => clock.now, policy: DEFAULT_LOCKOUT }) };
}

describe('sign-in throttling', () => {
  it('locks after 5 failures for 30 s, doubling per further failure up to 15 min', () => {
    const { throttle, clock } = setup();
    const keys = [userKey('alice'), sourceKey('cli', 'test')];
    for (let i = 1; i <= 4; i++) expect(throttle.fail(keys, 'Wrong.'), `failure ${i}`).toBeNull();
    const locked = throttle.fail(keys, 'Wrong user name or password.');
    expect(locked).toMatchObject({ code: 'LOCKED_OUT' });
    expect(locked!.message).toBe(
      'Wrong user name or password. Too many failed sign-ins for "alice": try again in 30 s, after 2026-01-01T00:00:30.000Z.',
    );
    expect(() => throttle.assertOpen(keys)).toThrow(/try again in 30 s/);
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      clock.now = throttle.locked(keys)!.until; // the lock ends: one more attempt, one more failure
      expect(() => throttle.assertOpen(keys)).not.toThrow();
      throttle.fail(keys, 'Wrong.');
      waits.push((throttle.locked(keys)!.until - clock.now) / 1000);
    }
    expect(waits).toEqual([60, 120, 240, 480, 900, 900, 900]);
  });

  it('counts per user name and per source independently', () => {
    const { throttle } = setup();
    for (let i = 0; i < 5; i++) throttle.fail([userKey('alice'), sourceKey('browser', '127.0.0.1')], 'x');
    // Another source is locked out of alice; the same source is locked out of everyone.
    expect(() => throttle.assertOpen([userKey('alice'), sourceKey('cli', 'pid 9')])).toThrow(/for "alice"/);
    expect(() => throttle.assertOpen([userKey('bob'), sourceKey('browser', '127.0.0.1')])).toThrow(/from this client \(browser:127.0.0.1\)/);
    expect(() => throttle.assertOpen([userKey('bob'), sourceKey('cli', 'pid 9')])).not.toThrow();
  });

  it("an administrator's unlock lifts loopback source locks (browser tabs) but not remote ones", () => {
    const { throttle } = setup();
    for (let i = 0; i < 5; i++) {
      throttle.fail([userKey('mallory'), sourceKey('browser', '127.0.0.1')], 'x');
      throttle.fail([userKey('mallory'), sourceKey('browser', '10.1.2.3')], 'x');
    }
    throttle.clearLoopbackSources();
    expect(() => throttle.assertOpen([userKey('bob'), sourceKey('browser', '127.0.0.1')])).not.toThrow();
    expect(() => throttle.assertOpen([userKey('bob'), sourceKey('browser', '10.1.2.3')])).toThrow(/LOCKED_OUT|from this client/);
  });

  it('forgets failures on success, and is shared by every process using the database', () => {
    const { throttle, file, clock } = setup();
    const keys = [userKey('alice')];
    for (let i = 0; i < 4; i++) throttle.fail(keys, 'x');
    throttle.succeed(keys);
    for (let i = 0; i < 4; i++) expect(throttle.fail(keys, 'x')).toBeNull();
    // A second handle (another CLI run) sees and adds to the same count.
    const other = openDatabase(file);
    const second = new Throttle({ db: other, now: () => clock.now, policy: DEFAULT_LOCKOUT });
    expect(second.fail(keys, 'x')).toMatchObject({ code: 'LOCKED_OUT' });
    expect(() => throttle.assertOpen(keys)).toThrow(/LOCKED_OUT|Too many/);
    other.close();
  });

  it('forgets old failures after a day without any', () => {
    const { throttle, clock } = setup();
    const keys = [userKey('alice')];
    for (let i = 0; i < 4; i++) throttle.fail(keys, 'x');
    clock.now += 25 * 60 * 60_000;
    for (let i = 0; i < 4; i++) expect(throttle.fail(keys, 'x')).toBeNull();
  });

  it('counts every browser tab, Electron window and CLI run as this machine; other addresses as other machines', () => {
    for (const [shell, source] of [['browser', '127.0.0.1'], ['browser', '127.4.5.6'], ['browser', '::1'], ['browser', '::ffff:127.0.0.1'], ['electron', 'electron:window-3'], ['cli', 'pid 42']] as const) {
      expect(isThisMachine(shell, source), `${shell} ${source}`).toBe(true);
    }
    for (const source of ['10.1.2.3', '::ffff:10.1.2.3', '128.0.0.1', '127.0.0.1.evil', 'test', '']) expect(isThisMachine('browser', source), source).toBe(false);
    // The keys a check counts on: the account, and this machine's bucket (sign-in) or the other machine.
    expect(throttleKeys({ shell: 'browser', source: '127.0.0.1' }, 'alice', { machine: true })).toEqual([userKey('alice'), MACHINE_KEY]);
    expect(throttleKeys({ shell: 'browser', source: '127.0.0.1' }, 'alice', { machine: false })).toEqual([userKey('alice')]);
    expect(throttleKeys({ shell: 'browser', source: '10.1.2.3' }, 'alice', { machine: true })).toEqual([userKey('alice'), sourceKey('browser', '10.1.2.3')]);
  });

  it("rate-limits this machine's failed sign-ins as a leaky bucket: a burst of 4 × threshold, then one per first-lock length", () => {
    const { throttle, clock } = setup();
    expect(machineLimit(DEFAULT_LOCKOUT)).toEqual({ burst: 20, everyMs: 30_000 });
    // Twenty names, one guess each (no account reaches its own threshold): the twentieth fills the bucket.
    for (let i = 1; i < 20; i++) expect(throttle.fail([userKey(`name${i}`), MACHINE_KEY], 'Wrong.'), `guess ${i}`).toBeNull();
    const full = throttle.fail([userKey('name20'), MACHINE_KEY], 'Wrong user name or password.');
    expect(full?.message).toBe(
      'Wrong user name or password. Too many failed sign-ins on this machine (all accounts together): try again in 30 s, after 2026-01-01T00:00:30.000Z.',
    );
    // The same answer whatever the name, known or not.
    expect(() => throttle.assertOpen([userKey('anyone'), MACHINE_KEY])).toThrow(/on this machine/);
    // A success does not empty it (one's own account buys no guesses at other names)…
    throttle.succeed([userKey('alice'), MACHINE_KEY]);
    expect(() => throttle.assertOpen([userKey('alice'), MACHINE_KEY])).toThrow(/on this machine/);
    // …time does: one more guess per 30 s.
    clock.now += 30_000;
    expect(() => throttle.assertOpen([userKey('anyone'), MACHINE_KEY])).not.toThrow();
    expect(throttle.fail([userKey('name21'), MACHINE_KEY], 'x')).toMatchObject({ code: 'LOCKED_OUT' });
    clock.now += 10 * 30_000; // ten leak out
    for (let i = 0; i < 9; i++) expect(throttle.fail([userKey(`later${i}`), MACHINE_KEY], 'x')).toBeNull();
    // An administrator's unlock empties it.
    throttle.clearLoopbackSources();
    expect(throttle.locked([MACHINE_KEY])).toBeNull();
  });
});

