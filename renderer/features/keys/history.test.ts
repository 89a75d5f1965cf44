import { describe, expect, it } from 'vitest';
import type { Ceremony, SshRotation } from '../../../shared/contract/keys';
import { byExpiry, certState, daysLeftText, historyItems, hostsByVersion, mayRevoke, renewalProgress, rotationLive, rotationProgress } from './history';

const cert = (serial: string, notAfter: string) => ({ serial, notAfter });

describe('certificates by expiry', () => {
  it('names the state: revoked before expired before renewal due', () => {
    expect(certState({ revokedAt: '2026-01-01T00:00:00Z', daysLeft: -5, renewalDue: true })).toBe('revoked');
    expect(certState({ revokedAt: null, daysLeft: -1, renewalDue: true })).toBe('expired');
    expect(certState({ revokedAt: null, daysLeft: 0, renewalDue: true })).toBe('expiring');
    expect(certState({ revokedAt: null, daysLeft: 200, renewalDue: false })).toBe('valid');
  });
  it('says the days left in words', () => {
    expect(daysLeftText(1)).toBe('1 day left');
    expect(daysLeftText(30)).toBe('30 days left');
    expect(daysLeftText(0)).toBe('expires today');
    expect(daysLeftText(-1)).toBe('expired 1 day ago');
    expect(daysLeftText(-4)).toBe('expired 4 days ago');
  });
  it('sorts the soonest expiry first, ties by serial, without changing its input', () => {
    const rows = [cert('0c', '2027-03-01T00:00:00Z'), cert('0b', '2026-12-20T00:00:00Z'), cert('0a', '2027-03-01T00:00:00Z')];
    expect(byExpiry(rows).map((r) => r.serial)).toEqual(['0b', '0a', '0c']);
    expect(rows.map((r) => r.serial)).toEqual(['0c', '0b', '0a']);
  });
  it('offers revocation for a live certificate that is not the root CA', () => {
    expect(mayRevoke({ profile: 'host-tls', revokedAt: null })).toBe(true);
    expect(mayRevoke({ profile: 'host-tls', revokedAt: '2026-01-01T00:00:00Z' })).toBe(false);
    expect(mayRevoke({ profile: 'root-ca', revokedAt: null })).toBe(false);
  });
});

const ceremony = (id: string, startedAt: string) => ({ id, startedAt }) as Ceremony;
const rotation = (id: string, startedAt: string, hosts: Array<SshRotation['hosts'][number]['status']> = [], status: SshRotation['status'] = 'succeeded') =>
  ({ id, startedAt, status, hosts: hosts.map((s, i) => ({ host: `h${i}`, status: s })) }) as SshRotation;

describe('rotation history', () => {
  it('puts ceremonies and SSH rotations in one list, newest first', () => {
    const items = historyItems(
      [ceremony('cer-1', '2026-12-07T10:00:00Z'), ceremony('cer-2', '2026-12-07T12:00:00Z')],
      [rotation('rot-1', '2026-12-07T11:00:00Z')],
    );
    expect(items.map((i) => `${i.type}:${i.key}`)).toEqual(['ceremony:cer-2', 'ssh:rot-1', 'ceremony:cer-1']);
  });
  it('keeps reading a running rotation only, and counts its hosts done', () => {
    expect(rotationLive({ status: 'running' })).toBe(true);
    expect(rotationLive({ status: 'failed' })).toBe(false);
    expect(rotationProgress(rotation('rot-1', '2026-12-07T11:00:00Z', ['succeeded', 'running', 'pending'], 'running')).text).toBe('1 of 3 hosts done');
    expect(rotationProgress(rotation('rot-1', '2026-12-07T11:00:00Z', ['succeeded'])).text).toBe('1 of 1 host done');
  });
});

describe('certificate renewal progress', () => {
  it('counts hosts done and steps done over all hosts', () => {
    const host = (status: string, done: number) => ({ status, steps: Array.from({ length: 7 }, (_, i) => ({ status: i < done ? 'done' : i === done ? 'running' : 'pending' })) });
    expect(renewalProgress({ hosts: [host('succeeded', 7), host('running', 3)] })).toEqual({ done: 1, total: 2, text: '1 of 2 hosts done (10 of 14 steps)' });
    expect(renewalProgress({ hosts: [host('pending', 0)] }).text).toBe('0 of 1 host done (0 of 7 steps)');
  });
});

describe('hosts per models KEK version', () => {
  it('groups hosts by the version wrapping their key; hosts without a key apart', () => {
    const { versions, without } = hostsByVersion([
      { host: 'gpu2', kekVersion: 2 },
      { host: 'gpu1', kekVersion: 2 },
      { host: 'gpu3', kekVersion: 1 },
      { host: 'cpu1' },
    ]);
    expect([...versions.entries()].sort()).toEqual([
      [1, ['gpu3']],
      [2, ['gpu1', 'gpu2']],
    ]);
    expect(without).toEqual(['cpu1']);
  });
});
