/**
 * The models catalog on a real SQLite file: imports hash every file (checked against the real
 * sha256sum), lineage never lowers a classification, an approved version is immutable and named
 * by its manifest digest, phi approval needs a second person, hostile media is refused.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { openDatabase, type Db } from '../db/db';
import { Catalog } from './catalog';

let dir: string;
let db: Db;
let cat: Catalog;
let clock = Date.parse('2026-12-07T10:00:00Z');
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-catalog-'));
  db = openDatabase(path.join(dir, 'airlock.db'));
  cat = new Catalog({ db, now: () => new Date((clock += 1000)) });
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function media(name: string, files: Record<string, string>): string {
  const root = path.join(dir, name);
  for (const [p, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), text);
  }
  return root;
}
const refusal = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof AirlockError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
};

describe('models catalog', () => {
  it('imports a directory with every file hashed, and re-verifies it', async () => {
    cat.addModel({ name: 'llama-med', owner: 'clinical ai team' }, 'alice');
    const src = media('usb1', { 'config.json': '{"a":1}', 'weights/part-1.safetensors': 'x'.repeat(5000), 'tokenizer.json': '{}' });
    const v = await cat.importDirectory({ model: 'llama-med', version: 'v1', dir: src, classification: 'internal', license: 'llama3', source: 'USB stick 0042' }, 'alice');
    expect(v).toMatchObject({ status: 'staged', files: 3, totalBytes: 5000 + 7 + 2, manifestDigest: null, importedBy: 'alice' });
    for (const f of cat.files('llama-med', 'v1')) expect(execFileSync('sha256sum', [path.join(src, f.path)], { encoding: 'utf8' }).split(' ')[0]).toBe(f.sha256);
    expect(await cat.verify('llama-med', 'v1', src)).toEqual({ ok: true, missing: [], extra: [], changed: [] });
    fs.writeFileSync(path.join(src, 'tokenizer.json'), '{"tampered":true}');
    fs.rmSync(path.join(src, 'config.json'));
    fs.writeFileSync(path.join(src, 'extra.bin'), 'x');
    expect(await cat.verify('llama-med', 'v1', src)).toEqual({ ok: false, missing: ['config.json'], extra: ['extra.bin'], changed: ['tokenizer.json'] });
  });

  it('never lets the lineage lower a classification: a fine-tune on PHI is PHI', async () => {
    cat.addDataset({ id: 'discharge-notes-2025', name: 'Discharge notes 2025', classification: 'phi', retentionUntil: '2032-12-31', location: 'enclave A, /data/notes', owner: 'records office' }, 'alice');
    cat.addModel({ name: 'base', owner: 'ml' }, 'alice');
    cat.addModel({ name: 'med-tune', owner: 'ml' }, 'alice');
    await cat.importDirectory({ model: 'base', version: '1', dir: media('b', { w: 'base' }), classification: 'public', license: 'apache-2.0', source: 'hf mirror' }, 'alice');
    const tune = { model: 'med-tune', version: '1', dir: media('t', { w: 'tune' }), license: 'internal', source: 'training run 7', base: { model: 'base', version: '1' }, lineage: [{ dataset: 'discharge-notes-2025', role: 'fine-tuning' as const }] };
    const e = await refusal(cat.importDirectory({ ...tune, classification: 'confidential' }, 'alice'));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain('discharge-notes-2025 is phi');
    expect(cat.version('med-tune', '1')).toBeNull(); // nothing half-imported
    expect((await refusal(cat.importDirectory({ ...tune, classification: 'phi', lineage: [{ dataset: 'nope', role: 'training' }] }, 'alice'))).code).toBe('NOT_FOUND');
    const v = await cat.importDirectory({ ...tune, classification: 'phi' }, 'alice');
    expect(v.lineage).toEqual([{ dataset: 'discharge-notes-2025', role: 'fine-tuning', classification: 'phi', retentionUntil: '2032-12-31' }]);
    expect(v.base).toEqual({ model: 'base', version: '1' });

    // Approval: the base first; phi needs a second person who is someone else.
    expect((await refusal(() => cat.setStatus('med-tune', '1', 'approved', 'alice', { secondPerson: 'olga' }))).message).toContain('approve the base first');
    cat.setStatus('base', '1', 'approved', 'alice');
    expect((await refusal(() => cat.setStatus('med-tune', '1', 'approved', 'alice'))).code).toBe('APPROVAL_REQUIRED');
    expect((await refusal(() => cat.setStatus('med-tune', '1', 'approved', 'alice', { secondPerson: 'Alice' }))).code).toBe('FORBIDDEN');
    const ok = cat.setStatus('med-tune', '1', 'approved', 'alice', { secondPerson: 'olga' });
    expect(ok).toMatchObject({ status: 'approved', statusBy: 'alice with olga' });
    expect(ok.manifestDigest).toBe(cat.artifact('med-tune', '1').digest);
  });

  it('names an approved version by a deterministic manifest digest and keeps it immutable', async () => {
    cat.addModel({ name: 'm', owner: 'o' }, 'alice');
    const src = media('m', { 'b.bin': 'bbb', 'a.bin': 'aa' });
    await cat.importDirectory({ model: 'm', version: 'v1', dir: src, classification: 'internal', license: 'mit', source: 'disk' }, 'alice');
    const art = cat.artifact('m', 'v1');
    expect(art.manifest.layers.map((l) => l.annotations?.['org.opencontainers.image.title'])).toEqual(['a.bin', 'b.bin']);
    expect(art.manifest.annotations?.['io.airlock.classification']).toBe('internal');
    expect(cat.artifact('m', 'v1').digest).toBe(art.digest); // deterministic
    const v = cat.setStatus('m', 'v1', 'approved', 'bob');
    expect(v.manifestDigest).toBe(art.digest);
    expect(() => db.prepare("UPDATE model_files SET sha256 = ? WHERE model = 'm'").run('0'.repeat(64))).toThrow(/immutable/);
    expect((await refusal(() => cat.setStatus('m', 'v1', 'deprecated', 'bob'))).message).toContain('Say why');
    cat.setStatus('m', 'v1', 'deprecated', 'bob', { reason: 'superseded by v2' });
    cat.setStatus('m', 'v1', 'revoked', 'bob', { reason: 'licence withdrawn' });
    expect((await refusal(() => cat.setStatus('m', 'v1', 'approved', 'bob'))).message).toContain('revocation is final');
    expect((await refusal(cat.importDirectory({ model: 'm', version: 'v2', dir: src, classification: 'internal', license: 'mit', source: 'disk', base: { model: 'm', version: 'v1' } }, 'alice'))).message).toContain('revoked');
    // A staged version revoked before approval: recorded with the digest of what it was.
    await cat.importDirectory({ model: 'm', version: 'v3', dir: src, classification: 'internal', license: 'mit', source: 'disk', format: 'oci-layout' }, 'alice');
    const r = cat.setStatus('m', 'v3', 'revoked', 'bob', { reason: 'wrong training run' });
    expect(r).toMatchObject({ status: 'revoked', format: 'oci-layout', manifestDigest: cat.artifact('m', 'v3').digest, statusReason: 'wrong training run' });
  });

  it('refuses hostile media: symlinks, odd names, empty directories, bad names', async () => {
    cat.addModel({ name: 'm', owner: 'o' }, 'alice');
    const src = media('evil', { 'w.bin': 'w' });
    fs.symlinkSync('/etc/passwd', path.join(src, 'passwd'));
    const base = { model: 'm', version: 'v1', classification: 'internal' as const, license: 'mit', source: 'usb' };
    expect((await refusal(cat.importDirectory({ ...base, dir: src }, 'alice'))).message).toContain('symbolic link');
    fs.rmSync(path.join(src, 'passwd'));
    fs.writeFileSync(path.join(src, 'line\nbreak'), 'x');
    expect((await refusal(cat.importDirectory({ ...base, dir: src }, 'alice'))).message).toContain('control characters');
    expect((await refusal(cat.importDirectory({ ...base, dir: media('empty', {}) }, 'alice'))).code).toMatch(/INVALID_INPUT|NOT_FOUND/);
    expect((await refusal(cat.importDirectory({ ...base, dir: path.join(dir, 'missing') }, 'alice'))).code).toBe('NOT_FOUND');
    expect((await refusal(() => cat.addModel({ name: 'Has-Capitals', owner: 'o' }, 'alice'))).code).toBe('INVALID_INPUT');
    expect((await refusal(cat.importDirectory({ ...base, version: 'v 1', dir: src }, 'alice'))).code).toBe('INVALID_INPUT');
    expect(cat.models()[0]!.versions).toEqual([]);
  });
});
