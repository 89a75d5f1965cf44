/**
 * TOTP second factor, end to end through the real core: policy, enrolment (secret once, URI,
 * locally rendered QR), sign-in with TOTP_REQUIRED, ±1 step drift, replay refusal, recovery codes,
 * step-up with TOTP, and the seed sealed in the vault — with an injected clock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../electron/core/app';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

let now = Date.UTC(2026, 0, 1, 9, 0, 0);
const clock = () => new Date(now);
const later = (ms: number) => (now += ms);
let t: TestCore;

/** What the user's phone shows at a moment (any RFC 6238 authenticator). */
const phone = (secret: string, at = now) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: at });
const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);

beforeEach(async () => {
  now = Date.UTC(2026, 0, 1, 9, 0, 0);
  t = await testCore({ clock, requireTotpFor: ['admin', 'officer'] });
});
afterEach(async () => t.close());

/** First run, then TOTP enrolment for alice; returns her secret and recovery codes. */
async function enrolledAdmin(): Promise<{ a: TestClient; secret: string; recovery: string[] }> {
  const a = t.client();
  await a.ok('session:setup', ADMIN);
  const e = await a.ok('totp:begin', {});
  const { recoveryCodes } = await a.ok('totp:confirm', { code: phone(e.secret) });
  return { a, secret: e.secret, recovery: recoveryCodes };
}

describe('TOTP enrolment', () => {
  it('restricts a new admin to enrolment, returns the secret once with its URI and a local QR, and lifts the restriction on confirmation', async () => {
    const a = t.client();
    await a.ok('session:setup', ADMIN);
    const s = await a.ok('session:status', {});
    expect(s.totpPolicy.requiredFor).toEqual(['admin', 'officer']);
    expect(s.user).toMatchObject({ restriction: 'totp-enrolment', totp: { enrolled: false, required: true, recoveryCodesLeft: 0 } });
    expect(code(await a.call('hosts:list', {}))).toBe('TOTP_ENROLMENT_REQUIRED');

    const e = await a.ok('totp:begin', {});
    expect(e).toMatchObject({ issuer: 'Airlock', account: 'alice', algorithm: 'SHA1', digits: 6, period: 30 });
    expect(e.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(e.uri).toBe(`otpauth://totp/Airlock:alice?issuer=Airlock&secret=${e.secret}&algorithm=SHA1&digits=6&period=30`);
    expect(e.qrSvg).toMatch(/^<svg /);
    expect(e.qrDataUrl).toBe(`data:image/svg+xml;base64,${Buffer.from(e.qrSvg).toString('base64')}`);

    expect(code(await a.call('totp:confirm', { code: '000000' === phone(e.secret) ? '111111' : '000000' }))).toBe('BAD_CREDENTIALS');
    const { recoveryCodes } = await a.ok('totp:confirm', { code: phone(e.secret) });
    expect(recoveryCodes).toHaveLength(10);
    expect((await a.ok('session:status', {})).user).toMatchObject({ restriction: null, totp: { enrolled: true, recoveryCodesLeft: 10 } });
    expect(await a.ok('hosts:list', {})).toEqual([]);
    // The audit trail never holds the code.
    const { events } = await a.ok('audit:list', { channel: 'totp:confirm', limit: 10 });
    const params = events.find((e2) => e2.phase === 'request')?.params as { code?: unknown };
    expect(params.code).toBeDefined();
    expect(JSON.stringify(params)).not.toMatch(/"\d{6}"/);
  });

  it('refuses a stale enrolment and a confirmation without one', async () => {
    const a = t.client();
    await a.ok('session:setup', ADMIN);
    expect(code(await a.call('totp:confirm', { code: '123456' }))).toBe('CONFLICT');
    const e = await a.ok('totp:begin', {});
    later(16 * 60_000);
    await a.ok('session:stepUp', { password: ADMIN.password }); // keep the session (idle 30 min) and step-up fresh
    expect(await a.call('totp:confirm', { code: phone(e.secret) })).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: expect.stringMatching(/older than 15 minutes/) } });
  });

  it('keeps the seed sealed: neither the base32 secret nor its bytes are in the database files', async () => {
    const { secret } = await enrolledAdmin();
    await t.core.close();
    const bytes = Buffer.concat(fs.readdirSync(t.dir).filter((f) => f.startsWith(DB_FILE)).map((f) => fs.readFileSync(path.join(t.dir, f))));
    expect(bytes.toString('latin1')).not.toContain(secret);
    expect(bytes.indexOf(Buffer.from(Secret.fromBase32(secret).buffer))).toBe(-1);
    t = await testCore({ clock, requireTotpFor: ['admin', 'officer'], dataDir: t.dir });
  });
});

describe('signing in with TOTP', () => {
  it('asks for the code (TOTP_REQUIRED), accepts ±1 step of drift, refuses a replay and a wrong code', async () => {
    const { secret } = await enrolledAdmin();
    later(60_000);
    const c = t.client();
    expect(await c.call('session:login', { name: 'alice', password: ADMIN.password })).toMatchObject({ ok: false, error: { code: 'TOTP_REQUIRED' } });
    expect(code(await c.call('session:login', { name: 'alice', password: 'wrong password!', totp: phone(secret) }))).toBe('BAD_CREDENTIALS');
    const wrong = phone(secret) === '123456' ? '654321' : '123456';
    expect(await c.call('session:login', { name: 'alice', password: ADMIN.password, totp: wrong })).toMatchObject({
      ok: false,
      error: { code: 'BAD_CREDENTIALS', message: 'Wrong or already used code.' },
    });
    // The phone runs 30 s behind: its code is one step old, accepted.
    const behind = phone(secret, now - 30_000);
    await c.ok('session:login', { name: 'alice', password: ADMIN.password, totp: behind });
    // The same code again, still inside its window: a replay, refused.
    expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, totp: behind }))).toBe('BAD_CREDENTIALS');
    // The current code (a later step) is fine; so is the next one (phone 30 s ahead), but not two steps away.
    await t.client().ok('session:login', { name: 'alice', password: ADMIN.password, totp: phone(secret) });
    await t.client().ok('session:login', { name: 'alice', password: ADMIN.password, totp: phone(secret, now + 30_000) });
    later(30_000);
    expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, totp: phone(secret, now + 61_000) }))).toBe('BAD_CREDENTIALS');
  });

  it('counts wrong codes toward the lockout', async () => {
    const { secret } = await enrolledAdmin();
    const wrong = (i: number) => String((Number(phone(secret)) + 1 + i) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < 4; i++) expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, totp: wrong(i) }))).toBe('BAD_CREDENTIALS');
    expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, totp: wrong(5) }))).toBe('LOCKED_OUT');
    later(31_000);
    await t.client().ok('session:login', { name: 'alice', password: ADMIN.password, totp: phone(secret) });
  });

  it('accepts each recovery code once, instead of a code; regenerating replaces them all', async () => {
    const { a, recovery } = await enrolledAdmin();
    const c = t.client();
    await c.ok('session:login', { name: 'alice', password: ADMIN.password, recoveryCode: recovery[0]!.toUpperCase() });
    expect((await c.ok('session:status', {})).user?.totp.recoveryCodesLeft).toBe(9);
    expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, recoveryCode: recovery[0]! }))).toBe('BAD_CREDENTIALS');
    const { recoveryCodes } = await a.ok('totp:recoveryCodes', {});
    expect(recoveryCodes.some((x) => recovery.includes(x))).toBe(false);
    expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, recoveryCode: recovery[1]! }))).toBe('BAD_CREDENTIALS');
    await t.client().ok('session:login', { name: 'alice', password: ADMIN.password, recoveryCode: recoveryCodes[9]! });
  });

  it('asks for the code at step-up too', async () => {
    const { a, secret, recovery } = await enrolledAdmin();
    later(6 * 60_000);
    expect(code(await a.call('users:list', {}))).toBe('ok');
    expect(code(await a.call('settings:set', { stepUpMinutes: 3 }))).toBe('STEP_UP_REQUIRED');
    expect(code(await a.call('session:stepUp', { password: ADMIN.password }))).toBe('TOTP_REQUIRED');
    await a.ok('session:stepUp', { password: ADMIN.password, totp: phone(secret) });
    await a.ok('settings:set', { stepUpMinutes: 3 });
    later(4 * 60_000);
    await a.ok('session:stepUp', { password: ADMIN.password, recoveryCode: recovery[3]! });
    await a.ok('settings:set', { stepUpMinutes: 5 });
  });
});

describe('TOTP policy', () => {
  it('requires officers to enrol after choosing their password; auditors may enrol and remove TOTP', async () => {
    const { a, secret } = await enrolledAdmin();
    await a.ok('users:create', { name: 'olga', password: 'olga temporary 1', roles: ['officer'] });
    await a.ok('users:create', { name: 'aude', password: 'aude own password', roles: ['auditor'], mustChangePassword: false });
    const olga = t.client();
    await olga.ok('session:login', { name: 'olga', password: 'olga temporary 1' });
    expect((await olga.ok('session:status', {})).user?.restriction).toBe('password-change');
    await olga.ok('session:changePassword', { oldPassword: 'olga temporary 1', newPassword: 'olga chose this' });
    expect((await olga.ok('session:status', {})).user?.restriction).toBe('totp-enrolment');
    const e = await olga.ok('totp:begin', {});
    await olga.ok('totp:confirm', { code: phone(e.secret) });
    expect(await olga.ok('hosts:list', {})).toEqual([]);
    expect(code(await olga.call('totp:disable', {}))).toBe('CONFLICT');

    const aude = t.client();
    await aude.ok('session:login', { name: 'aude', password: 'aude own password' });
    expect((await aude.ok('session:status', {})).user).toMatchObject({ restriction: null, totp: { required: false, enrolled: false } });
    const e2 = await aude.ok('totp:begin', {});
    await aude.ok('totp:confirm', { code: phone(e2.secret) });
    expect(code(await t.client().call('session:login', { name: 'aude', password: 'aude own password' }))).toBe('TOTP_REQUIRED');
    await aude.ok('totp:disable', {});
    await t.client().ok('session:login', { name: 'aude', password: 'aude own password' });
    void secret;
  });

  it('lets an admin reset a lost TOTP: the user’s sessions end and they enrol again', async () => {
    const { a } = await enrolledAdmin();
    await a.ok('users:create', { name: 'olga', password: 'olga own password', roles: ['officer'], mustChangePassword: false });
    const olga = t.client();
    await olga.ok('session:login', { name: 'olga', password: 'olga own password' });
    const e = await olga.ok('totp:begin', {});
    await olga.ok('totp:confirm', { code: phone(e.secret) });
    expect((await a.ok('users:resetTotp', { name: 'olga' })).totpEnrolled).toBe(false);
    expect(code(await olga.call('hosts:list', {}))).toBe('UNAUTHENTICATED');
    const again = t.client();
    await again.ok('session:login', { name: 'olga', password: 'olga own password' });
    expect((await again.ok('session:status', {})).user?.restriction).toBe('totp-enrolment');
  });

  it('re-enrols on a new device: the old secret works until the new one is confirmed', async () => {
    const { a, secret } = await enrolledAdmin();
    const e = await a.ok('totp:begin', {});
    later(30_000);
    await t.client().ok('session:login', { name: 'alice', password: ADMIN.password, totp: phone(secret) });
    later(30_000);
    await a.ok('totp:confirm', { code: phone(e.secret) });
    later(30_000);
    expect(code(await t.client().call('session:login', { name: 'alice', password: ADMIN.password, totp: phone(secret) }))).toBe('BAD_CREDENTIALS');
    later(30_000);
    await t.client().ok('session:login', { name: 'alice', password: ADMIN.password, totp: phone(e.secret) });
  });

  it('is off with the lab/test setting: status says so', async () => {
    const lab = await testCore({ clock, requireTotpFor: [] });
    try {
      const a = lab.client();
      await a.ok('session:setup', ADMIN);
      expect(await a.ok('session:status', {})).toMatchObject({ totpPolicy: { requiredFor: [] }, user: { restriction: null, totp: { required: false } } });
    } finally {
      await lab.close();
    }
  });
});
