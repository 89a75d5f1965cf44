/**
 * Whose labs a test run may take down (scripts/test.mjs): its own (`lab down --run RUN`), and at
 * its start the stale ones, whose recorded owner process is dead (`lab reclaim`). Real labs, real
 * processes: labs are started from child processes with the environment a run gives them.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labList, labReclaim, labUp, type Lab } from './lab';
import { exec, livePids } from './testkit';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const tsx = path.join(repo, 'node_modules', '.bin', 'tsx');

/** Run ids of this file's own (so nothing here can be another run's). */
const runA = `a${randomBytes(3).toString('hex')}`;
const runB = `b${randomBytes(3).toString('hex')}`;
const runC = `c${randomBytes(3).toString('hex')}`;

const startOf = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
const me = `${process.pid}:${startOf(process.pid)}`;

/** The environment of a process: this one's, with the lab's run variables as given (undefined: unset). */
function envWith(vars: { AIRLOCK_LAB_RUN?: string; AIRLOCK_LAB_RUN_OWNER?: string }): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.AIRLOCK_LAB_RUN;
  delete env.AIRLOCK_LAB_RUN_OWNER;
  return { ...env, ...Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined)) };
}

/** `npm run lab -- ARGS` as a process with that environment would run it. */
async function labCli(args: string[], env: NodeJS.ProcessEnv) {
  return exec(tsx, [path.join(here, 'cli.ts'), ...args], { env });
}

async function stored(id: string): Promise<Lab | undefined> {
  return (await labList()).find((l) => l.id === id);
}

/** Pids of this lab's sshd and decoy (their command lines name its directory). */
function pidsOf(lab: Lab): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(lab.dir + '/');
      } catch {
        return false;
      }
    });
}

/** A pid:start pair of a process that has exited. */
async function deadOwner(): Promise<string> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const ref = `${child.pid}:${startOf(child.pid!)}`;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return ref;
}

describe('a test run touches only the labs it started', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }, 60_000);

  it('down --run takes down that run\'s labs only; a lab of another run or a person\'s, even with a look-alike name, stays', async () => {
    // run A's lab (started as `npm test` would: the lab CLI under AIRLOCK_LAB_RUN, run owner alive)
    const a = await labCli(['up', '--hosts', '1', '--id', 'own', '--json'], envWith({ AIRLOCK_LAB_RUN: runA, AIRLOCK_LAB_RUN_OWNER: me }));
    cleanups.push(() => labCli(['down', '--id', 'own'], envWith({ AIRLOCK_LAB_RUN: runA })));
    expect(a.code, a.stderr).toBe(0);
    const labA = JSON.parse(a.stdout) as Lab;
    expect(labA.id).toBe(`${runA}-own`);
    // a person's persistent lab whose name happens to start like run B's labs
    const p = await labCli(['up', '--hosts', '1', '--id', `${runB}-own`, '--json'], envWith({}));
    cleanups.push(() => labCli(['down', '--id', `${runB}-own`], envWith({})));
    expect(p.code, p.stderr).toBe(0);
    const person = JSON.parse(p.stdout) as Lab;
    expect(person.id).toBe(`${runB}-own`);

    // run B cleans up: neither is its lab
    await labDown({ run: runB });
    expect((await stored(labA.id))?.hosts[0]?.sshdRunning).toBe(true);
    expect((await stored(person.id))?.hosts[0]?.sshdRunning).toBe(true);
    // nor is either stale: A's run owner (this process) lives, the person's lab has no owner to die
    expect(await labReclaim({ ids: [labA.id, person.id] })).toEqual([]);
    expect(await stored(labA.id)).toBeDefined();
    expect(await stored(person.id)).toBeDefined();

    // run A cleans up: its lab goes, with its processes; the person's stays
    const pidsA = pidsOf(labA);
    expect(pidsA.length).toBeGreaterThanOrEqual(2); // sshd + decoy
    const down = await labCli(['down', '--run', runA], envWith({}));
    expect(down.code, down.stderr).toBe(0);
    expect(await stored(labA.id)).toBeUndefined();
    expect(livePids(pidsA)).toEqual([]);
    expect((await stored(person.id))?.hosts[0]?.sshdRunning).toBe(true);
  }, 120_000);

  it('reclaim takes down a lab whose recorded owner is dead, and leaves one whose owner lives', async () => {
    // A crashed run: the lab's own process exited without labDown, and so did its run's process.
    const script = `(async () => { const { labUp } = await import(${JSON.stringify(path.join(here, 'lab.ts'))}); await labUp({ id: 'gone', hosts: 1 }); process.exit(0); })();`;
    const crashed = await exec(tsx, ['--eval', script], { env: envWith({ AIRLOCK_LAB_RUN: runC, AIRLOCK_LAB_RUN_OWNER: await deadOwner() }) });
    cleanups.push(() => labCli(['down', '--run', runC], envWith({})));
    expect(crashed.code, crashed.stderr).toBe(0);
    const stale = await stored(`${runC}-gone`);
    expect(stale?.hosts[0]?.sshdRunning).toBe(true); // its sshd outlived its owner
    const stalePids = pidsOf(stale!);

    // A live one: this process's own lab (in whatever run this test file runs under).
    const live = await labUp({ id: 'alive', hosts: 1 });
    cleanups.push(() => labDown({ id: 'alive' }));

    expect(await labReclaim({ ids: [stale!.id, live.id] })).toEqual([stale!.id]);
    expect(await stored(stale!.id)).toBeUndefined();
    expect(livePids(stalePids)).toEqual([]);
    expect((await stored(live.id))?.hosts[0]?.sshdRunning).toBe(true);
    const netns = await exec('ip', ['netns', 'list']);
    expect(netns.stdout).not.toContain(`airlock-lab.${stale!.id}.`);
    await labDown({ id: 'alive' });
    expect(await stored(live.id)).toBeUndefined();
  }, 120_000);
});
