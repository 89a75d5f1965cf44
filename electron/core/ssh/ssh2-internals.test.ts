import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { installedSsh2Version, SSH2_VERSION } from './ssh2-internals';

const json = (p: string) => JSON.parse(readFileSync(new URL(`../../../${p}`, import.meta.url), 'utf8')) as Record<string, any>;

describe('ssh2 pin', () => {
  it('ssh2 is pinned exactly, in package.json and the lock file, to the version ssh2-internals.ts was written for, and that is the one installed', () => {
    // An upgrade of ssh2 must be a deliberate change here, re-checked by sftp.integration.test.ts:
    // a caret would let `npm install` bring a version whose internals the fast path has never seen.
    expect(json('package.json').dependencies.ssh2).toBe(SSH2_VERSION);
    const lock = json('package-lock.json');
    expect(lock.packages[''].dependencies.ssh2).toBe(SSH2_VERSION);
    expect(lock.packages['node_modules/ssh2'].version).toBe(SSH2_VERSION);
    expect(installedSsh2Version()).toBe(SSH2_VERSION);
  });
});
