import type { Host } from '../../../shared/contract/hosts';
import type { Playbook } from '../../../shared/contract/provision';
import type { Attestations } from '../attest/attest';
import type { HostsService } from '../hosts/service';
import type { SshConnection } from '../ssh/connection';
import type { Caller } from './caller';
import { stepParams } from './playbooks';
import { Remote } from './remote';
import type { RunRow } from './runs';
import { failureInfo } from './step-log';
import { STEPS } from './steps/index';
import type { StepContext } from './steps/types';

/** What drift needs of the provisioner. */
export interface DriftDeps {
  hosts: HostsService;
  attestations: Attestations;
  timeoutMs: number;
  resolveHosts(selector: string[]): Host[];
  row(runId: string): RunRow;
  context(c: Caller, host: Host, remote: Remote, io: { log: StepContext['log']; transfer: StepContext['transfer']; extras: SshConnection[] | null }): StepContext;
  auditDrift(c: Caller, runId: string, host: string, detail: Record<string, unknown>): void;
}

/**
 * Drift: for each host, run the verify of every step of the playbook its last attestation came
 * from (read-only), and compare what is proven now with what was attested.
 */
export async function drift(d: DriftDeps, c: Caller, selector: string[]) {
  const hosts = d.resolveHosts(selector);
  const out = [];
  for (const host of hosts) {
    const att = d.attestations.latest(host.name);
    if (!att) {
      out.push({ host: host.name, attestationId: null, drifted: false, items: [], error: 'no attestation yet: apply a playbook first' });
      continue;
    }
    const run = d.row(att.attestation.run);
    const pb = JSON.parse(run.playbook_body) as Playbook;
    const overrides = JSON.parse(run.params) as Record<string, Record<string, unknown>>;
    let conn: SshConnection | null = null;
    try {
      conn = await d.hosts.lease(host.name, c.auth, c.signal);
      const remote = new Remote(conn, host.user === 'root', c.signal, d.timeoutMs);
      const items: Array<{ stepId: string; path: string; attested: unknown; now: unknown }> = [];
      if (conn.fingerprint !== att.attestation.host.hostKey.fingerprint) {
        items.push({ stepId: 'host', path: 'hostKey.fingerprint', attested: att.attestation.host.hostKey.fingerprint, now: conn.fingerprint });
      }
      // Drift only reads: no log, no transfers, no extra connections.
      const ctx = d.context(c, host, remote, { log: () => {}, transfer: () => {}, extras: null });
      for (const decl of pb.steps) {
        const impl = STEPS.get(decl.type)!;
        let now: unknown;
        try {
          now = (await impl.verify(ctx, stepParams(pb, decl.id, overrides))).facts;
        } catch (e) {
          now = { error: failureInfo(e).message };
        }
        const was = att.attestation.facts[decl.id]?.facts ?? null;
        for (const x of diffJson(was, now, '')) items.push({ stepId: decl.id, ...x });
      }
      out.push({ host: host.name, attestationId: att.attestation.id, drifted: items.length > 0, items, error: null });
      d.auditDrift(c, att.attestation.run, host.name, { attestation: att.attestation.id, drifted: items.length });
    } catch (e) {
      out.push({ host: host.name, attestationId: att.attestation.id, drifted: false, items: [], error: failureInfo(e).message });
    } finally {
      conn?.close();
    }
  }
  return out;
}

/** Paths where two JSON values differ (objects by key, arrays by index). */
export function diffJson(a: unknown, b: unknown, path: string): Array<{ path: string; attested: unknown; now: unknown }> {
  if (a === b) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (Array.isArray(a) && Array.isArray(b)) {
    const out = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diffJson(a[i], b[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(a) && isObj(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const out = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out.push(...diffJson(a[k], b[k], path ? `${path}.${k}` : k));
    return out;
  }
  return [{ path: path || '(all)', attested: a ?? null, now: b ?? null }];
}
