import crypto from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import {
  hashRecoveryCode,
  matchStep,
  newRecoveryCodes,
  newTotpSecret,
  normalizeRecoveryCode,
  qrSvg,
  svgDataUrl,
  timeStep,
  totpCode,
  totpUri,
} from './totp';

/** RFC 6238 Appendix B: the published test vectors (8 digits, 30 s steps). */
const SEEDS = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
} as const;
const VECTORS: Array<[number, string, string, string]> = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

describe('TOTP (RFC 6238)', () => {
  it('reproduces every test vector of RFC 6238 with otpauth', () => {
    for (const [t, sha1, sha256, sha512] of VECTORS) {
      for (const [algorithm, expected] of [['SHA1', sha1], ['SHA256', sha256], ['SHA512', sha512]] as const) {
        const code = TOTP.generate({ secret: Secret.fromLatin1(SEEDS[algorithm]), algorithm, digits: 8, period: 30, timestamp: t * 1000 });
        expect(code, `${algorithm} at T=${t}`).toBe(expected);
      }
    }
  });

  it('accepts the 6-digit codes any authenticator derives from the same vectors, within ±1 step only', () => {
    const secret = Secret.fromLatin1(SEEDS.SHA1).base32;
    for (const [t, sha1] of VECTORS) {
      const six = sha1.slice(-6); // dynamic truncation mod 10^6: the last six digits of the 8-digit code
      expect(totpCode(secret, t * 1000)).toBe(six);
      const step = Math.floor(t / 30);
      expect(matchStep(secret, six, t * 1000)).toBe(step);
      expect(matchStep(secret, six, (t + 30) * 1000), 'one step late (phone behind)').toBe(step);
      expect(matchStep(secret, six, (t - 30) * 1000), 'one step early (phone ahead)').toBe(step);
      expect(matchStep(secret, six, (t + 61) * 1000), 'two steps late').toBeNull();
    }
    expect(matchStep(secret, '000000', 59_000)).toBeNull();
  });

  it('makes 160-bit base32 secrets and an otpauth:// URI that round-trips', () => {
    const secret = newTotpSecret((n) => crypto.randomBytes(n));
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = totpUri(secret, 'alice');
    expect(uri).toMatch(/^otpauth:\/\/totp\/Airlock:alice\?/);
    const u = new URL(uri);
    expect(u.searchParams.get('secret')).toBe(secret);
    expect(u.searchParams.get('issuer')).toBe('Airlock');
    expect(u.searchParams.get('algorithm')).toBe('SHA1');
    expect(u.searchParams.get('digits')).toBe('6');
    expect(u.searchParams.get('period')).toBe('30');
    expect(timeStep(59_000)).toBe(1);
  });

  it('renders the QR code locally as an SVG and a data: URL', async () => {
    const svg = await qrSvg('otpauth://totp/Airlock:alice?secret=JBSWY3DPEHPK3PXP&issuer=Airlock');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).not.toMatch(/<script|href=/i);
    const url = svgDataUrl(svg);
    expect(url.startsWith('data:image/svg+xml;base64,')).toBe(true);
    expect(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64').toString('utf8')).toBe(svg);
  });
});

describe('recovery codes', () => {
  it('makes ten distinct codes of 16 unambiguous characters', () => {
    const codes = newRecoveryCodes((n) => crypto.randomBytes(n));
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}$/);
  });

  it('hashes codes bound to the user, ignoring case, spaces and dashes', () => {
    expect(normalizeRecoveryCode(' ABCD-efgh jkmn-PQRS ')).toBe('abcdefghjkmnpqrs');
    expect(hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs')).toBe(hashRecoveryCode(1, 'ABCDEFGH JKMNPQRS'));
    expect(hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs')).not.toBe(hashRecoveryCode(2, 'abcd-efgh-jkmn-pqrs'));
    expect(hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs')).toMatch(/^[0-9a-f]{64}$/);
  });
});
