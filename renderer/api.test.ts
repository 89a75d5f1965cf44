import { describe, expect, it } from 'vitest';
import { can, newRequestId } from './api';
import { compareCommand } from './features/hosts/hostKey';

describe('can (UI hint from the contract roles)', () => {
  it('follows the channel table', () => {
    expect(can(['admin'], 'hosts:add')).toBe(true);
    expect(can(['auditor'], 'hosts:add')).toBe(false);
    expect(can(['auditor'], 'audit:verify')).toBe(true);
    expect(can(['officer', 'auditor'], 'users:create')).toBe(false);
    expect(can(undefined, 'hosts:list')).toBe(false);
    expect(can(undefined, 'session:login')).toBe(true);
  });
});

describe('newRequestId', () => {
  it('matches the contract RequestId pattern and is unique', () => {
    const a = newRequestId();
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(newRequestId()).not.toBe(a);
  });
});

describe('compareCommand', () => {
  it('names the host key file for the presented key type', () => {
    expect(compareCommand('ssh-ed25519')).toBe('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
    expect(compareCommand('ecdsa-sha2-nistp256')).toBe('ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub');
    expect(compareCommand('rsa-sha2-512')).toBe('ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub');
  });
});
