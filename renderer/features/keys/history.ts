import type { AuditEvent } from '../../../shared/contract/audit';
import type { CertificateRow, Ceremony, SshRotation } from '../../../shared/contract/keys';

/**
 * What the Keys page computes for its certificates list and its rotation history, kept out of
 * the components so that what an officer reads ("expiring", "newest first", which rotations are
 * still running) is tested on its own.
 */

export type CertState = 'revoked' | 'expired' | 'expiring' | 'valid';

/** Revoked wins over expired, expired over due for renewal (the core's `renewalDue`, its window). */
export function certState(c: Pick<CertificateRow, 'revokedAt' | 'daysLeft' | 'renewalDue'>): CertState {
  if (c.revokedAt) return 'revoked';
  if (c.daysLeft < 0) return 'expired';
  if (c.renewalDue) return 'expiring';
  return 'valid';
}

export const CERT_STATE_LABELS: Record<CertState, string> = {
  revoked: 'revoked',
  expired: 'expired',
  expiring: 'renewal due',
  valid: 'valid',
};

/** The profiles as an officer names them. */
export const PROFILE_LABELS: Record<CertificateRow['profile'], string> = {
  'root-ca': 'Root CA',
  'issuing-ca': 'Issuing CA',
  'host-tls': 'Host TLS',
  'bundle-signing': 'Bundle signing',
  'registry-token': 'Registry token signing',
  'release-signing': 'Release signing',
};

/** "12 days left", "expires today", "expired 3 days ago". */
export function daysLeftText(daysLeft: number): string {
  if (daysLeft < 0) return `expired ${-daysLeft} day${daysLeft === -1 ? '' : 's'} ago`;
  if (daysLeft === 0) return 'expires today';
  return `${daysLeft} day${daysLeft === 1 ? '' : 's'} left`;
}

/** Soonest expiry first (the list an officer works down); equal expiries by serial, so the order is stable. */
export function byExpiry<T extends Pick<CertificateRow, 'notAfter' | 'serial'>>(rows: readonly T[]): T[] {
  return [...rows].sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter) || a.serial.localeCompare(b.serial));
}

/** A root CA is not revoked by a CRL it signs itself; an already revoked certificate is done. */
export function mayRevoke(c: Pick<CertificateRow, 'profile' | 'revokedAt'>): boolean {
  return c.profile !== 'root-ca' && !c.revokedAt;
}

const ROTATION_ID = /^rot-[0-9a-f]{16}$/;

/** An SSH identity rotation whose request is in the trail but not yet its outcome: it is running, its id not known yet. */
export interface RotationStarting {
  seq: number;
  actor: string;
  ts: string;
}

/**
 * The SSH identity rotations the audit trail names (keys:rotateSshIdentity's outcome detail, the
 * target of keys:sshRotation and keys:resumeSshRotation), newest mention first, and the starts
 * whose outcome is not in yet (a rotation running now, in this console or another).
 */
export function rotationsFromAudit(events: readonly Pick<AuditEvent, 'seq' | 'channel' | 'phase' | 'target' | 'params' | 'actor' | 'ts'>[]): { ids: string[]; starting: RotationStarting[] } {
  const ids: string[] = [];
  const answered = new Set<number>();
  const add = (id: unknown) => {
    if (typeof id === 'string' && ROTATION_ID.test(id) && !ids.includes(id)) ids.push(id);
  };
  for (const e of [...events].sort((a, b) => b.seq - a.seq)) {
    const p = (e.params ?? {}) as { request?: unknown; detail?: { rotation?: unknown } };
    if (e.phase === 'outcome' && typeof p.request === 'number') answered.add(p.request);
    if (e.channel === 'keys:rotateSshIdentity' && e.phase === 'outcome') add(p.detail?.rotation);
    if (e.channel === 'keys:sshRotation' || e.channel === 'keys:resumeSshRotation') add(e.target);
  }
  const starting = events
    .filter((e) => e.channel === 'keys:rotateSshIdentity' && e.phase === 'request' && !answered.has(e.seq))
    .map((e) => ({ seq: e.seq, actor: e.actor, ts: e.ts }))
    .sort((a, b) => b.seq - a.seq);
  return { ids, starting };
}

export type HistoryItem =
  | { type: 'ceremony'; key: string; at: string; ceremony: Ceremony }
  | { type: 'ssh'; key: string; at: string; rotation: SshRotation }
  | { type: 'ssh-starting'; key: string; at: string; starting: RotationStarting };

/** Ceremonies and SSH identity rotations in one list, newest first (by when each began). */
export function historyItems(ceremonies: readonly Ceremony[], rotations: readonly SshRotation[], starting: readonly RotationStarting[] = []): HistoryItem[] {
  const items: HistoryItem[] = [
    ...ceremonies.map((c) => ({ type: 'ceremony' as const, key: c.id, at: c.startedAt, ceremony: c })),
    ...rotations.map((r) => ({ type: 'ssh' as const, key: r.id, at: r.startedAt, rotation: r })),
    ...starting.map((s) => ({ type: 'ssh-starting' as const, key: `start-${s.seq}`, at: s.ts, starting: s })),
  ];
  return items.sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || b.key.localeCompare(a.key));
}

/** Whether the page should keep reading a rotation: it is running (here or in another console). */
export function rotationLive(r: Pick<SshRotation, 'status'>): boolean {
  return r.status === 'running';
}

/** "2 of 3 hosts done" for a rotation's progress line. */
export function rotationProgress(r: Pick<SshRotation, 'hosts'>): { done: number; total: number; text: string } {
  const done = r.hosts.filter((h) => h.status === 'succeeded').length;
  const total = r.hosts.length;
  return { done, total, text: `${done} of ${total} host${total === 1 ? '' : 's'} done` };
}

/** Hosts per `models` KEK version: which hosts' models keys each version wraps (hosts without a key apart). */
export function hostsByVersion(rows: readonly { host: string; kekVersion?: number | undefined }[]): { versions: Map<number, string[]>; without: string[] } {
  const versions = new Map<number, string[]>();
  const without: string[] = [];
  for (const r of rows) {
    if (r.kekVersion === undefined) without.push(r.host);
    else versions.set(r.kekVersion, [...(versions.get(r.kekVersion) ?? []), r.host].sort());
  }
  return { versions, without: without.sort() };
}
