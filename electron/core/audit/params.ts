import crypto from 'node:crypto';
import { wellFormed } from './canonical';

/** HMAC-SHA256 of a secret under the audit HMAC key (`hmac-sha256:<hex>`), or null while sealed. */
export type AuditHmac = (value: string) => string | null;

export const REDACTED = '[redacted]';

/**
 * Secrets a person chooses or reads off a device (passwords, PINs, TOTP and recovery codes) are
 * never HMAC'd: HMAC-SHA256 is fast, so anyone who ever unseals the HMAC key (every vault-slot
 * holder can) could test guesses against the trail offline at billions per second. Only
 * high-entropy machine secrets (tokens, keys; at least 16 characters) are recorded by HMAC.
 */
const GUESSABLE = /pass(word|phrase)?|pin|otp|totp|code|recovery|answer/i;
const MIN_HMAC_CHARS = 16;
/** Longer strings are recorded by digest and size: the event stays small and still identifies the input. */
export const LONG_STRING = 512;

/**
 * How a channel's parsed input is written into an audit event: secret fields replaced by
 * `hmac-sha256:<hex>` (correlatable, like Vault's audit HMAC) when the key is unsealed and the
 * secret is not guessable, else by "[redacted]"; long strings by `{ sha256, chars }`; every
 * string made well-formed Unicode so the event always has a canonical form.
 */
export function recordParams(input: Record<string, unknown>, secret: readonly string[] | undefined, hmac?: AuditHmac | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (secret?.includes(k)) out[k] = secretValue(k, v, hmac ?? null);
    else if (typeof v === 'string' && v.length > LONG_STRING) out[k] = { sha256: crypto.createHash('sha256').update(v).digest('hex'), chars: v.length };
    else out[k] = clean(v);
  }
  return out;
}

function secretValue(key: string, v: unknown, hmac: AuditHmac | null): string {
  if (v === undefined || v === null) return REDACTED;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  if (!hmac || typeof text !== 'string' || GUESSABLE.test(key) || text.length < MIN_HMAC_CHARS) return REDACTED;
  return hmac(text) ?? REDACTED;
}

function clean(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return wellFormed(v);
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (v === null || typeof v !== 'object') return typeof v === 'function' || typeof v === 'symbol' ? undefined : v;
  if (depth > 32) return '[too deep]';
  if (Array.isArray(v)) return v.map((x) => clean(x, depth + 1));
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) o[wellFormed(k)] = clean(x, depth + 1);
  return o;
}
