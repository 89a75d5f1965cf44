import { attachSignature, STATEMENT_FORMAT, type VersionStatement } from './signature';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { ModelFormat, ModelVersion as ContractVersion, Publication } from '../../../shared/contract/models';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { AreaHandlers, CallContext } from '../dispatch';
import type { KeyService } from '../keys/service';
import { Catalog, type ModelVersionView } from './catalog';
import { readModelKit, readOciLayout, resolveMediaPath } from './formats';
import { layerKeyIdOf, publishVersion } from './publish';
import { RegistryClient, type TokenRequest } from './registry/client';
import { parseScope, signRegistryToken, type TokenSigner } from './registry/token';

/**
 * The catalog's channels (issue 13): `datasets:*` and `models:*`. Media paths are resolved under
 * the configured media roots only (formats.ts); an OCI layout or a ModelKit is read into a
 * temporary tree under the data directory (0700, removed afterwards, also on failure) and hashed
 * there like a directory import. Approving a `phi` version is the two-person rule
 * (`models:approvePhi`): the dispatcher refuses a direct call, and when approvals:execute runs the
 * approved request the approver — read from the request itself, never from the input — is the
 * catalog's second person.
 */

export interface RegistryTokens {
  signer: TokenSigner;
  issuer: string;
  service: string;
}

export interface ModelsDeps {
  db: Db;
  now: () => Date;
  random: (n: number) => Buffer;
  mediaRoots: () => readonly string[];
  /** Where temporary trees go (under the data directory). */
  workDir: string;
  keys: Pick<KeyService, 'putDataKey' | 'openDataKey' | 'status'>;
  /**
   * The signer of the tokens Airlock issues for its own pushes when the registry asks for one
   * (distribution's `auth.token`); null: a registry that challenges is refused with a clear error.
   */
  registryTokens?: () => RegistryTokens | null;
  /** Chunk size of layer uploads (tests make it small). */
  chunkBytes?: number;
  /**
   * Signs a version statement (detached CMS by the console CA's bundle-signing certificate) with
   * the caller's vault key; null while there is no CA (before genesis): the version is then
   * published unsigned, and says so.
   */
  signStatement?: () => ((bytes: Buffer, vaultKey: Buffer) => Promise<Buffer>) | null;
  /**
   * After a version's status changed (approved, deprecated, revoked): the access area recompiles
   * and pushes the gate policy when grants name the model (latest-approved grants resolve anew; a
   * revoked version leaves the policy). Returns what it did for the audit detail, or null.
   */
  afterStatusChange?: (ctx: CallContext, model: string) => Promise<{ version: number | null; summary: string } | null>;
}

type Version = z.input<typeof ContractVersion>;
type Pub = z.input<typeof Publication>;

interface PubRow {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  catalog_digest: string;
  encrypted: number;
  published_at: string;
  published_by: string;
  signature: string | null;
}

const ENCRYPTED = new Set(['confidential', 'phi']);

export function createModelsArea(d: ModelsDeps) {
  const catalog = new Catalog({ db: d.db, now: d.now });

  const publications = (model: string, version: string): Pub[] =>
    (d.db.prepare('SELECT * FROM model_publications WHERE model = ? AND version = ? ORDER BY published_at').all(model, version) as PubRow[]).map((r) => ({
      registry: r.registry,
      repository: r.repository,
      tag: r.tag,
      digest: r.digest,
      catalogDigest: r.catalog_digest,
      encrypted: r.encrypted === 1,
      publishedAt: r.published_at,
      publishedBy: r.published_by,
      signature: r.signature,
    }));
  const media = (model: string, version: string) => (d.db.prepare('SELECT format, path FROM model_media WHERE model = ? AND version = ?').get(model, version) as { format: ModelFormat; path: string } | undefined) ?? null;
  const full = (v: ModelVersionView): Version => ({ ...v, media: media(v.model, v.version), publications: publications(v.model, v.version) });
  /** The status is changed (committed) whatever the hosts do: a push that fails is recorded and retried by the access area. */
  const propagate = async (ctx: CallContext, model: string) => {
    if (!d.afterStatusChange) return;
    try {
      const r = await d.afterStatusChange(ctx, model);
      if (r) ctx.auditDetail({ policy: r });
    } catch (e) {
      ctx.auditDetail({ policy: { error: e instanceof Error ? e.message : String(e) } });
    }
  };
  const versionOrThrow = (model: string, version: string) => {
    const v = catalog.version(model, version);
    if (!v) throw new AirlockError('NOT_FOUND', `There is no ${model} ${version} in the catalog (models list shows what is).`);
    return v;
  };
  const registry = () => {
    const r = d.db.prepare('SELECT url, updated_at, updated_by FROM model_registry WHERE singleton = 1').get() as { url: string; updated_at: string; updated_by: string } | undefined;
    return { url: r?.url ?? null, updatedAt: r?.updated_at ?? null, updatedBy: r?.updated_by ?? null };
  };

  /**
   * Runs `fn` on the media as a plain tree of files: a directory as it is; an OCI layout or a
   * ModelKit read into a temporary directory, removed afterwards whatever happens.
   */
  async function withTree<T>(format: ModelFormat, given: string, signal: AbortSignal, fn: (tree: string, real: string) => Promise<T>): Promise<T> {
    const real = await resolveMediaPath(given, d.mediaRoots(), format === 'modelkit' ? 'file' : 'directory');
    if (format === 'directory') return fn(real, real);
    await fs.promises.mkdir(d.workDir, { recursive: true, mode: 0o700 });
    const work = await fs.promises.mkdtemp(path.join(d.workDir, 'import-'));
    try {
      const tree = path.join(work, 'tree');
      await fs.promises.mkdir(tree, { mode: 0o700 });
      if (format === 'oci-layout') await readOciLayout(real, tree, signal);
      else await readModelKit(real, work, tree, signal);
      return await fn(tree, real);
    } finally {
      await fs.promises.rm(work, { recursive: true, force: true });
    }
  }

  /** The approver of the approved request this call runs, from the request row (not from the input). */
  const approverOf = (ctx: CallContext): string | undefined => {
    if (!ctx.approval) return undefined;
    const r = d.db.prepare("SELECT decided_by_name FROM approval_requests WHERE id = ? AND status IN ('approved', 'executing')").get(ctx.approval.id) as { decided_by_name: string | null } | undefined;
    if (!r?.decided_by_name) throw new AirlockError('CONFLICT', `Approval request ${ctx.approval.id} carries no approver; nothing was approved.`);
    return r.decided_by_name;
  };

  /** The data key that encrypts a classified version's layers in the registry: made once, under the models KEK. */
  const layerKey = (model: string, version: string) => {
    const s = d.keys.status();
    if (!s.initialised || s.sealed) {
      throw new AirlockError('KEY_UNAVAILABLE', `${model} ${version} goes into the registry encrypted under a models data key: the key hierarchy must be unsealed first (an unseal ceremony, or --share FILE with this command on the CLI). Nothing was pushed.`);
    }
    const id = layerKeyIdOf(model, version);
    try {
      return { id, key: d.keys.openDataKey('models', id) };
    } catch (e) {
      if (!(e instanceof AirlockError) || e.code !== 'NOT_FOUND') throw e;
    }
    d.keys.putDataKey('models', id, { bytes: 32 });
    return { id, key: d.keys.openDataKey('models', id) };
  };

  const datasets: AreaHandlers<'datasets'> = {
    'datasets:add': (ctx, i) => catalog.addDataset({ ...i, retentionUntil: i.retentionUntil ?? null }, ctx.actor().name),
    'datasets:list': () => catalog.datasets(),
    'datasets:show': (_ctx, i) => {
      const ds = catalog.dataset(i.id);
      if (!ds) throw new AirlockError('NOT_FOUND', `There is no dataset ${i.id} in the catalog.`);
      const usedBy = d.db
        .prepare('SELECT l.model, l.version, l.role, v.status FROM model_lineage l JOIN model_versions v ON v.model = l.model AND v.version = l.version WHERE l.dataset_id = ? ORDER BY l.model, l.version')
        .all(i.id) as { model: string; version: string; role: 'training' | 'fine-tuning' | 'evaluation'; status: 'staged' | 'approved' | 'deprecated' | 'revoked' }[];
      return { dataset: ds, usedBy };
    },
  };

  const models: AreaHandlers<'models'> = {
    'models:list': () => ({
      models: catalog.models().map((m) => ({ ...m, versions: m.versions.map(full) })),
      mediaRoots: [...d.mediaRoots()],
      registry: registry().url,
    }),
    'models:show': (_ctx, i) => {
      const v = versionOrThrow(i.name, i.version);
      const m = d.db.prepare('SELECT description, owner FROM models WHERE name = ?').get(i.name) as { description: string; owner: string };
      const ancestry: { model: string; version: string; classification: ModelVersionView['classification']; status: ModelVersionView['status'] }[] = [];
      const seen = new Set<string>();
      for (let b = v.base; b && !seen.has(`${b.model}:${b.version}`) && ancestry.length < 64; ) {
        seen.add(`${b.model}:${b.version}`);
        const bv = catalog.version(b.model, b.version);
        if (!bv) break;
        ancestry.push({ model: bv.model, version: bv.version, classification: bv.classification, status: bv.status });
        b = bv.base;
      }
      return { version: full(v), description: m.description, owner: m.owner, files: catalog.files(i.name, i.version), ancestry, artifactDigest: catalog.artifact(i.name, i.version).digest };
    },
    'models:import': async (ctx, i) => {
      const by = ctx.actor().name;
      return withTree(i.format, i.path, ctx.signal, async (tree, real) => {
        const created = !d.db.prepare('SELECT 1 FROM models WHERE name = ?').get(i.name);
        if (created) catalog.addModel({ name: i.name, description: i.description ?? '', owner: i.owner }, by);
        try {
          const v = await catalog.importDirectory(
            {
              model: i.name,
              version: i.version,
              dir: tree,
              format: i.format,
              classification: i.classification,
              license: i.license,
              source: i.source,
              base: i.base ? { model: i.base.name, version: i.base.version } : null,
              lineage: i.lineage,
              onRecord: () => d.db.prepare('INSERT INTO model_media (model, version, format, path) VALUES (?, ?, ?, ?)').run(i.name, i.version, i.format, real),
            },
            by,
          );
          ctx.auditDetail({ format: i.format, files: v.files, totalBytes: v.totalBytes, classification: v.classification });
          return full(v);
        } catch (e) {
          // A model made for this import and left without a version is not kept.
          if (created) d.db.prepare('DELETE FROM models WHERE name = ? AND NOT EXISTS (SELECT 1 FROM model_versions WHERE model = ?)').run(i.name, i.name);
          throw e;
        }
      });
    },
    'models:approve': async (ctx, i) => {
      const v = versionOrThrow(i.name, i.version);
      const digest = catalog.artifact(i.name, i.version).digest;
      if (i.digest && i.digest !== digest) throw new AirlockError('CONFLICT', `${i.name} ${i.version} is now ${digest}, not the ${i.digest} that was reviewed: review it again (models show).`);
      const second = approverOf(ctx);
      const out = catalog.setStatus(i.name, i.version, 'approved', ctx.actor().name, second ? { secondPerson: second } : {});
      ctx.auditDetail({ digest: out.manifestDigest, classification: v.classification, ...(second ? { secondPerson: second } : {}) });
      await propagate(ctx, i.name);
      return full(out);
    },
    'models:deprecate': async (ctx, i) => {
      const out = catalog.setStatus(i.name, i.version, 'deprecated', ctx.actor().name, { reason: i.reason });
      await propagate(ctx, i.name);
      return full(out);
    },
    'models:revoke': async (ctx, i) => {
      const out = catalog.setStatus(i.name, i.version, 'revoked', ctx.actor().name, { reason: i.reason });
      await propagate(ctx, i.name);
      return full(out);
    },
    'models:verify': async (ctx, i) => {
      versionOrThrow(i.name, i.version);
      const m = media(i.name, i.version);
      const format = i.format ?? m?.format;
      const p = i.path ?? m?.path;
      if (!format || !p) throw new AirlockError('INVALID_INPUT', `Where is ${i.name} ${i.version}? Name the media path and its format (--path, --format).`);
      return withTree(format, p, ctx.signal, (tree) => catalog.verify(i.name, i.version, tree));
    },
    'models:publish': async (ctx, i) => {
      const v = versionOrThrow(i.name, i.version);
      if (v.status !== 'approved') throw new AirlockError('CONFLICT', `${i.name} ${i.version} is ${v.status}: only approved versions are published to the registry.`);
      const url = registry().url;
      if (!url) throw new AirlockError('NOT_FOUND', 'No registry is set: set the one model versions are published to first (models set-registry URL).');
      const m = media(i.name, i.version);
      const format = i.format ?? m?.format;
      const p = i.path ?? m?.path;
      if (!format || !p) throw new AirlockError('INVALID_INPUT', `Where is ${i.name} ${i.version}? Name the media path and its format (--path, --format).`);
      const by = ctx.actor().name;
      const tokens: { principal: string; scope: string; expiresAt: string; jti: string }[] = [];
      const token = async (req: TokenRequest) => {
        const t = d.registryTokens?.() ?? null;
        if (!t) throw new AirlockError('UNAUTHENTICATED', `The registry ${url} asks for a token, and this console has no registry-token certificate to issue one with. Nothing more was pushed.`);
        const scope = req.scope ?? '';
        // Only what this push needs: the version's own repository.
        const access = parseScope(scope).filter((a) => a.name === `models/${i.name}`);
        if (!access.length) throw new AirlockError('FORBIDDEN', `The registry asked for a token for ${scope || 'nothing'}; Airlock's own push asks only for models/${i.name}.`);
        const s = signRegistryToken({ signer: t.signer, issuer: t.issuer, service: req.service ?? t.service, subject: `airlock-console:${by}`, access, now: d.now(), random: d.random });
        tokens.push({ principal: `airlock-console:${by}`, scope: access.map((a) => `repository:${a.name}:${a.actions.join(',')}`).join(' '), expiresAt: s.expiresAt, jti: s.jti });
        return s.token;
      };
      const client = new RegistryClient({ baseUrl: url, token });
      const key = ENCRYPTED.has(v.classification) ? layerKey(i.name, i.version) : undefined;
      let published: Pub | undefined;
      try {
        const out = await withTree(format, p, ctx.signal, async (tree) => {
          await fs.promises.mkdir(d.workDir, { recursive: true, mode: 0o700 });
          return publishVersion({ catalog, client, random: d.random }, i.name, i.version, tree, {
            signal: ctx.signal,
            ...(d.chunkBytes ? { chunkBytes: d.chunkBytes } : {}),
            ...(key ? { layerKey: key, workDir: d.workDir } : {}),
          });
        });
        const at = d.now().toISOString();
        // The version's signature beside it in the registry (referrers tag-schema fallback), once the CA exists.
        const sign = d.signStatement?.() ?? null;
        let signature: string | null = null;
        if (sign) {
          const vaultKey = ctx.actor().vaultKey;
          const statement: VersionStatement = {
            format: STATEMENT_FORMAT,
            repository: out.repository,
            digest: out.digest,
            catalogDigest: out.catalogDigest,
            model: i.name,
            version: i.version,
            classification: v.classification,
            approvedBy: v.statusBy,
            approvedAt: v.statusAt,
            signedAt: at,
          };
          signature = (await attachSignature(client, statement, (b) => sign(b, vaultKey))).digest;
        }
        d.db
          .prepare(
            `INSERT INTO model_publications (model, version, registry, repository, tag, digest, catalog_digest, encrypted, published_at, published_by, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (model, version, registry) DO UPDATE SET repository = excluded.repository, tag = excluded.tag, digest = excluded.digest, catalog_digest = excluded.catalog_digest, encrypted = excluded.encrypted, published_at = excluded.published_at, published_by = excluded.published_by, signature = coalesce(excluded.signature, model_publications.signature)`,
          )
          .run(i.name, i.version, url, out.repository, out.tag, out.digest, out.catalogDigest, out.encrypted ? 1 : 0, at, by, signature);
        published = publications(i.name, i.version).find((x) => x.registry === url)!;
        return published;
      } finally {
        key?.key.fill(0);
        // Every token Airlock issued for this push, on the trail: who, what scope, until when.
        ctx.auditDetail({ registry: url, tokens, ...(published ? { signature: published.signature } : {}) });
      }
    },
    'models:registry': () => registry(),
    'models:setRegistry': (ctx, i) => {
      const u = new URL(i.url);
      const url = u.origin;
      d.db
        .prepare('INSERT INTO model_registry (singleton, url, updated_at, updated_by) VALUES (1, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at, updated_by = excluded.updated_by')
        .run(url, d.now().toISOString(), ctx.actor().name);
      return registry();
    },
  };

  return { catalog, datasets, models, handlers: { ...datasets, ...models } };
}
