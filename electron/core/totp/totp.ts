import crypto from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';

/** RFC 6238 as every authenticator app does it by default. */
export const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
export const TOTP_ISSUER = 'Airlock';
/** One step either side (±30 s) of clock drift between the console and the phone. */
export const TOTP_WINDOW = 1;

/** 160 random bits (RFC 4226 §4 recommends the HMAC-SHA1 output size), as base32. */
export function newTotpSecret(random: (n: number) => Buffer): string {
  const bytes = random(20);
  return new Secret({ buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer }).base32;
}

export function totpUri(secretBase32: string, account: string): string {
  return new TOTP({ issuer: TOTP_ISSUER, label: account, secret: Secret.fromBase32(secretBase32), ...TOTP_PARAMS }).toString();
}

/** The QR code of the key URI, rendered here (no network, no renderer-side library): an SVG document. */
export async function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

export function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}

/** The RFC 6238 time step of a moment. */
export function timeStep(nowMs: number): number {
  return TOTP.counter({ period: TOTP_PARAMS.period, timestamp: nowMs });
}

/**
 * The time step a code belongs to, within ±TOTP_WINDOW steps of now, or null. The caller refuses
 * a step at or below the last one accepted for the user (replay within the window).
 */
export function matchStep(secretBase32: string, code: string, nowMs: number): number | null {
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secretBase32),
    ...TOTP_PARAMS,
    timestamp: nowMs,
    window: TOTP_WINDOW,
  });
  return delta === null ? null : timeStep(nowMs) + delta;
}

/** The code an authenticator shows at a moment (tests, and the CLI's own self-check). */
export function totpCode(secretBase32: string, nowMs: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secretBase32), ...TOTP_PARAMS, timestamp: nowMs });
}

// ---- recovery codes --------------------------------------------------------

/** No 0/o, 1/l/i: codes are read off paper. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
export const RECOVERY_CODES = 10;

/** Ten codes of 16 characters (≈ 79 bits each), shown as xxxx-xxxx-xxxx-xxxx. */
export function newRecoveryCodes(random: (n: number) => Buffer): string[] {
  const codes: string[] = [];
  for (let i = 0; i < RECOVERY_CODES; i++) {
    let s = '';
    // Rejection sampling keeps every character equally likely.
    while (s.length < 16) {
      for (const b of random(32)) {
        if (b < 248 && s.length < 16) s += ALPHABET[b % ALPHABET.length];
      }
    }
    codes.push(s.match(/.{4}/g)!.join('-'));
  }
  return codes;
}

export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]+/g, '');
}

/**
 * Recovery codes are high-entropy random strings, so a fast hash bound to the user suffices
 * (a slow KDF protects low-entropy passwords; it adds nothing to 79 random bits).
 */
export function hashRecoveryCode(userId: number, code: string): string {
  return crypto.createHash('sha256').update(`airlock:recovery:${userId}:${normalizeRecoveryCode(code)}`).digest('hex');
}
