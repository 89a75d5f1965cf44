/**
 * The lab CLI's machine-readable output, run exactly as README.md and test/lab/README.md document
 * it: `npm run -s lab -- … --json` (without `-s`, npm prints its "> airlock@… lab" lines on stdout
 * first). Its stdout is one JSON document; notices go to stderr.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labStatus } from './lab';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ID = 'clijson';

function npmLab(args: string[]) {
  const r = spawnSync('npm', ['run', '-s', 'lab', '--', ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('npm run -s lab -- … --json', () => {
  afterAll(async () => {
    await labDown({ id: ID });
  }, 60_000);

  it('prints JSON only on stdout for up and status, and down takes the lab away', async () => {
    const up = npmLab(['up', '--hosts', '1', '--id', ID, '--json']);
    expect(up.code, up.stderr).toBe(0);
    const lab = JSON.parse(up.stdout) as { id: string; hosts: Array<{ name: string; address: string; port: number; fingerprint: string }> };
    expect(lab.hosts).toHaveLength(1);
    expect(lab.hosts[0]).toMatchObject({ name: 'host1', fingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/) });
    expect((await labStatus(ID))?.hosts[0]?.fingerprint).toBe(lab.hosts[0]!.fingerprint);

    const status = npmLab(['status', '--id', ID, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: lab.id, hosts: [{ name: 'host1', sshdRunning: true }] });

    const down = npmLab(['down', '--id', ID, '--json']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toBe('');
    expect(await labStatus(ID)).toBeNull();
  }, 180_000);
});
