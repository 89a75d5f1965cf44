// The attacker of the audit tests: a separate process that holds the database file and rewrites
// it with better-sqlite3 directly (triggers dropped), re-hashing what it changed so the chain
// links again. It has no key: it cannot sign a checkpoint or audit.head.
//
//   node audit-attacker.mjs DB_FILE '{"op": "...", ...}'
//
// ops:
//   forge      {dropCheckpointsFrom?: N, edit?: {seq, from, to}, insertAt?: N, deleteSeq?: N}
//              removes the checkpoints at or after dropCheckpointsFrom (or all with `all: true`),
//              applies the change, renumbers the rows from the first change on (bodies included)
//              and re-hashes the chain from there.
//   cut        {after: N}     deletes every event after N (the tail, checkpoints included)
//   insert     {at: N}        inserts a forged event at N and renumbers the seq column only (no re-hash)
import Database from 'better-sqlite3';
import crypto from 'node:crypto';

const [file, json] = process.argv.slice(2);
const cmd = JSON.parse(json);
const db = new Database(file);
db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');

const GENESIS = '0'.repeat(64);
/** RFC 8785 for the values an audit event holds (strings, integers, booleans, null, arrays, objects). */
const canon = (v) =>
  v === null || typeof v !== 'object'
    ? JSON.stringify(v)
    : Array.isArray(v)
      ? `[${v.map(canon).join(',')}]`
      : `{${Object.keys(v)
          .sort()
          .filter((k) => v[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${canon(v[k])}`)
          .join(',')}}`;
const sha = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

function rewrite(rows, from) {
  // rows: [{ev, ...}] in order; positions from index `from` on get new numbers, bodies and hashes.
  let prev = from === 0 ? GENESIS : rows[from - 1].hash;
  for (let i = from; i < rows.length; i++) {
    const r = rows[i];
    r.ev.seq = i + 1;
    r.seq = i + 1;
    r.body = canon(r.ev);
    r.prev_hash = prev;
    r.hash = sha(prev + r.body);
    prev = r.hash;
  }
}

db.transaction(() => {
  if (cmd.op === 'cut') {
    db.prepare('DELETE FROM audit_events WHERE seq > ?').run(cmd.after);
    return;
  }
  if (cmd.op === 'insert') {
    db.prepare('UPDATE audit_events SET seq = -seq - 1 WHERE seq >= ?').run(cmd.at);
    db.prepare('UPDATE audit_events SET seq = -seq WHERE seq < 0').run();
    const e = JSON.parse(db.prepare('SELECT body FROM audit_events WHERE seq = ?').pluck().get(cmd.at + 1));
    const forged = canon({ ...e, seq: cmd.at, actor: 'alice', channel: 'hosts:remove', target: 'evidence' });
    const prev = cmd.at === 1 ? GENESIS : db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck().get(cmd.at - 1);
    db.prepare('INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?)').run(cmd.at, e.ts, 'alice', 'hosts:remove', forged, prev, sha(prev + forged));
    return;
  }
  if (cmd.op !== 'forge') throw new Error(`unknown op ${cmd.op}`);
  const rows = db.prepare('SELECT seq, ts, actor, channel, body, prev_hash, hash FROM audit_events ORDER BY seq').all();
  for (const r of rows) r.ev = JSON.parse(r.body);
  let first = rows.length;
  const out = [];
  for (const r of rows) {
    const dropCp = r.channel === 'audit:checkpoint' && (cmd.all || (cmd.dropCheckpointsFrom !== undefined && r.seq >= cmd.dropCheckpointsFrom));
    if (cmd.insertAt === r.seq) {
      first = Math.min(first, out.length);
      out.push({ ev: { ...r.ev, actor: 'alice', channel: 'hosts:remove', target: 'evidence', phase: 'request', outcome: 'pending' }, ts: r.ts, actor: 'alice', channel: 'hosts:remove' });
    }
    if (dropCp || cmd.deleteSeq === r.seq) {
      first = Math.min(first, out.length);
      continue;
    }
    if (cmd.edit && cmd.edit.seq === r.seq) {
      first = Math.min(first, out.length);
      r.ev = JSON.parse(r.body.replace(cmd.edit.from, cmd.edit.to));
      r.actor = r.ev.actor;
    }
    out.push(r);
  }
  rewrite(out, first);
  db.prepare('DELETE FROM audit_events').run();
  const ins = db.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
  for (const r of out) ins.run(r.seq, r.ts, r.actor, r.channel, r.body, r.prev_hash, r.hash);
})();
db.close();
