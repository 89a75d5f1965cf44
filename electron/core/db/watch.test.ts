import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DataWatch } from './watch';

let dir: string;
const open: Database.Database[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of open.splice(0)) d.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Two connections on one real SQLite file: "here" (the watching core) and "there" (another process). */
function twoConnections() {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-watch-'));
  const file = path.join(dir, 'w.db');
  const here = new Database(file);
  here.pragma('journal_mode = WAL');
  here.exec('CREATE TABLE t (v INTEGER)');
  const there = new Database(file);
  open.push(here, there);
  return { here, there };
}

const count = (db: Database.Database) => (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;

describe('DataWatch', () => {
  it("notices another connection's commit on its tick, its own after a poke, and says nothing when nothing changed", () => {
    vi.useFakeTimers();
    const { here, there } = twoConnections();
    const reads = vi.fn(() => ({ state: String(count(here)) }));
    const changes: number[] = [];
    const w = new DataWatch({ db: here, now: () => new Date(), read: reads, onChange: (v) => changes.push(v), intervalMs: 100 });
    w.start();
    const readsAtStart = reads.mock.calls.length;
    vi.advanceTimersByTime(500);
    // data_version did not move: not even a read.
    expect(reads.mock.calls.length).toBe(readsAtStart);
    expect(changes).toEqual([]);

    there.prepare('INSERT INTO t VALUES (1)').run();
    vi.advanceTimersByTime(100);
    expect(changes).toEqual([1]);

    // Our own write does not move data_version: the tick misses it, the poke after a call does not.
    here.prepare('INSERT INTO t VALUES (2)').run();
    vi.advanceTimersByTime(300);
    expect(changes).toEqual([1]);
    w.poke();
    vi.runOnlyPendingTimers();
    expect(changes).toEqual([1, 2]);
    w.stop();
    there.prepare('INSERT INTO t VALUES (3)').run();
    vi.advanceTimersByTime(500);
    expect(changes).toEqual([1, 2]);
  });

  it('looks when the state is due to change by time alone, and on every tick when asked to', () => {
    vi.useFakeTimers();
    const { here } = twoConnections();
    let clock = 1_000_000;
    const due = vi.fn(() => ({ state: clock >= 1_000_500 ? 'expired' : 'open', dueAt: 1_000_500 }));
    const seen: number[] = [];
    const a = new DataWatch({ db: here, now: () => new Date(clock), read: due, onChange: (v) => seen.push(v), intervalMs: 100 });
    a.start();
    clock = 1_000_600;
    vi.advanceTimersByTime(100);
    expect(seen).toEqual([1]);
    a.stop();

    let state = 'x';
    const every: number[] = [];
    const b = new DataWatch({ db: here, now: () => new Date(), read: () => ({ state }), everyTick: true, onChange: (v) => every.push(v), intervalMs: 100 });
    b.start();
    state = 'y'; // changed by this process outside any call: no write, no poke
    vi.advanceTimersByTime(100);
    expect(every).toEqual([1]);
    b.stop();
  });

  it('a read that fails (a closing database) is skipped and tried again, never thrown into the timer', () => {
    vi.useFakeTimers();
    const { here } = twoConnections();
    let fail = false;
    const got: number[] = [];
    const w = new DataWatch({ db: here, now: () => new Date(), read: () => {
      if (fail) throw new Error('database closing');
      return { state: String(count(here)) };
    }, everyTick: true, onChange: (v) => got.push(v), intervalMs: 100 });
    w.start();
    fail = true;
    here.prepare('INSERT INTO t VALUES (1)').run();
    expect(() => vi.advanceTimersByTime(300)).not.toThrow();
    expect(got).toEqual([]);
    fail = false;
    vi.advanceTimersByTime(100);
    expect(got).toEqual([1]);
    w.stop();
  });
});
