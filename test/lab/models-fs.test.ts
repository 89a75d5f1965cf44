/**
 * The lab's encrypted-models option (lab/models-fs.ts): each host's ext4 `encrypt` image on a
 * loop device, mounted inside the host only; loop devices detached at down, also for a lab whose
 * owner died; a host that cannot have one says so; labs without the option unchanged.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { hostModelsImage, labDown, labIdFor, labReclaim, labStateRoot, labUp, MODELS_FS_MOUNT, runOnHost, type Lab } from './lab';
import { exec } from './testkit';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = path.join(path.resolve(here, '..', '..'), 'node_modules', '.bin', 'tsx');

/** Loop devices whose backing file lies under `dir`. */
async function loopsUnder(dir: string): Promise<string[]> {
  const r = await exec('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter(([, f]) => f?.startsWith(`${dir}/`))
    .map(([n]) => n!);
}

const ids = ['modelsfs', 'modelsfs-plain', 'modelsfs-stale', 'modelsfs-cli', 'modelsfs-noiso'];
afterAll(async () => {
  for (const id of ids) await labDown({ id });
}, 180_000);

describe('encryptedModels', () => {
  it('mounts an ext4 image with the encrypt feature in each host only; down detaches the loop devices and removes the images', async () => {
    const lab = await labUp({ id: 'modelsfs', hosts: 2, encryptedModels: { sizeMiB: 64 } });
    const loops = await loopsUnder(lab.dir);
    expect(loops).toHaveLength(2);
    for (const h of lab.hosts) {
      expect(h.models).toMatchObject({ mounted: true, error: null, mountpoint: MODELS_FS_MOUNT });
      expect(loops).toContain(h.models!.device);
      const img = await hostModelsImage(lab, h.name);
      const dump = await exec('dumpe2fs', ['-h', img]);
      expect(dump.stdout).toMatch(/^Filesystem features:.*\bencrypt\b/m);
      const mounts = await runOnHost(lab, h.name, ['cat', '/proc/self/mounts']);
      expect(mounts.stdout).toContain(`${h.models!.device} ${MODELS_FS_MOUNT} ext4 `);
    }
    // Not on this machine: the mount is the host's own.
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(lab.dir);
    await labDown({ id: 'modelsfs' });
    expect(await loopsUnder(lab.dir)).toEqual([]);
    expect(existsSync(lab.hosts[0]!.models!.image)).toBe(false);
  });

  it('a lab without the option is as before: no models field, no image, no loop device', async () => {
    const lab = await labUp({ id: 'modelsfs-plain', hosts: 1 });
    expect('models' in lab.hosts[0]!).toBe(false);
    expect(await loopsUnder(lab.dir)).toEqual([]);
    expect((await runOnHost(lab, 'host1', ['test', '-e', MODELS_FS_MOUNT])).code).toBe(1);
    await expect(hostModelsImage(lab, 'host1')).rejects.toThrow(/not started with encryptedModels/);
    await labDown({ id: 'modelsfs-plain' });
  });

  it("a crashed lab's loop devices are detached when it is reclaimed", async () => {
    const script = path.join(labStateRoot(), `.modelsfs-stale-${process.pid}.mts`);
    writeFileSync(
      script,
      `import { labUp } from ${JSON.stringify(path.join(here, 'lab.ts'))};\n` +
        `const lab = await labUp({ id: 'modelsfs-stale', hosts: 1, encryptedModels: { sizeMiB: 64 } });\n` +
        'console.log(JSON.stringify(lab));\nprocess.exit(0);\n',
    );
    // The child owns its lab itself (not this test run's process, which lives on): without AIRLOCK_LAB_RUN_OWNER.
    const env = { ...process.env };
    delete env.AIRLOCK_LAB_RUN_OWNER;
    const r = await exec(tsx, [script], { env, timeoutMs: 120_000 });
    rmSync(script, { force: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lab = JSON.parse(r.stdout.trim().split('\n').pop()!) as Lab;
    expect(await loopsUnder(lab.dir)).toHaveLength(1);
    // Its owner is gone without labDown: stale.
    expect(await labReclaim({ ids: [labIdFor('modelsfs-stale')] })).toEqual([labIdFor('modelsfs-stale')]);
    expect(await loopsUnder(lab.dir)).toEqual([]);
  });

  it('the CLI: up --encrypted-models reports each host\'s models filesystem in its JSON', async () => {
    const r = await exec(tsx, [path.join(here, 'cli.ts'), 'up', '--hosts', '1', '--id', 'modelsfs-cli', '--encrypted-models', '--json'], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { dir: string; hosts: Array<{ models: { mounted: boolean; device: string } }> };
    expect(j.hosts[0]!.models).toMatchObject({ mounted: true });
    const st = await exec(tsx, [path.join(here, 'cli.ts'), 'status', '--id', 'modelsfs-cli']);
    expect(st.stdout).toContain(`models=${MODELS_FS_MOUNT} (${j.hosts[0]!.models.device})`);
    expect((await exec(tsx, [path.join(here, 'cli.ts'), 'down', '--id', 'modelsfs-cli'])).code).toBe(0);
    expect(await loopsUnder(j.dir)).toEqual([]);
  });

  it('a host that cannot have one says so (no mount namespace of its own), in the API and the CLI', async () => {
    const env = { ...process.env, AIRLOCK_LAB_MODE: 'loopback', AIRLOCK_LAB_NO_UNSHARE: '1' };
    const r = await exec(tsx, [path.join(here, 'cli.ts'), 'up', '--hosts', '1', '--id', 'modelsfs-noiso', '--encrypted-models', '--json'], { env, timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { dir: string; hosts: Array<{ models: { mounted: boolean; error: string } }> };
    expect(j.hosts[0]!.models.mounted).toBe(false);
    expect(j.hosts[0]!.models.error).toMatch(/host1 has no encrypted models filesystem: this host has no mount namespace of its own/);
    const st = await exec(tsx, [path.join(here, 'cli.ts'), 'status', '--id', 'modelsfs-noiso'], { env });
    expect(st.stdout).toContain('models NOT MOUNTED: host1 has no encrypted models filesystem');
    expect(await loopsUnder(j.dir)).toEqual([]);
  });
});
