import { AirlockError } from '../../../shared/domain/errors';
import type { Classification, VersionStatus } from './catalog';

/**
 * What provisioning may deploy where (issue 13, "Enclaves"; docs/models.md "Deployment rules").
 * Checked when a plan or an apply starts, for every host × every model the playbook deploys
 * (the model-weights and inference-service steps), before anything runs on a host, so a run that
 * would break a rule never starts. Each refusal names the host, the version and the rule.
 *
 * 1. A version in the catalog is deployed only while it is `approved` (a `deprecated` one only to
 *    hosts that already serve it is left to a later rule: refused for now, with that reason);
 *    `staged` and `revoked` never.
 * 2. A `phi` version goes only to hosts in an enclave marked PHI.
 * 3. A host in a PHI enclave serves only `phi` versions: its inference endpoint is then never one
 *    that general models share, so a PHI model is never reachable through a general endpoint.
 *
 * A model the catalog does not know (the offline store's loose directories, kept while they are
 * migrated to the catalog) is outside rules 1–2 but still under rule 3: a PHI enclave takes only
 * catalogued PHI versions.
 */

export interface DeployedVersion {
  /** The playbook step that deploys it (for the message). */
  step: string;
  model: string;
  version: string;
}

export interface DeployRuleDeps {
  /** The catalog's record of a version, or null when the catalog does not know it. */
  version(model: string, version: string): { classification: Classification; status: VersionStatus } | null;
  /** The host's enclave, or null when it is in none. */
  enclaveOf(host: string): { name: string; phi: boolean } | null;
}

export interface DeployViolation {
  host: string;
  model: string;
  version: string;
  step: string;
  rule: 'not-approved' | 'phi-outside-phi-enclave' | 'general-in-phi-enclave';
  message: string;
}

/** Every violation of the rules above (empty when the plan may run). */
export function deployViolations(d: DeployRuleDeps, hosts: readonly string[], deployed: readonly DeployedVersion[]): DeployViolation[] {
  const out: DeployViolation[] = [];
  for (const dep of deployed) {
    const rec = d.version(dep.model, dep.version);
    const name = `${dep.model} ${dep.version}`;
    for (const host of hosts) {
      const enclave = d.enclaveOf(host);
      const v = (rule: DeployViolation['rule'], message: string) => out.push({ host, model: dep.model, version: dep.version, step: dep.step, rule, message });
      if (rec && rec.status !== 'approved') {
        v('not-approved', `${name} is ${rec.status} in the catalog: only approved versions are deployed (step ${dep.step}, host ${host}).`);
        continue;
      }
      if (rec?.classification === 'phi' && !enclave?.phi) {
        v(
          'phi-outside-phi-enclave',
          `${name} is classified phi and ${host} is ${enclave ? `in enclave ${enclave.name}, which is not a PHI enclave` : 'in no enclave'}: phi versions are deployed only to hosts in a PHI enclave (step ${dep.step}).`,
        );
        continue;
      }
      if (enclave?.phi && rec?.classification !== 'phi') {
        v(
          'general-in-phi-enclave',
          `${host} is in the PHI enclave ${enclave.name} and ${name} is ${rec ? `classified ${rec.classification}` : 'not in the catalog'}: a PHI enclave's hosts serve only phi versions, so no general model shares their endpoint (step ${dep.step}).`,
        );
      }
    }
  }
  return out;
}

/** Refuses (FORBIDDEN, every violation listed, at most 20 shown) unless the plan keeps every rule. */
export function enforceDeployRules(d: DeployRuleDeps, hosts: readonly string[], deployed: readonly DeployedVersion[]): void {
  const v = deployViolations(d, hosts, deployed);
  if (!v.length) return;
  const shown = v.slice(0, 20).map((x) => `- ${x.message}`);
  if (v.length > 20) shown.push(`- and ${v.length - 20} more`);
  throw new AirlockError('FORBIDDEN', `This run would break ${v.length === 1 ? 'a deployment rule' : `${v.length} deployment rules`}; nothing was started:\n${shown.join('\n')}`);
}
