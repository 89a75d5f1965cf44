import crypto from 'node:crypto';
import type { Enclave, Principal, PrincipalKind, VersionSelector } from '../../../../shared/contract/access';
import { AirlockError } from '../../../../shared/domain/errors';
import type { Db } from '../../db/db';

/**
 * The access records (migration 0017): principals, team members, grants, enclaves, host → enclave.
 * Credentials are generated here, returned once to the caller and never stored: only their SHA-256
 * is (`credential_sha256`), which is also all the policy carries to the hosts.
 */

export interface PrincipalRow {
  id: string;
  kind: PrincipalKind;
  name: string;
  description: string;
  uid: string;
  credential_sha256: string | null;
  credential_issued_at: string | null;
  credential_generation: number;
  created_at: string;
  created_by: string;
  disabled_at: string | null;
  disabled_by: string | null;
  disabled_reason: string | null;
}

export interface GrantRow {
  id: string;
  principal: string;
  model: string;
  version: string | null;
  actions: string;
  expires_at: string | null;
  requests_per_minute: number | null;
  phi_allowed: number;
  approval_id: number | null;
  reason: string | null;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  revoked_by: string | null;
  revoked_reason: string | null;
}

export interface NewGrant {
  principal: string;
  model: string;
  version: VersionSelector;
  actions: Array<'pull' | 'invoke'>;
  expiresAt: string | null;
  requestsPerMinute?: number | undefined;
  reason?: string | undefined;
}

/** `alk_` + base64url of 32 random bytes: 256 bits, so a plain SHA-256 is the right hash (no salt or stretching needed). */
export function newCredential(random: (n: number) => Buffer): string {
  return `alk_${random(32).toString('base64url')}`;
}

export const credentialSha256 = (credential: string): string => crypto.createHash('sha256').update(credential, 'utf8').digest('hex');

const prefixOf = (kind: PrincipalKind) => (kind === 'application' ? 'app' : kind);

export class AccessStore {
  constructor(private readonly d: { db: Db; now: () => Date; random: (n: number) => Buffer }) {}

  private stamp(): string {
    return this.d.now().toISOString();
  }

  private insertPrincipal(kind: PrincipalKind, name: string, description: string, by: string, credential: string | null): void {
    const id = `${prefixOf(kind)}:${name}`;
    this.d.db
      .prepare(
        `INSERT INTO access_principals (id, kind, name, description, uid, credential_sha256, credential_issued_at, credential_generation, created_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, kind, name, description, this.d.random(16).toString('hex'), credential ? credentialSha256(credential) : null, credential ? this.stamp() : null, credential ? 1 : 0, this.stamp(), by);
  }

  /** An application and its first credential, returned once. */
  createApplication(name: string, description: string, by: string): { principal: Principal; credentials: Array<{ principal: string; credential: string }> } {
    const id = `app:${name}`;
    if (this.row(id)) throw new AirlockError('CONFLICT', `There is already an application ${id}.`);
    const credential = newCredential(this.d.random);
    this.insertPrincipal('application', name, description, by, credential);
    return { principal: this.principal(id)!, credentials: [{ principal: id, credential }] };
  }

  /**
   * A team and its members. A member is a person's own principal (`user:<name>`), with a credential
   * of their own: one made here for each member who had none (returned once); existing members are
   * only added. Grants to the team reach every member who is not disabled.
   */
  createTeam(name: string, members: string[], description: string, by: string): { principal: Principal; credentials: Array<{ principal: string; credential: string }> } {
    const id = `team:${name}`;
    if (this.row(id)) throw new AirlockError('CONFLICT', `There is already a team ${id}.`);
    const unique = [...new Set(members)].sort();
    const credentials: Array<{ principal: string; credential: string }> = [];
    this.d.db.transaction(() => {
      this.insertPrincipal('team', name, description, by, null);
      for (const m of unique) {
        const mid = `user:${m}`;
        if (!this.row(mid)) {
          const credential = newCredential(this.d.random);
          this.insertPrincipal('user', m, '', by, credential);
          credentials.push({ principal: mid, credential });
        }
        this.d.db.prepare('INSERT INTO access_team_members (team, member) VALUES (?, ?)').run(id, mid);
      }
    })();
    return { principal: this.principal(id)!, credentials };
  }

  /** A new credential (returned once); the old hash is replaced, so the next policy no longer admits the old one. */
  rotateCredential(id: string): { principal: Principal; credential: string } {
    const r = this.mustRow(id);
    if (r.kind === 'team') throw new AirlockError('INVALID_INPUT', `${id} is a team: a team has no credential; each member (user:NAME) has their own.`);
    if (r.disabled_at) throw new AirlockError('CONFLICT', `${id} is disabled: a disabled principal gets no new credential.`);
    const credential = newCredential(this.d.random);
    this.d.db
      .prepare('UPDATE access_principals SET credential_sha256 = ?, credential_issued_at = ?, credential_generation = credential_generation + 1 WHERE id = ?')
      .run(credentialSha256(credential), this.stamp(), id);
    return { principal: this.principal(id)!, credential };
  }

  disable(id: string, reason: string, by: string): Principal {
    const r = this.mustRow(id);
    if (r.disabled_at) throw new AirlockError('CONFLICT', `${id} is already disabled (since ${r.disabled_at}).`);
    this.d.db.prepare('UPDATE access_principals SET disabled_at = ?, disabled_by = ?, disabled_reason = ? WHERE id = ?').run(this.stamp(), by, reason, id);
    return this.principal(id)!;
  }

  row(id: string): PrincipalRow | undefined {
    return this.d.db.prepare('SELECT * FROM access_principals WHERE id = ?').get(id) as PrincipalRow | undefined;
  }

  mustRow(id: string): PrincipalRow {
    const r = this.row(id);
    if (!r) throw new AirlockError('NOT_FOUND', `There is no principal ${id}: create it first (principals create).`);
    return r;
  }

  rows(): PrincipalRow[] {
    return this.d.db.prepare('SELECT * FROM access_principals ORDER BY id').all() as PrincipalRow[];
  }

  members(): Array<{ team: string; member: string }> {
    return this.d.db.prepare('SELECT team, member FROM access_team_members ORDER BY team, member').all() as Array<{ team: string; member: string }>;
  }

  principal(id: string): Principal | null {
    const r = this.row(id);
    return r ? this.view(r, this.members()) : null;
  }

  principals(o: { kind?: PrincipalKind | undefined; includeDisabled?: boolean | undefined } = {}): Principal[] {
    const m = this.members();
    return this.rows()
      .filter((r) => (o.kind ? r.kind === o.kind : true) && (o.includeDisabled ? true : r.disabled_at === null))
      .map((r) => this.view(r, m));
  }

  private view(r: PrincipalRow, m: Array<{ team: string; member: string }>): Principal {
    return {
      id: r.id,
      kind: r.kind,
      name: r.name,
      description: r.description,
      members: m.filter((x) => x.team === r.id).map((x) => x.member),
      teams: m.filter((x) => x.member === r.id).map((x) => x.team),
      credentialIssuedAt: r.credential_issued_at,
      credentialGeneration: r.credential_generation,
      disabled: r.disabled_at !== null,
      disabledAt: r.disabled_at,
      disabledBy: r.disabled_by,
      createdAt: r.created_at,
      createdBy: r.created_by,
    };
  }

  // ---- grants ----

  addGrant(g: NewGrant, by: string, o: { phiAllowed: boolean; approvalId: number | null }): GrantRow {
    const p = this.mustRow(g.principal);
    if (p.disabled_at) throw new AirlockError('CONFLICT', `${g.principal} is disabled: it gets no new grants.`);
    if (!this.d.db.prepare('SELECT 1 FROM models WHERE name = ?').get(g.model)) throw new AirlockError('NOT_FOUND', `There is no model ${g.model} in the catalog.`);
    const version = g.version === 'latest-approved' ? null : g.version.exact;
    if (version !== null && !this.d.db.prepare('SELECT 1 FROM model_versions WHERE model = ? AND version = ?').get(g.model, version)) {
      throw new AirlockError('NOT_FOUND', `There is no ${g.model} ${version} in the catalog.`);
    }
    const actions = [...new Set(g.actions)].sort().join(',');
    if (g.expiresAt !== null && Date.parse(g.expiresAt) <= this.d.now().getTime()) throw new AirlockError('INVALID_INPUT', `The expiry ${g.expiresAt} is in the past: give a future date and time.`);
    const id = `gr-${this.d.random(8).toString('hex')}`;
    this.d.db
      .prepare(
        `INSERT INTO access_grants (id, principal, model, version, actions, expires_at, requests_per_minute, phi_allowed, approval_id, reason, created_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, g.principal, g.model, version, actions, g.expiresAt === null ? null : new Date(g.expiresAt).toISOString(), g.requestsPerMinute ?? null, o.phiAllowed ? 1 : 0, o.approvalId, g.reason ?? null, this.stamp(), by);
    return this.grant(id)!;
  }

  revokeGrant(id: string, reason: string, by: string): GrantRow {
    const g = this.grant(id);
    if (!g) throw new AirlockError('NOT_FOUND', `There is no grant ${id}.`);
    if (g.revoked_at) throw new AirlockError('CONFLICT', `Grant ${id} was already revoked (${g.revoked_at}, by ${g.revoked_by}).`);
    this.d.db.prepare('UPDATE access_grants SET revoked_at = ?, revoked_by = ?, revoked_reason = ? WHERE id = ?').run(this.stamp(), by, reason, id);
    return this.grant(id)!;
  }

  grant(id: string): GrantRow | undefined {
    return this.d.db.prepare('SELECT * FROM access_grants WHERE id = ?').get(id) as GrantRow | undefined;
  }

  grants(): GrantRow[] {
    return this.d.db.prepare('SELECT * FROM access_grants ORDER BY id').all() as GrantRow[];
  }

  // ---- enclaves ----

  createEnclave(name: string, phi: boolean, description: string, by: string): Enclave {
    if (this.d.db.prepare('SELECT 1 FROM access_enclaves WHERE name = ?').get(name)) throw new AirlockError('CONFLICT', `There is already an enclave ${name}.`);
    this.d.db.prepare('INSERT INTO access_enclaves (name, phi, description, created_at, created_by) VALUES (?, ?, ?, ?, ?)').run(name, phi ? 1 : 0, description, this.stamp(), by);
    return this.enclaves().find((e) => e.name === name)!;
  }

  enclaves(): Enclave[] {
    const rows = this.d.db.prepare('SELECT * FROM access_enclaves ORDER BY name').all() as Array<{ name: string; phi: number; description: string; created_at: string; created_by: string }>;
    const hosts = this.hostEnclaves();
    return rows.map((r) => ({
      name: r.name,
      phi: r.phi === 1,
      description: r.description,
      hosts: hosts.filter((h) => h.enclave === r.name).map((h) => h.host),
      createdAt: r.created_at,
      createdBy: r.created_by,
    }));
  }

  assign(host: string, enclave: string, by: string): void {
    const h = this.d.db.prepare('SELECT id FROM hosts WHERE name = ?').get(host) as { id: number } | undefined;
    if (!h) throw new AirlockError('NOT_FOUND', `There is no host ${host} in the inventory.`);
    if (!this.d.db.prepare('SELECT 1 FROM access_enclaves WHERE name = ?').get(enclave)) throw new AirlockError('NOT_FOUND', `There is no enclave ${enclave}: create it first (enclaves create).`);
    this.d.db
      .prepare('INSERT INTO access_host_enclaves (host_id, enclave, assigned_at, assigned_by) VALUES (?, ?, ?, ?) ON CONFLICT (host_id) DO UPDATE SET enclave = excluded.enclave, assigned_at = excluded.assigned_at, assigned_by = excluded.assigned_by')
      .run(h.id, enclave, this.stamp(), by);
  }

  /** Every host in the inventory with its enclave ('general' when unassigned) and whether that enclave is PHI. */
  hostEnclaves(): Array<{ host: string; enclave: string; phi: boolean; confirmed: boolean }> {
    const rows = this.d.db
      .prepare(
        `SELECT h.name AS host, coalesce(a.enclave, 'general') AS enclave, e.phi AS phi, h.fingerprint IS NOT NULL AS confirmed
         FROM hosts h LEFT JOIN access_host_enclaves a ON a.host_id = h.id JOIN access_enclaves e ON e.name = coalesce(a.enclave, 'general') ORDER BY h.name`,
      )
      .all() as Array<{ host: string; enclave: string; phi: number; confirmed: number }>;
    return rows.map((r) => ({ host: r.host, enclave: r.enclave, phi: r.phi === 1, confirmed: r.confirmed === 1 }));
  }
}
