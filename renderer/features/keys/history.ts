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

export type HistoryItem =
  | { type: 'ceremony'; key: string; at: string; ceremony: Ceremony }
  | { type: 'ssh'; key: string; at: string; rotation: SshRotation };

/** Ceremonies and SSH identity rotations in one list, newest first (by when each began). */
export function historyItems(ceremonies: readonly Ceremony[], rotations: readonly SshRotation[]): HistoryItem[] {
  const items: HistoryItem[] = [
    ...ceremonies.map((c) => ({ type: 'ceremony' as const, key: c.id, at: c.startedAt, ceremony: c })),
    ...rotations.map((r) => ({ type: 'ssh' as const, key: r.id, at: r.startedAt, rotation: r })),
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

/**
 * A certificate renewal's progress: hosts done, and steps done of all steps (a host's seven steps
 * each), so a running renewal's line moves with every step.
 */
export function renewalProgress(r: { hosts: ReadonlyArray<{ status: string; steps: ReadonlyArray<{ status: string }> }> }): { done: number; total: number; text: string } {
  const done = r.hosts.filter((h) => h.status === 'succeeded').length;
  const total = r.hosts.length;
  const steps = r.hosts.flatMap((h) => h.steps);
  const stepsDone = steps.filter((s) => s.status === 'done').length;
  return { done, total, text: `${done} of ${total} host${total === 1 ? '' : 's'} done (${stepsDone} of ${steps.length} steps)` };
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
