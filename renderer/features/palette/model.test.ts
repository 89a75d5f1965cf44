import { describe, expect, it, vi } from 'vitest';
import { channels } from '../../../shared/contract/index';
import { features } from '../registry';
import { HandlerRegistry } from './commands';
import { filterEntries, matchesAny, matchesKeys, moveIndex, parseKeys, type KeyLike, type PaletteEntry } from './model';

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({ key: k, ctrlKey: false, altKey: false, shiftKey: false, metaKey: false, ...mods });
const entry = (label: string, extra: Partial<PaletteEntry> = {}): PaletteEntry => ({ key: label, group: 'Actions', label, run: () => {}, ...extra });

describe('filterEntries', () => {
  const all = [entry('Go to Hosts', { group: 'Views' }), entry('Go to Audit', { group: 'Views' }), entry('Scan all hosts', { keywords: 'gpu inventory' }), entry('Verify the audit trail')];
  it('keeps everything for an empty query, in order', () => {
    expect(filterEntries(all, '  ').map((e) => e.label)).toEqual(all.map((e) => e.label));
  });
  it('needs every word, in any order and case, in the label, group or keywords', () => {
    expect(filterEntries(all, 'AUDIT').map((e) => e.label).sort()).toEqual(['Go to Audit', 'Verify the audit trail']);
    expect(filterEntries(all, 'hosts scan').map((e) => e.label)).toEqual(['Scan all hosts']);
    expect(filterEntries(all, 'gpu').map((e) => e.label)).toEqual(['Scan all hosts']);
    expect(filterEntries(all, 'views host').map((e) => e.label)).toEqual(['Go to Hosts']);
    expect(filterEntries(all, 'nothing like this')).toEqual([]);
  });
  it('puts labels that start with the query first, then labels with a word that does', () => {
    expect(filterEntries(all, 'audit').map((e) => e.label)).toEqual(['Go to Audit', 'Verify the audit trail']);
    expect(filterEntries(all, 'ver').map((e) => e.label)).toEqual(['Verify the audit trail']);
    expect(filterEntries(all, 'scan').map((e) => e.label)[0]).toBe('Scan all hosts');
  });
});

describe('moveIndex', () => {
  it('wraps both ways and stays at 0 for an empty list', () => {
    expect(moveIndex(0, -1, 3)).toBe(2);
    expect(moveIndex(2, 1, 3)).toBe(0);
    expect(moveIndex(1, 1, 3)).toBe(2);
    expect(moveIndex(0, 1, 0)).toBe(0);
  });
});

describe('shortcuts', () => {
  it('match the exact modifiers and the key, in any case', () => {
    expect(matchesKeys('Ctrl+K', key('k', { ctrlKey: true }))).toBe(true);
    expect(matchesKeys('Ctrl+K', key('K', { ctrlKey: true }))).toBe(true);
    expect(matchesKeys('Ctrl+K', key('k', { ctrlKey: true, shiftKey: true }))).toBe(false);
    expect(matchesKeys('Ctrl+K', key('k'))).toBe(false);
    expect(matchesKeys('Ctrl+PageDown', key('PageDown', { ctrlKey: true }))).toBe(true);
    expect(matchesKeys('Alt+3', key('3', { altKey: true }))).toBe(true);
    expect(matchesAny('Ctrl+K / Cmd+K', key('k', { metaKey: true }))).toBe(true);
  });
  it('do not take AltGr characters (Ctrl+Alt on Windows) for Ctrl+Alt+<digit>', () => {
    // German layout: AltGr+7 types '{' and is reported with ctrlKey and altKey.
    expect(matchesKeys('Ctrl+Alt+7', key('{', { ctrlKey: true, altKey: true }))).toBe(false);
    expect(matchesKeys('Ctrl+Alt+7', key('7', { ctrlKey: true, altKey: true }))).toBe(true);
  });
  it('refuse a declaration nobody could press', () => {
    expect(() => parseKeys('Hyper+K')).toThrow(/unknown modifier/);
    expect(() => parseKeys('')).toThrow(/empty/);
  });
});

describe('the commands features declare', () => {
  const all = features.flatMap((f) => (f.commands ?? []).map((c) => ({ f, c })));
  it('have unique ids named after their feature, real channels and pressable keys', () => {
    expect(all.length).toBeGreaterThan(0);
    expect(new Set(all.map(({ c }) => c.id)).size).toBe(all.length);
    for (const { f, c } of all) {
      expect(c.id.startsWith(`${f.id}.`), c.id).toBe(true);
      if (c.channel) expect(Object.keys(channels), c.id).toContain(c.channel);
      if (c.keys) for (const k of c.keys.split(' / ')) expect(() => parseKeys(k), c.id).not.toThrow();
      if (c.choices) expect(c.label, c.id).toContain('{choice}');
    }
    for (const f of features) for (const s of f.shortcuts ?? []) expect(s.what, f.id).not.toBe('');
  });
  it('include the common actions', () => {
    expect(all.map(({ c }) => c.id)).toEqual(expect.arrayContaining(['hosts.enrol', 'hosts.scanAll', 'terminal.new', 'provision.plan', 'audit.verify']));
  });
});

describe('HandlerRegistry', () => {
  it('runs the handler bound last, and after unbinding the one before', () => {
    const r = new HandlerRegistry(() => {});
    const a = vi.fn();
    const b = vi.fn();
    r.bind('x', a);
    const unbindB = r.bind('x', b);
    r.perform('x');
    expect(b).toHaveBeenCalledTimes(1);
    unbindB();
    r.perform('x');
    expect(a).toHaveBeenCalledTimes(1);
    expect(r.bound('x')).toBe(true);
  });
  it('runs a command performed before its page bound it once the page does', async () => {
    const missing = vi.fn();
    const r = new HandlerRegistry(missing);
    r.perform('hosts.enrol');
    const fn = vi.fn();
    r.bind('hosts.enrol', fn);
    await Promise.resolve();
    expect(fn).toHaveBeenCalledTimes(1);
    expect(missing).not.toHaveBeenCalled();
  });
  it('tells when a page never binds it, and forgets it when another is performed', () => {
    vi.useFakeTimers();
    try {
      const missing = vi.fn();
      const r = new HandlerRegistry(missing, 100);
      r.perform('a');
      r.perform('b');
      vi.advanceTimersByTime(150);
      expect(missing.mock.calls).toEqual([['b']]);
      const late = vi.fn();
      r.bind('a', late);
      expect(late).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });
});
