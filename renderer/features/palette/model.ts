/**
 * The command palette's model, free of React and the DOM so it is unit-tested: its entries, the
 * filter, and keyboard shortcuts written as text ('Ctrl+Alt+1', 'Ctrl+PageDown') matched against
 * key events.
 */

/** One line of the palette. */
export interface PaletteEntry {
  /** Unique: `view:<id>`, or the command id (with `:<choice>` for one of its choices). */
  key: string;
  group: 'Views' | 'Actions';
  label: string;
  /** The shortcut shown beside it. */
  keys?: string;
  /** A second line (a choice's detail: the host's address). */
  detail?: string;
  /** Extra words the filter matches. */
  keywords?: string;
  run(): void;
}

/** Every word of the query in the label, group, keywords or detail (any order, any case). */
export function filterEntries(entries: readonly PaletteEntry[], query: string): PaletteEntry[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return [...entries];
  const scored: Array<{ e: PaletteEntry; score: number; i: number }> = [];
  entries.forEach((e, i) => {
    const label = e.label.toLowerCase();
    const hay = `${label} ${e.group} ${e.keywords ?? ''} ${e.detail ?? ''}`.toLowerCase();
    if (!words.every((w) => hay.includes(w))) return;
    // Labels that start with what was typed come first, then labels with a word that does.
    const q = words.join(' ');
    const score = label.startsWith(q) ? 0 : label.split(/[^a-z0-9]+/).some((t) => t.startsWith(words[0]!)) ? 1 : 2;
    scored.push({ e, score, i });
  });
  return scored.sort((a, b) => a.score - b.score || a.i - b.i).map((s) => s.e);
}

/** The index the arrow keys move to: wrapping, and 0 for an empty list. */
export function moveIndex(current: number, delta: number, length: number): number {
  if (length <= 0) return 0;
  return (((current + delta) % length) + length) % length;
}

/** The fields of a KeyboardEvent a shortcut is matched on. */
export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  metaKey: boolean;
}

interface Chord {
  ctrl: boolean;
  alt: boolean;
  shift: boolean;
  meta: boolean;
  key: string;
}

const MODS: Record<string, keyof Omit<Chord, 'key'>> = { ctrl: 'ctrl', alt: 'alt', shift: 'shift', meta: 'meta', cmd: 'meta', '⌘': 'meta' };

/** 'Ctrl+Alt+1' → its chord; throws on a shortcut nobody could press (a typo in a declaration). */
export function parseKeys(keys: string): Chord {
  const parts = keys.split('+').map((p) => p.trim());
  const key = parts.pop();
  if (!key) throw new Error(`empty shortcut: ${JSON.stringify(keys)}`);
  const chord: Chord = { ctrl: false, alt: false, shift: false, meta: false, key: key.toLowerCase() };
  for (const p of parts) {
    const m = MODS[p.toLowerCase()];
    if (!m) throw new Error(`unknown modifier ${JSON.stringify(p)} in ${JSON.stringify(keys)}`);
    chord[m] = true;
  }
  return chord;
}

/**
 * Whether the event is this shortcut: the same modifiers exactly, and the same `key`. The key
 * (the character produced), not the physical code, so that AltGr combinations — reported as
 * Ctrl+Alt on Windows — which type '{', '@' or '[' on many European layouts never match
 * Ctrl+Alt+<digit> and still reach the terminal.
 */
export function matchesKeys(keys: string, e: KeyLike): boolean {
  const c = parseKeys(keys);
  return c.ctrl === e.ctrlKey && c.alt === e.altKey && c.shift === e.shiftKey && c.meta === e.metaKey && c.key === e.key.toLowerCase();
}

/** Alternatives written 'Ctrl+K / Cmd+K': any of them. */
export function matchesAny(keys: string, e: KeyLike): boolean {
  return keys.split(' / ').some((k) => matchesKeys(k, e));
}
