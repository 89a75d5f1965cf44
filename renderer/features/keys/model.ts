import type { Ceremony, CeremonyKind, CeremonyRole, CeremonyStep } from '../../../shared/contract/keys';

/**
 * What the Keys page and the ceremony screen compute from the core's answers, kept out of the
 * components so that the rules a room relies on (which step is next, who may acknowledge it,
 * which officer a step belongs to) are tested on their own.
 */

/** The titles a room reads: one word per kind would be ambiguous ("rotate" what?). */
export const KIND_LABELS: Record<CeremonyKind, string> = {
  genesis: 'Genesis',
  unseal: 'Unseal',
  'verify-shares': 'Verify shares',
  'rotate-kek': 'Rotate KEK',
  reshare: 'Reshare the root',
  'rotate-root': 'Rotate the root key',
};

export const ROLE_LABELS: Record<CeremonyRole, string> = { administrator: 'Ceremony administrator', officer: 'Officer', witness: 'Witness' };

/**
 * The nonce in groups of four hex digits, so that a room can read it aloud and compare it group
 * by group ("3fa9 … 07c2"): 32 digits in one run are read wrongly.
 */
export function groupNonce(nonce: string, size = 4): string[] {
  const out: string[] = [];
  for (let i = 0; i < nonce.length; i += size) out.push(nonce.slice(i, i + size));
  return out;
}

/** The next step to be done (the first not done), or null when every step is. */
export function currentStep(c: Pick<Ceremony, 'steps'>): CeremonyStep | null {
  return c.steps.find((s) => s.at === null) ?? null;
}

/** The ceremony's key operation (the step Airlock does itself). */
export function automaticStep(c: Pick<Ceremony, 'steps'>): CeremonyStep | null {
  return c.steps.find((s) => s.automatic) ?? null;
}

/**
 * The officer a step belongs to, when it is an officer's own step. Issuing scripts (genesis,
 * reshare, rotate-root) give each officer one step, in the order the officers were named
 * (electron/core/keys/scripts.ts), so the k-th officer step is the k-th officer's.
 */
export function officerOfStep(c: Pick<Ceremony, 'steps' | 'participants'>, n: number): string | null {
  const officers = c.participants.filter((p) => p.role === 'officer').map((p) => p.name);
  const steps = c.steps.filter((s) => s.by === 'officer' && !s.automatic);
  const k = steps.findIndex((s) => s.n === n);
  return k >= 0 ? (officers[k] ?? null) : null;
}

/**
 * Who may acknowledge a step: the participants of its role, or only its officer for an officer's
 * own step (the core refuses anyone else; the UI does not offer them).
 */
export function acknowledgers(c: Pick<Ceremony, 'steps' | 'participants'>, step: CeremonyStep): string[] {
  if (step.automatic) return [];
  const own = officerOfStep(c, step.n);
  if (own) return [own];
  return c.participants.filter((p) => p.role === step.by).map((p) => p.name);
}

/** Whether a kind makes new shares (and so has officers' steps, passphrases and issued shares). */
export function issuing(kind: CeremonyKind): boolean {
  return kind === 'genesis' || kind === 'reshare' || kind === 'rotate-root';
}

/**
 * Names typed one per line or separated by commas: trimmed, empty ones dropped. Duplicates are
 * kept (the core refuses them with its own message, naming the rule).
 */
export function parseNames(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** File-name safe: letters, digits, `.`, `_` and `-` only. */
const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

/** `share-<officer>-<index>-<ceremony>.txt`: a file each officer can tell apart on their media. */
export function shareFileName(officer: string, index: number, ceremony: string): string {
  return `share-${safe(officer)}-${index}-${safe(ceremony)}.txt`;
}

/** `transcript-<kind>-<ceremony>.json`. */
export function transcriptFileName(kind: string, ceremony: string): string {
  return `transcript-${safe(kind)}-${safe(ceremony)}.json`;
}

/** "2 of 3 shares": the unseal progress a room watches. */
export function progressText(collected: number, threshold: number): string {
  return `${collected} of ${threshold} share${threshold === 1 ? '' : 's'}`;
}

/** What the status line of a ceremony says, in words the room reads. */
export function statusText(c: Pick<Ceremony, 'status' | 'steps'>): string {
  if (c.status !== 'open') return c.status;
  const next = currentStep(c);
  return next ? `open: step ${next.n} of ${c.steps.length}` : 'open';
}
