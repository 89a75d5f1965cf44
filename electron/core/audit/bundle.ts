import Database from 'better-sqlite3';
import fs from 'node:fs';
import readline from 'node:readline';
import type { BundleReport } from '../../../shared/contract/audit';
import type { Db } from '../db/db';
import { keyFingerprint } from '../keys/ed25519';
import { canonical } from './canonical';
import { CHECKPOINT_CHANNEL } from './chain';
import { readHandovers, signingHandoverOf, trustChain, untrustedOf, windowsOf, pemsOf, type HandoverRows, type TrustedAuditKeys } from './key-chain';
import { trustedAuditKeys } from './keys';
import { ChainScanner, type BadEvent } from './verify-core';

/**
 * The audit bundle (`audit export --format bundle`, docs/formats.md "Audit bundles"): what an
 * auditor needs to verify a range of the trail offline, pinning only the fingerprint of the audit
 * key noted at setup, across any number of rotations of that key.
 *
 * Line 1 is the header: `{"bundle":"airlock.audit-bundle/v1","fromSeq","toSeq","keys":[…],
 * "handovers":[[handover, checkpoint], …]}` — every audit signing key version on the chain of
 * handovers up to the range's end (fingerprint, version, public key PEM), and every signing key
 * handover up to it with the checkpoint right after it (the one signed by the old key), each as a
 * JSONL event line, also those before the range. Then one event per line, exactly as the JSONL
 * export writes them (canonical body, then `hash` and `prevHash`).
 */

export type { BundleReport };

export const BUNDLE_FORMAT = 'airlock.audit-bundle/v1';

/** An event as a JSONL line: the canonical body with hash and prevHash appended (export.ts). */
export function eventLine(body: string, prevHash: string, hash: string): string {
  return `${body.slice(0, -1)},"hash":${JSON.stringify(hash)},"prevHash":${JSON.stringify(prevHash)}}`;
}

/** The header line of a bundle of events `from`–`to`. */
export function bundleHeader(db: Db, from: number, to: number): string {
  const trusted = trustedAuditKeys(db, { upTo: to });
  const keys = trusted.chain.map((fp) => ({ fingerprint: fp, version: trusted.keys[fp]!.version, publicKey: trusted.keys[fp]!.pem }));
  const row = db.prepare('SELECT seq, body, prev_hash AS prevHash, hash FROM audit_events WHERE seq = ?');
  const handovers: Array<[unknown, unknown]> = [];
  for (const h of readHandovers(db, to)) {
    if (!signingHandoverOf(h.body)) continue;
    const next = row.get(h.seq + 1) as { body: string; prevHash: string; hash: string } | undefined;
    if (!next) continue;
    handovers.push([JSON.parse(eventLine(h.body, h.prevHash, h.hash)), JSON.parse(eventLine(next.body, next.prevHash, next.hash))]);
  }
  return JSON.stringify({ bundle: BUNDLE_FORMAT, fromSeq: from, toSeq: to, keys, handovers });
}


/** A JSONL event line split back into its stored parts (the body re-canonicalised). */
function splitLine(o: Record<string, unknown>): { seq: number; ts: string; actor: string; channel: string; body: string; prevHash: string; hash: string } {
  const { hash, prevHash, ...rest } = o;
  return {
    seq: Number(rest.seq),
    ts: String(rest.ts),
    actor: String(rest.actor),
    channel: String(rest.channel),
    body: canonical(rest),
    prevHash: String(prevHash),
    hash: String(hash),
  };
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

const fail = (r: Omit<BundleReport, 'ok' | 'firstBad'>, seq: number, kind: BadEvent['kind'], reason: string): BundleReport => ({ ...r, ok: false, firstBad: { seq, kind, reason } });

/**
 * Verifies a bundle offline against the audit key fingerprint the auditor pinned: the pinned key
 * (its PEM from the bundle, checked against the fingerprint) and the keys each trusted key handed
 * over to — each handover signed by its predecessor in the checkpoint after it — verify the
 * checkpoints in the range, each key only within its part of the chain; every event must match
 * its hash and link to the one before. Reads the file line by line (large bundles), into an
 * in-memory database the chain scanner of `audit verify` checks.
 */
export async function verifyBundleFile(file: string, pinned: string): Promise<BundleReport> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  return verifyBundleLines(rl, pinned, file);
}

/** The same, over the bundle's lines (the `audit:verifyBundle` channel passes the text's). */
export async function verifyBundleLines(lines: AsyncIterable<string> | Iterable<string>, pinned: string, name = 'the bundle'): Promise<BundleReport> {
  const file = name;
  const base = { events: 0, fromSeq: null as number | null, toSeq: null as number | null, checkpoints: 0, keyFingerprints: [] as string[], warnings: [] as string[] };
  const mem = new Database(':memory:');
  try {
    mem.exec('CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)');
    const insert = mem.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    type Header = { bundle?: unknown; fromSeq?: unknown; toSeq?: unknown; keys?: unknown; handovers?: unknown };
    const st: { header: Header | null } = { header: null };
    let first: { seq: number; prevHash: string } | null = null;
    let n = 0;
    const tx = mem.transaction((rows: Array<ReturnType<typeof splitLine>>) => {
      for (const r of rows) insert.run(r.seq, r.ts, r.actor, r.channel, r.body, r.prevHash, r.hash);
    });
    let batch: Array<ReturnType<typeof splitLine>> = [];
    for await (const line of lines) {
      n++;
      if (line.length === 0) continue;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        return fail(base, 0, 'edited', `line ${n} of the bundle is not JSON`);
      }
      if (st.header === null) {
        st.header = (o ?? {}) as Header;
        if (st.header.bundle !== BUNDLE_FORMAT) return fail(base, 0, 'edited', `${file} is not an Airlock audit bundle (${BUNDLE_FORMAT}): its first line has no such header`);
        continue;
      }
      if (!o || typeof o !== 'object' || typeof (o as { hash?: unknown }).hash !== 'string' || typeof (o as { prevHash?: unknown }).prevHash !== 'string') {
        return fail(base, 0, 'edited', `line ${n} of the bundle is not an audit event with hash and prevHash`);
      }
      const r = splitLine(o as Record<string, unknown>);
      if (!Number.isSafeInteger(r.seq) || r.seq < 1) return fail(base, 0, 'edited', `line ${n} of the bundle has no valid sequence number`);
      first ??= { seq: r.seq, prevHash: r.prevHash };
      batch.push(r);
      if (batch.length >= 2000) {
        try {
          tx(batch);
        } catch {
          return fail(base, r.seq, 'inserted', `event ${r.seq} appears twice in the bundle: inserted`);
        }
        batch = [];
        await yieldLoop(); // the console's channel runs this in its main process: never a long stall
      }
    }
    try {
      tx(batch);
    } catch {
      return fail(base, 0, 'inserted', 'an event appears twice in the bundle: inserted');
    }
    const header = st.header;
    if (!header) return fail(base, 0, 'edited', `${file} is empty`);
    const fromSeq = Number(header.fromSeq);
    const toSeq = Number(header.toSeq);
    Object.assign(base, { fromSeq, toSeq });

    // The keys: the pinned one's PEM from the bundle, checked against the pinned fingerprint.
    const keys = Array.isArray(header.keys) ? (header.keys as Array<{ fingerprint?: unknown; publicKey?: unknown; version?: unknown }>) : [];
    const pinnedKey = keys.find((k) => k.fingerprint === pinned && typeof k.publicKey === 'string');
    let pinnedPem: string | null = null;
    try {
      pinnedPem = pinnedKey && keyFingerprint(String(pinnedKey.publicKey)) === pinned ? String(pinnedKey.publicKey) : null;
    } catch {
      pinnedPem = null;
    }
    if (!pinnedPem) return fail(base, Math.max(1, fromSeq), 'bad-signature', `the bundle carries no public key with the pinned fingerprint ${pinned}: it was not signed by that key (or the key was replaced): bad signature`);

    // The handovers, from the one that introduced the pinned key (if any) on.
    const handovers: HandoverRows[] = [];
    for (const pair of Array.isArray(header.handovers) ? (header.handovers as unknown[]) : []) {
      if (!Array.isArray(pair) || pair.length !== 2 || !pair[0] || !pair[1] || typeof pair[0] !== 'object' || typeof pair[1] !== 'object') {
        return fail(base, 0, 'edited', 'a handover in the bundle header is malformed');
      }
      const h = splitLine(pair[0] as Record<string, unknown>);
      const c = splitLine(pair[1] as Record<string, unknown>);
      handovers.push({ seq: h.seq, ts: h.ts, hash: h.hash, prevHash: h.prevHash, body: h.body, next: c.seq === h.seq + 1 ? { seq: c.seq, channel: c.channel, body: c.body } : null });
      // A handover inside the range must be the event the range holds there.
      const there = mem.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck().get(h.seq) as string | undefined;
      if (there !== undefined && there !== h.hash) return fail(base, h.seq, 'edited', `the bundle header's handover at event ${h.seq} is not the event the bundle holds there: edited`);
    }
    handovers.sort((a, b) => a.seq - b.seq);
    const introduced = handovers.findIndex((h) => signingHandoverOf(h.body)?.newFingerprint === pinned);
    const walk = introduced >= 0 ? handovers.slice(introduced + 1) : handovers;
    const trusted: TrustedAuditKeys = trustChain({ fingerprint: pinned, pem: pinnedPem }, walk);
    if (introduced >= 0) trusted.keys[pinned]!.fromHead = handovers[introduced]!.seq + 1;
    base.keyFingerprints = trusted.chain;
    // Keys handed over before the pinned one: not trusted (trust never flows back from a successor).
    const before = handovers.slice(0, introduced + 1).flatMap((h) => {
      const ho = signingHandoverOf(h.body);
      return ho ? [ho.oldFingerprint] : [];
    });
    const untrusted = untrustedOf(trusted, keys.map((k) => String(k.fingerprint)), pinned, before);

    const events = (mem.prepare('SELECT count(*) FROM audit_events').pluck().get() as number) ?? 0;
    base.events = events;
    if (events === 0) return { ...base, ok: true, firstBad: null };
    const last = mem.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number;
    const scanner = new ChainScanner(mem, { from: first!.seq, to: last }, first!.prevHash, pemsOf(trusted), 2000, false, windowsOf(trusted), untrusted);
    while (!scanner.step()) await yieldLoop();
    const scan = scanner.summary;
    base.checkpoints = scan.checkpoints;
    const refused = trusted.refused[0];
    let bad: BadEvent | null = scan.bad;
    if (refused && refused.seq <= last && (!bad || bad.seq > refused.seq)) bad = { seq: refused.seq, kind: 'bad-signature', reason: `${refused.reason}: bad signature` };
    if (!bad && (first!.seq !== fromSeq || last !== toSeq)) bad = { seq: first!.seq, kind: 'deleted', reason: `the bundle says it holds events ${fromSeq}–${toSeq} but holds ${first!.seq}–${last}: deleted` };
    if (!bad && events !== last - first!.seq + 1) bad = { seq: first!.seq, kind: 'deleted', reason: 'events are missing from the bundle: deleted' };
    if (!bad && scan.checkpoints === 0) base.warnings.push('No checkpoint in the bundle: the hashes link, but nothing in it is signed.');
    if (!bad) {
      const lastCp = mem.prepare('SELECT max(seq) FROM audit_events WHERE channel = ?').pluck().get(CHECKPOINT_CHANNEL) as number | null;
      if (lastCp !== null && lastCp < last) base.warnings.push(`Events ${lastCp + 1}–${last} come after the last checkpoint in the bundle: they link, but no signature covers them yet.`);
    }
    if (first!.seq > 1) base.warnings.push(`The bundle starts at event ${first!.seq}: its first prevHash (${first!.prevHash.slice(0, 16)}…) is the hash of event ${first!.seq - 1}; compare it with an earlier bundle.`);
    return { ...base, ok: bad === null, firstBad: bad ? { seq: bad.seq, kind: bad.kind, reason: bad.reason } : null };
  } finally {
    mem.close();
  }
}
