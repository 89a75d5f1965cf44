import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { DEFAULT_KDF, type KdfParams } from '../vault/crypto';
import {
  isKeyDomain,
  KEY_BYTES,
  KEY_DOMAINS,
  keyCheckValue,
  rewrapDataKeys,
  unwrapDataKey,
  unwrapKek,
  wrapDataKey,
  wrapKek,
  type KeyDomain,
  type WrappedDataKey,
} from './hierarchy';
import type { RewrapFn } from './rewrap';
import {
  armorShare,
  checkShape,
  dearmorShare,
  MIN_PASSPHRASE,
  officerName,
  prepareSealing,
  problemMessage,
  sealShareForOfficer,
  shareProblem,
  ShareCollector,
  sharePayload,
  splitRoot,
  unsealShare,
  type RootShare,
  type ShareRecord,
} from './shares';
import { ConsoleKeyStore, openConsoleKek, wrapConsoleKek } from './console-keys';
import { OWN_KEYS, type KeyPurpose } from './registry';
import { KeyStore } from './store';

/**
 * The key hierarchy's service (issue 12): genesis, unseal with officers' shares, verify-shares,
 * data keys, KEK rotation with rewrap, reshare and root rotation. The root and the unwrapped KEKs
 * live only in this object's memory while the hierarchy is unsealed, and are zeroed (best effort)
 * on `seal()`; a new process starts sealed.
 *
 * Auditing, roles, step-up and the two-person rule are the caller's (the contract and the
 * dispatcher): this layer decides what is cryptographically allowed and says, in sentences a
 * security officer can act on, what is missing when it refuses.
 *
 * Operations that replace keys (genesis, KEK rotation, reshare, root rotation) run one at a time,
 * and work on their own copies of the keys they use, so a `seal()` in the middle of one zeroes
 * the service's keys without corrupting what the operation is writing.
 */

export interface KeyServiceDeps {
  db: Db;
  random: (n: number) => Buffer;
  now: () => Date;
  /** Argon2id parameters for officers' passphrases (tests lower them). */
  kdf?: KdfParams;
  /** Rewraps a batch off the main thread (rewrap.ts `workerRewrap(pool)`); in-process without it. */
  rewrap?: RewrapFn;
  /** Data keys per rewrap page (default REWRAP_PAGE; tests use small pages). */
  rewrapPageSize?: number;
  /**
   * Called at each durable step boundary of a key-replacing operation (after each commit), with
   * its name: the crash tests kill the process there (test/integration/keys-kill.test.ts). Inert
   * unless given; production never passes one.
   */
  boundary?: (at: string) => void;
}

export interface OfficerInput {
  name: string;
  /** Seals the officer's share to this passphrase (Argon2id); without one the armored file holds the share in the clear, for removable media kept locked away. */
  passphrase?: string;
  /**
   * The salt (base64) and fingerprint from `prepareSealing` that the officer confirmed: the share
   * is then sealed to exactly that key, or the ceremony is refused.
   */
  confirmed?: { salt: string; fingerprint: string };
}

/**
 * What genesis, reshare and root rotation take. `nonce` is the ceremony's own (vault#844): the
 * share files carry it, so a share names the ceremony that made it and the transcript's nonce is
 * the one inside every share it lists. Without one (direct calls in tests) a fresh one is drawn.
 */
export interface CeremonyInput {
  threshold: number;
  officers: readonly OfficerInput[];
  nonce?: string;
}

/**
 * What genesis takes. `vaultKey` (the acting user's) opens the console KEK versions that exist
 * since first-run setup, so genesis adopts them (wraps them under the root too) rather than
 * making a console KEK sign-ins could not open; it is required once any exists.
 */
export interface GenesisInput extends CeremonyInput {
  vaultKey?: Buffer;
}

export interface IssuedShare {
  index: number;
  officer: string;
  armored: string;
  /** The officer's sealing fingerprint (they confirm it, write it down and find it in the file); null for an unsealed share. */
  fingerprint: string | null;
}

export interface CeremonyShares {
  nonce: string;
  hierarchyId: string;
  rootKcv: string;
  shares: IssuedShare[];
}

export interface KeyStatus {
  initialised: boolean;
  sealed: boolean;
  hierarchyId: string | null;
  threshold: number | null;
  count: number | null;
  rootKcv: string | null;
  officers: Array<{ index: number; name: string; fingerprint: string | null }>;
  unsealing: { nonce: string; collected: number; threshold: number; contributors: string[] } | null;
  unsealedBy: string[];
  unsealedAt: string | null;
  domains: Array<{ domain: KeyDomain; currentVersion: number; minDecryptionVersion: number; versions: Array<{ version: number; kcv: string; createdAt: string; retiredAt: string | null; dataKeys: number }> }>;
  /** Airlock's own keys (console domain entries, keys/console-keys.ts), every version; readable sealed. */
  ownKeys: OwnKeyStatus[];
}

export interface OwnKeyStatus {
  purpose: KeyPurpose;
  version: number;
  algorithm: string;
  /** As used where the key signs or logs in (null for the HMAC key, which has no public part). */
  fingerprint: string | null;
  createdAt: string;
  retiredAt: string | null;
  /** The console KEK version its private part is sealed under. */
  kekVersion: number;
  /** The SSH rotation that staged it, while it is not yet current. */
  stagedFor: string | null;
}

export interface ShareCheck {
  index: number | null;
  officer: string | null;
  ok: boolean;
  /** Why the share is refused, as a sentence; null when it is fine. */
  problem: string | null;
}

/** Data keys read per page of a rewrap: one worker job (rewrap.ts REWRAP_CHUNK). */
const REWRAP_PAGE = 10_000;
/** Pages being rewrapped at once: enough to keep two workers busy while this thread writes. */
const REWRAP_DEPTH = 3;
/** Rewrapped keys written per transaction. */
const WRITE_SLICE = 1_000;
const DATA_KEY_ID = /^[\x21-\x7e]{1,200}$/;

const hex = (b: Buffer) => b.toString('hex');
const NONCE = /^[0-9a-f]{32}$/;
function checkNonce(nonce: string): string {
  if (!NONCE.test(nonce)) throw new AirlockError('INVALID_INPUT', 'A ceremony nonce is 32 lowercase hex digits (128 random bits).');
  return nonce;
}

export class KeyService {
  private readonly store: KeyStore;
  private readonly consoleKeys: ConsoleKeyStore;
  private readonly kdf: KdfParams;
  private root: Buffer | null = null;
  private readonly keks = new Map<KeyDomain, Map<number, Buffer>>();
  private unsealing: { nonce: string; collector: ShareCollector } | null = null;
  private combining = false;
  private unsealedBy: string[] = [];
  private unsealedAt: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: KeyServiceDeps) {
    this.store = new KeyStore(deps.db);
    this.consoleKeys = new ConsoleKeyStore(deps.db);
    this.kdf = deps.kdf ?? DEFAULT_KDF;
  }

  /** One key-replacing operation at a time, in call order. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private stamp(): string {
    return this.deps.now().toISOString();
  }

  private hierarchyOrThrow() {
    const h = this.store.hierarchy();
    if (!h) throw new AirlockError('NOT_FOUND', 'There is no key hierarchy yet: create one with the genesis ceremony (`airlock keys genesis`).');
    return h;
  }

  private sealedMessage(threshold: number): string {
    const collected = this.unsealing?.collector.progress().collected ?? 0;
    const more = threshold - collected;
    const officers = more === 1 ? "1 more officer's share is" : `${more} more officers' shares are`;
    return `The key hierarchy is sealed: ${officers} needed (unseal with \`airlock keys unseal\`).`;
  }

  /** The root, or KEY_UNAVAILABLE saying how many shares are missing. */
  private requireUnsealed(): { root: Buffer; hierarchyId: string } {
    const h = this.hierarchyOrThrow();
    if (!this.root) throw new AirlockError('KEY_UNAVAILABLE', this.sealedMessage(h.threshold));
    return { root: this.root, hierarchyId: h.hierarchyId };
  }

  private domainOrThrow(domain: unknown): KeyDomain {
    if (!isKeyDomain(domain)) throw new AirlockError('INVALID_INPUT', `'${String(domain)}' is not a key domain (one of ${KEY_DOMAINS.join(', ')}).`);
    return domain;
  }

  private kek(domain: KeyDomain, version: number): Buffer {
    const k = this.keks.get(domain)?.get(version);
    if (!k) throw new AirlockError('INTERNAL', `The ${domain} KEK version ${version} is not loaded although the hierarchy is unsealed.`);
    return k;
  }

  isSealed(): boolean {
    return this.root === null;
  }

  status(): KeyStatus {
    const h = this.store.hierarchy();
    const counts = new Map(this.store.dataKeyCounts().map((c) => [`${c.domain}|${c.version}`, c.n]));
    const versions = this.store.kekVersions();
    return {
      initialised: h !== null,
      sealed: this.root === null,
      hierarchyId: h?.hierarchyId ?? null,
      threshold: h?.threshold ?? null,
      count: h?.count ?? null,
      rootKcv: h?.rootKcv ?? null,
      officers: this.store.holders().map((o) => ({ index: o.index, name: o.officer, fingerprint: o.fingerprint })),
      unsealing: this.unsealing ? { nonce: this.unsealing.nonce, ...this.unsealing.collector.progress() } : null,
      unsealedBy: [...this.unsealedBy],
      unsealedAt: this.unsealedAt,
      domains: this.store.domains().map((d) => ({
        ...d,
        versions: versions
          .filter((v) => v.domain === d.domain)
          .map((v) => ({ version: v.version, kcv: v.kcv, createdAt: v.createdAt, retiredAt: v.retiredAt, dataKeys: counts.get(`${d.domain}|${v.version}`) ?? 0 })),
      })),
      ownKeys: this.consoleKeys.entries().map((e) => ({
        purpose: e.purpose as KeyPurpose,
        version: e.version,
        algorithm: OWN_KEYS[e.purpose as KeyPurpose].alg,
        fingerprint: e.fingerprint,
        createdAt: e.createdAt,
        retiredAt: e.retiredAt,
        kekVersion: e.kekVersion,
        stagedFor: e.stagedFor,
      })),
    };
  }

  // ---- ceremonies ----

  /** Splits `root` to the officers under a fresh nonce and seals/armors each share; the caller stores the record. */
  private async issue(root: Buffer, hierarchyId: string, threshold: number, officers: readonly OfficerInput[], ceremonyNonce?: string): Promise<{ record: ShareRecord; shares: IssuedShare[] }> {
    checkShape(
      threshold,
      officers.map((o) => o.name),
    );
    for (const o of officers) {
      if (o.passphrase !== undefined && o.passphrase.length < MIN_PASSPHRASE) {
        throw new AirlockError('INVALID_INPUT', `Officer '${o.name}': a share passphrase needs at least ${MIN_PASSPHRASE} characters.`);
      }
      if (o.confirmed && o.passphrase === undefined) throw new AirlockError('INVALID_INPUT', `Officer '${o.name}': a confirmed sealing fingerprint needs the passphrase it was made from.`);
    }
    const nonce = ceremonyNonce === undefined ? hex(this.deps.random(16)) : checkNonce(ceremonyNonce);
    const { record, shares } = await splitRoot(root, { hierarchyId, nonce, threshold, officers: officers.map((o) => o.name), random: this.deps.random });
    try {
      const issued: IssuedShare[] = [];
      for (const [i, s] of shares.entries()) {
        const { passphrase, confirmed } = officers[i]!;
        const sealed =
          passphrase === undefined
            ? undefined
            : await sealShareForOfficer(s, passphrase, this.kdf, this.deps.random, confirmed && { salt: Buffer.from(confirmed.salt, 'base64'), fingerprint: confirmed.fingerprint });
        issued.push({ index: s.index, officer: s.officer, armored: armorShare(sharePayload(s, sealed)), fingerprint: sealed?.fingerprint ?? null });
      }
      return { record, shares: issued };
    } finally {
      for (const s of shares) s.share.fill(0);
    }
  }

  private holdersOf(shares: readonly IssuedShare[]) {
    const at = this.stamp();
    return shares.map((s) => ({ index: s.index, officer: s.officer, fingerprint: s.fingerprint, issuedAt: at }));
  }

  /**
   * Step one of sealing an officer's share: the fingerprint of the key their passphrase derives
   * (with a fresh salt), to show them before shares are issued. Pass `{salt, fingerprint}` back as
   * the officer's `confirmed` to genesis, reshare or rotateRoot. Needs nothing unsealed.
   */
  async prepareSealing(officer: string, passphrase: string): Promise<{ officer: string; salt: string; fingerprint: string }> {
    const parsed = officerName.safeParse(officer);
    if (!parsed.success) throw new AirlockError('INVALID_INPUT', `Officer name '${officer}' is not allowed: ${parsed.error.issues[0]?.message ?? 'invalid'}.`);
    const { salt, fingerprint } = await prepareSealing(officer, passphrase, this.kdf, this.deps.random);
    return { officer, salt: salt.toString('base64'), fingerprint };
  }

  /**
   * The genesis ceremony: a new root split m-of-n to the officers, a v1 KEK for every domain. The
   * hierarchy is left unsealed (the root was just made here): seal it when the ceremony ends.
   */
  genesis(input: GenesisInput): Promise<CeremonyShares> {
    return this.exclusive(async () => {
      if (this.store.hierarchy()) throw new AirlockError('CONFLICT', 'A key hierarchy already exists: genesis runs once. To change officers or the threshold, reshare; to replace the root, rotate it.');
      const hierarchyId = hex(this.deps.random(16));
      const root = this.deps.random(KEY_BYTES);
      const keks = new Map<KeyDomain, Map<number, Buffer>>();
      try {
        // The console KEK is adopted, not made: its versions exist since first-run setup and
        // seal Airlock's own keys. Opened first, so a missing or wrong vault key issues no shares.
        const adopted = this.adoptConsoleKeks(input.vaultKey);
        const { record, shares } = await this.issue(root, hierarchyId, input.threshold, input.officers, input.nonce);
        for (const d of KEY_DOMAINS) keks.set(d, d === 'console' && adopted.size > 0 ? adopted : new Map([[1, this.deps.random(KEY_BYTES)]]));
        const at = this.stamp();
        const consoleV1 = adopted.size === 0 && input.vaultKey ? keks.get('console')!.get(1)! : null;
        this.store.transaction(() => {
          if (this.store.hierarchy()) throw new AirlockError('CONFLICT', 'A key hierarchy already exists: genesis runs once.');
          this.store.createHierarchy({ hierarchyId, threshold: record.threshold, count: record.count, record, rootCanary: Buffer.from(record.canary, 'base64'), rootKcv: record.rootKcv, createdAt: at });
          this.store.setHolders(this.holdersOf(shares));
          for (const [domain, versions] of keks) {
            const wrap = (version: number, kek: Buffer) => ({ wrapped: wrapKek(root, kek, { hierarchyId, domain, version }, this.deps.random), kcv: keyCheckValue(kek), createdAt: at });
            this.store.createDomain(domain, wrap(1, versions.get(1)!));
            for (const [version, kek] of versions) if (version > 1) this.store.addKekVersion({ domain, version, ...wrap(version, kek) });
            if (versions.size > 1) this.store.setCurrentVersion(domain, Math.max(...versions.keys()));
          }
          // No console KEK before (a database that never minted an own key): the new one is wrapped under the vault key too, so sign-ins open it.
          if (consoleV1 && input.vaultKey) this.consoleKeys.addKek({ version: 1, vaultWrapped: wrapConsoleKek(input.vaultKey, consoleV1, 1, this.deps.random), kcv: keyCheckValue(consoleV1), createdAt: at });
        });
        this.forget();
        this.root = Buffer.from(root);
        for (const [domain, versions] of keks) this.keks.set(domain, new Map([...versions].map(([v, k]) => [v, Buffer.from(k)])));
        this.unsealedBy = ['genesis ceremony'];
        this.unsealedAt = at;
        return { nonce: record.nonce, hierarchyId, rootKcv: record.rootKcv, shares };
      } finally {
        root.fill(0);
        for (const m of keks.values()) for (const k of m.values()) k.fill(0);
      }
    });
  }

  /**
   * The console KEK versions wrapped under the vault key (version → key; the caller zeroes them),
   * empty when there are none yet. Versions must run 1..n (the hierarchy's kek_versions mirror
   * them one to one); any version not opening with `vaultKey` is refused.
   */
  private adoptConsoleKeks(vaultKey: Buffer | undefined): Map<number, Buffer> {
    const rows = this.consoleKeys.keks();
    const out = new Map<number, Buffer>();
    if (rows.length === 0) return out;
    if (!vaultKey) {
      throw new AirlockError('KEY_UNAVAILABLE', "Genesis adopts the console KEK that seals Airlock's own keys, and opening it needs a signed-in user's vault key: run the genesis ceremony from a signed-in session.");
    }
    try {
      for (const [i, r] of rows.entries()) {
        if (r.version !== i + 1) throw new AirlockError('INTERNAL', `The console KEK versions are not 1..${rows.length} (version ${r.version} at position ${i + 1}): the database was altered.`);
        out.set(r.version, openConsoleKek(vaultKey, r));
      }
    } catch (e) {
      for (const k of out.values()) k.fill(0);
      throw e;
    }
    return out;
  }

  /**
   * A console KEK version unwrapped with the root (a copy: the caller zeroes it): the recovery
   * path to Airlock's own keys (keys/console-keys.ts `openEntry`) without any user's vault slot.
   * Needs the hierarchy unsealed.
   */
  consoleKek(version: number): Buffer {
    this.requireUnsealed();
    return Buffer.from(this.kek('console', version));
  }

  /**
   * Starts collecting shares (or returns the unseal already in progress, so a second officer's
   * terminal does not wipe the first one's share). The nonce names this unseal in the audit trail
   * and transcript; shares themselves are bound to the nonce of the ceremony that issued them.
   */
  beginUnseal(ceremonyNonce?: string): { nonce: string } {
    const h = this.hierarchyOrThrow();
    if (this.root) throw new AirlockError('CONFLICT', 'The key hierarchy is already unsealed.');
    if (this.unsealing && ceremonyNonce !== undefined && this.unsealing.nonce !== ceremonyNonce) {
      // A new unseal ceremony replaces one that was abandoned: its shares are not carried over.
      this.unsealing.collector.clear();
      this.unsealing = null;
    }
    if (!this.unsealing) this.unsealing = { nonce: ceremonyNonce === undefined ? hex(this.deps.random(16)) : checkNonce(ceremonyNonce), collector: new ShareCollector(h.record) };
    return { nonce: this.unsealing.nonce };
  }

  /**
   * Adds one officer's armored share (unsealing it with their passphrase if it is sealed). At the
   * threshold the shares are combined, the root checked against the canary and every KEK version
   * unwrapped. A refused share (unparseable, wrong passphrase, foreign, stale, altered, duplicate)
   * throws and changes nothing already collected.
   */
  async addShare(armored: string, opts: { passphrase?: string; by?: string } = {}): Promise<{ collected: number; threshold: number; done: boolean; contributors: string[] }> {
    this.beginUnseal();
    const payload = dearmorShare(armored);
    const share = await unsealShare(payload, opts.passphrase);
    try {
      const u = this.unsealing;
      if (!u || this.root) throw new AirlockError('CONFLICT', 'The key hierarchy was unsealed (or the unseal cancelled) while this share was being opened: nothing was added.');
      if (this.combining) throw new AirlockError('CONFLICT', 'The shares collected are being combined right now: wait for the result.');
      const progress = u.collector.add(share, opts.by ?? share.officer);
      if (progress.collected < progress.threshold) return { ...progress, done: false };
      this.combining = true;
      try {
        const root = await u.collector.combine().catch((e: unknown) => {
          this.cancelUnseal();
          throw e;
        });
        this.load(root, this.store.hierarchy()!.hierarchyId);
        this.unsealedBy = progress.contributors;
        this.unsealedAt = this.stamp();
        u.collector.clear();
        this.unsealing = null;
        return { ...progress, done: true };
      } finally {
        this.combining = false;
      }
    } finally {
      share.share.fill(0);
    }
  }

  /** Takes ownership of a verified root and unwraps every KEK version with it; on failure nothing stays in memory. */
  private load(root: Buffer, hierarchyId: string): void {
    const keks = new Map<KeyDomain, Map<number, Buffer>>();
    try {
      for (const v of this.store.kekVersions()) {
        if (!keks.has(v.domain)) keks.set(v.domain, new Map());
        keks.get(v.domain)!.set(v.version, unwrapKek(root, v.wrapped, { hierarchyId, domain: v.domain, version: v.version }));
      }
    } catch (e) {
      root.fill(0);
      for (const m of keks.values()) for (const k of m.values()) k.fill(0);
      throw e;
    }
    this.forget();
    this.root = root;
    for (const [d, m] of keks) this.keks.set(d, m);
  }

  /** Drops the shares collected so far (zeroed). */
  cancelUnseal(): void {
    this.unsealing?.collector.clear();
    this.unsealing = null;
  }

  private forget(): void {
    this.root?.fill(0);
    this.root = null;
    for (const m of this.keks.values()) for (const k of m.values()) k.fill(0);
    this.keks.clear();
  }

  /** Seals: the root and every KEK zeroed and dropped (best effort: V8 may have copied nothing, but no guarantee), collected shares too. */
  seal(): void {
    this.forget();
    this.cancelUnseal();
    this.unsealedBy = [];
    this.unsealedAt = null;
  }

  /**
   * Checks officers' shares without unsealing (vault#8278: nobody could tell whether every share
   * was delivered and opens). Each share is parsed, unsealed with its passphrase (by position in
   * `passphrases`), checked against the share record; `combines` is whether the valid ones reach
   * the threshold and combine to the root (per the canary), null when too few are valid. Works
   * sealed or unsealed; the combined root is zeroed at once and never kept.
   */
  async verifyShares(armored: readonly string[], passphrases: ReadonlyArray<string | undefined> = []): Promise<{ shares: ShareCheck[]; combines: boolean | null }> {
    const h = this.hierarchyOrThrow();
    const checks: ShareCheck[] = [];
    const valid: RootShare[] = [];
    try {
      for (const [i, text] of armored.entries()) {
        let index: number | null = null;
        let officer: string | null = null;
        try {
          const p = dearmorShare(text);
          index = p.index;
          officer = p.officer;
          const s = await unsealShare(p, passphrases[i]);
          const problem = shareProblem(h.record, s);
          if (problem) {
            s.share.fill(0);
            checks.push({ index, officer, ok: false, problem: problemMessage(problem, s) });
          } else if (valid.some((v) => v.index === s.index)) {
            s.share.fill(0);
            checks.push({ index, officer, ok: false, problem: `Share ${s.index} of ${s.count} (officer '${s.officer}') is given twice in this check.` });
          } else {
            valid.push(s);
            checks.push({ index, officer, ok: true, problem: null });
          }
        } catch (e) {
          if (!(e instanceof AirlockError)) throw e;
          checks.push({ index, officer, ok: false, problem: e.message });
        }
      }
      if (valid.length < h.threshold) return { shares: checks, combines: null };
      const c = new ShareCollector(h.record);
      try {
        for (const s of valid) c.add(s);
        const root = await c.combine();
        root.fill(0);
        return { shares: checks, combines: true };
      } catch (e) {
        if (!(e instanceof AirlockError)) throw e;
        return { shares: checks, combines: false };
      } finally {
        c.clear();
      }
    } finally {
      for (const s of valid) s.share.fill(0);
    }
  }

  // ---- data keys ----

  /** Stores a data key (given, or generated: 32 bytes, or 64 for an fscrypt master key) wrapped by the domain's current KEK. */
  putDataKey(domain: KeyDomain, id: string, opts: { key?: Buffer; bytes?: 32 | 64 } = {}): { id: string; domain: KeyDomain; version: number } {
    domain = this.domainOrThrow(domain);
    if (typeof id !== 'string' || !DATA_KEY_ID.test(id)) throw new AirlockError('INVALID_INPUT', 'A data key id is 1 to 200 printable ASCII characters without spaces.');
    if (opts.key && opts.key.length !== 32 && opts.key.length !== 64) throw new AirlockError('INVALID_INPUT', 'A data key is 32 or 64 bytes.');
    if (opts.bytes !== undefined && opts.bytes !== 32 && opts.bytes !== 64) throw new AirlockError('INVALID_INPUT', 'A data key is 32 or 64 bytes.');
    const { hierarchyId } = this.requireUnsealed();
    if (this.store.dataKey(domain, id)) throw new AirlockError('CONFLICT', `A ${domain} data key '${id}' already exists: delete it first, or use another id.`);
    const version = this.store.domain(domain)!.currentVersion;
    const key = opts.key ? Buffer.from(opts.key) : this.deps.random(opts.bytes ?? 32);
    try {
      this.store.putDataKey({ domain, id, version, wrapped: wrapDataKey(this.kek(domain, version), key, { hierarchyId, domain, version, id }, this.deps.random), createdAt: this.stamp() });
    } finally {
      key.fill(0);
    }
    return { id, domain, version };
  }

  /** The plaintext data key (the caller zeroes it when done). KEY_UNAVAILABLE while sealed or below min_decryption_version. */
  openDataKey(domain: KeyDomain, id: string): Buffer {
    domain = this.domainOrThrow(domain);
    const { hierarchyId } = this.requireUnsealed();
    const row = this.store.dataKey(domain, id);
    if (!row) throw new AirlockError('NOT_FOUND', `There is no ${domain} data key '${id}'.`);
    const d = this.store.domain(domain)!;
    return unwrapDataKey(this.kek(domain, row.version), row.wrapped, { hierarchyId, domain, version: row.version, id }, d.minDecryptionVersion);
  }

  /** Deletes a data key: whatever it encrypted is unreadable from then on (crypto-shredding). Needs no root. */
  deleteDataKey(domain: KeyDomain, id: string): void {
    domain = this.domainOrThrow(domain);
    if (!this.store.deleteDataKey(domain, id)) throw new AirlockError('NOT_FOUND', `There is no ${domain} data key '${id}'.`);
  }

  // ---- KEK rotation ----

  /**
   * A new KEK version for the domain, made current (new data keys are wrapped by it at once), then
   * every data key of the domain rewrapped to it. Crash-safe by construction: the new version is
   * committed before any key moves to it, each page of rewrapped keys is one transaction, and old
   * versions stay until an officer raises min_decryption_version, so at every moment each key is
   * wrapped by exactly one stored version. `rewrap(domain)` finishes an interrupted rotation.
   */
  rotateKek(domain: KeyDomain, opts: { vaultKey?: Buffer } = {}): Promise<{ domain: KeyDomain; version: number; rewrapped: number }> {
    return this.exclusive(async () => {
      domain = this.domainOrThrow(domain);
      const { root, hierarchyId } = this.requireUnsealed();
      const version = this.store.domain(domain)!.currentVersion + 1;
      if (domain === 'console') this.checkConsoleRotation(opts.vaultKey, version);
      const kek = this.deps.random(KEY_BYTES);
      const wrapped = wrapKek(root, kek, { hierarchyId, domain, version }, this.deps.random);
      this.deps.boundary?.('rotate-kek:begin');
      this.store.transaction(() => {
        const at = this.stamp();
        this.store.addKekVersion({ domain, version, wrapped, kcv: keyCheckValue(kek), createdAt: at });
        this.store.setCurrentVersion(domain, version);
        if (domain === 'console') {
          // The new version is wrapped under the vault key too (sign-ins open it), and Airlock's
          // own keys move to it in the same commit: no entry is ever under a version a sign-in cannot open.
          this.consoleKeys.addKek({ version, vaultWrapped: wrapConsoleKek(opts.vaultKey!, kek, version, this.deps.random), kcv: keyCheckValue(kek), createdAt: at });
          this.consoleKeys.rewrapEntries(this.keks.get('console')!, { version, key: kek }, this.deps.random);
        }
      });
      this.deps.boundary?.('rotate-kek:version-committed');
      this.keks.get(domain)!.set(version, kek);
      return { domain, version, rewrapped: await this.rewrapNow(domain) };
    });
  }

  /**
   * A console KEK rotation needs the acting user's vault key, and it must open the console KEK
   * versions on record (a wrong key would leave the new version where no sign-in opens it).
   */
  private checkConsoleRotation(vaultKey: Buffer | undefined, version: number): void {
    if (!vaultKey) {
      throw new AirlockError('KEY_UNAVAILABLE', "Rotating the console KEK needs a signed-in user's vault key (the new version is wrapped under it so sign-ins keep opening Airlock's own keys): rotate it from a signed-in session.");
    }
    const rows = this.consoleKeys.keks();
    const last = rows.at(-1);
    if (last && last.version !== version - 1) {
      throw new AirlockError('INTERNAL', `The console KEK versions wrapped under the vault key end at ${last.version}, the hierarchy's at ${version - 1}: the database was altered. Restore it from a backup.`);
    }
    for (const r of rows) openConsoleKek(vaultKey, r).fill(0);
  }

  /** Domains with data keys still wrapped by an older KEK version: a rotation was interrupted (a crash, a failed page). */
  pendingRewraps(): KeyDomain[] {
    return KEY_DOMAINS.filter((d) => {
      const cur = this.store.domain(d);
      return cur !== null && this.store.dataKeysNotAt(d, cur.currentVersion, '', 1).length > 0;
    });
  }

  /** Finishes every interrupted rotation (run when the hierarchy is unsealed): each domain's keys rewrapped to its current version. */
  async finishRewraps(): Promise<Array<{ domain: KeyDomain; version: number; rewrapped: number }>> {
    const out = [];
    for (const d of this.pendingRewraps()) out.push(await this.rewrap(d));
    return out;
  }

  /** Rewraps the domain's data keys that are not at its current version (after an interrupted rotation). */
  rewrap(domain: KeyDomain): Promise<{ domain: KeyDomain; version: number; rewrapped: number }> {
    return this.exclusive(async () => {
      domain = this.domainOrThrow(domain);
      this.requireUnsealed();
      const rewrapped = await this.rewrapNow(domain);
      return { domain, version: this.store.domain(domain)!.currentVersion, rewrapped };
    });
  }

  private async rewrapNow(domain: KeyDomain): Promise<number> {
    const { hierarchyId } = this.requireUnsealed();
    const to = this.store.domain(domain)!.currentVersion;
    // Copies: a seal() meanwhile zeroes the service's keys, not these (a zeroed KEK would wrap keys under zeros).
    const fromKeks = new Map([...this.keks.get(domain)!].map(([v, k]) => [v, Buffer.from(k)]));
    const toKek = { version: to, key: Buffer.from(this.kek(domain, to)) };
    let total = 0;
    const rewrapPage = async (batch: WrappedDataKey[]): Promise<WrappedDataKey[]> =>
      this.deps.rewrap ? this.deps.rewrap({ hierarchyId, domain, batch, fromKeks, toKek }) : rewrapDataKeys(batch, fromKeks, toKek, { hierarchyId, domain }, this.deps.random);
    const pageSize = this.deps.rewrapPageSize ?? REWRAP_PAGE;
    const turn = () => new Promise<void>((r) => setImmediate(r));
    // Pipelined: up to REWRAP_DEPTH pages are being rewrapped (one worker job each) while this
    // thread writes the oldest; reads and writes are short, with a turn of the event loop
    // between them, so a large domain's rotation never holds the console's other work.
    const inflight: Array<{ page: WrappedDataKey[]; out: Promise<WrappedDataKey[]> }> = [];
    let after = '';
    let exhausted = false;
    const fill = async () => {
      while (!exhausted && inflight.length < REWRAP_DEPTH) {
        const page = this.store.dataKeysNotAt(domain, to, after, pageSize);
        if (page.length === 0) {
          exhausted = true;
          break;
        }
        after = page[page.length - 1]!.id;
        const out = rewrapPage(page);
        out.catch(() => undefined); // awaited below; a failure must not be unhandled meanwhile
        inflight.push({ page, out });
        await turn();
      }
    };
    try {
      await fill();
      while (inflight.length > 0) {
        const { page, out } = inflight.shift()!;
        const rows = await out;
        await fill();
        const fromVersions = new Map(page.map((k) => [k.id, k.version]));
        for (let i = 0; i < rows.length; i += WRITE_SLICE) {
          if (i > 0) await turn();
          total += this.store.transaction(() => this.store.updateWraps(domain, rows.slice(i, i + WRITE_SLICE), fromVersions));
          this.deps.boundary?.('rewrap:slice-written');
        }
      }
    } finally {
      // A failed page leaves later pages' rewraps running with these keys: let them settle first.
      await Promise.allSettled(inflight.map((f) => f.out));
      for (const k of fromKeks.values()) k.fill(0);
      toKek.key.fill(0);
    }
    return total;
  }

  /**
   * Retires KEK versions below `version` for decryption. Refused while a data key still uses one
   * (rewrap first), or while `stillNeeded` (versions a host pending in a rotation still holds)
   * includes one: raising past it would lose that host's key.
   */
  setMinDecryptionVersion(domain: KeyDomain, version: number, opts: { stillNeeded?: readonly number[] } = {}): { domain: KeyDomain; minDecryptionVersion: number } {
    domain = this.domainOrThrow(domain);
    this.hierarchyOrThrow();
    const d = this.store.domain(domain)!;
    if (!Number.isInteger(version) || version < 1 || version > d.currentVersion) {
      throw new AirlockError('INVALID_INPUT', `The ${domain} minimum decryption version must be between 1 and the current version ${d.currentVersion}.`);
    }
    const lowest = this.store.lowestVersionInUse(domain);
    if (lowest !== null && lowest < version) {
      const n = this.store.dataKeyCounts().filter((c) => c.domain === domain && c.version < version).reduce((a, c) => a + c.n, 0);
      throw new AirlockError('CONFLICT', `${n} ${domain} data key(s) are still wrapped by version ${lowest}: raising the minimum to ${version} would make them unreadable. Rewrap them first (\`airlock keys rotate --domain ${domain}\` rewraps every key).`);
    }
    const needed = (opts.stillNeeded ?? []).filter((v) => v < version);
    if (needed.length > 0) throw new AirlockError('CONFLICT', `Version ${Math.min(...needed)} of the ${domain} KEK is still needed by a host that has not finished its rotation: the minimum stays at or below it until that host returns.`);
    this.store.setMinDecryptionVersion(domain, version, this.stamp());
    return { domain, minDecryptionVersion: version };
  }

  // ---- reshare and root rotation ----

  /**
   * New shares of the same root (new threshold, count or officers) under a new nonce: the old
   * shares are stale from the moment this commits. Needs the hierarchy unsealed.
   */
  reshare(input: CeremonyInput): Promise<CeremonyShares> {
    return this.exclusive(async () => {
      const { root, hierarchyId } = this.requireUnsealed();
      const mine = Buffer.from(root);
      try {
        const { record, shares } = await this.issue(mine, hierarchyId, input.threshold, input.officers, input.nonce);
        this.store.transaction(() => {
          this.store.replaceRecord(record, false);
          this.store.setHolders(this.holdersOf(shares));
        });
        return { nonce: record.nonce, hierarchyId, rootKcv: record.rootKcv, shares };
      } finally {
        mine.fill(0);
      }
    });
  }

  /**
   * A new root: every KEK version rewrapped under it (the KEKs, and so the data keys, do not
   * change), a new share record and new shares, in one transaction. Old shares open nothing after
   * it. Needs the hierarchy unsealed.
   */
  rotateRoot(input: CeremonyInput): Promise<CeremonyShares & { previousRootKcv: string }> {
    return this.exclusive(async () => {
      const { hierarchyId } = this.requireUnsealed();
      const previousRootKcv = this.hierarchyOrThrow().rootKcv;
      const root = this.deps.random(KEY_BYTES);
      try {
        const { record, shares } = await this.issue(root, hierarchyId, input.threshold, input.officers, input.nonce);
        this.requireUnsealed();
        const rewrapped = this.store.kekVersions().map((v) => ({ ...v, wrapped: wrapKek(root, this.kek(v.domain, v.version), { hierarchyId, domain: v.domain, version: v.version }, this.deps.random) }));
        this.store.transaction(() => {
          this.store.replaceRecord(record, true);
          for (const v of rewrapped) this.store.rewrapKekVersion(v.domain, v.version, v.wrapped);
          this.store.setHolders(this.holdersOf(shares));
        });
        this.root!.fill(0);
        this.root = Buffer.from(root);
        return { nonce: record.nonce, hierarchyId, rootKcv: record.rootKcv, previousRootKcv, shares };
      } finally {
        root.fill(0);
      }
    });
  }
}
