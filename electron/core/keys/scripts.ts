import type { CeremonyKind, CeremonyRole } from '../../../shared/contract/keys';

/**
 * The scripts of key ceremonies: numbered steps, each acknowledged by the person in the named role
 * (or done by Airlock itself: `auto`), in order. The wording is for a room of people reading one
 * screen; the transcript records the same titles. Changing a script changes its version.
 */
export const SCRIPT_VERSION = 'airlock.ceremony-script/1';

export interface ScriptStep {
  title: string;
  by: CeremonyRole;
  /** The key operation itself: Airlock does it when every step before it is acknowledged. */
  auto?: 'genesis' | 'unseal' | 'verify-shares' | 'rotate-kek' | 'reshare' | 'rotate-root';
  /** An officer's own step (the officer's name): their share is issued only once it is acknowledged. */
  officer?: string;
}

export interface ScriptParams {
  officers: readonly string[];
  witnesses: readonly string[];
  threshold?: number;
  count?: number;
  domain?: string;
}

const open = (s: string): ScriptStep => ({ title: `Open the ceremony: read the nonce aloud; everyone checks it against their screen${s}`, by: 'administrator' });

/** Who closes: the first witness when there is one, else the administrator. */
const closer = (p: ScriptParams): CeremonyRole => (p.witnesses.length ? 'witness' : 'administrator');

function issuing(p: ScriptParams, action: ScriptStep['auto'], what: string): ScriptStep[] {
  return [
    open(''),
    { title: `Witness: confirm who is present (${p.officers.length} officers) and that the nonce matches`, by: 'witness' },
    { title: what, by: 'administrator', auto: action },
    ...p.officers.map((o) => ({ title: `${o}: check that the fingerprint shown is the one of your share, then take your share`, by: 'officer' as const, officer: o })),
    { title: 'Witness: confirm every officer holds their own share and nobody else saw it; close the ceremony', by: 'witness' },
  ];
}

export function scriptFor(kind: CeremonyKind, p: ScriptParams): ScriptStep[] {
  const mOfN = `${p.threshold ?? '?'}-of-${p.count ?? p.officers.length}`;
  switch (kind) {
    case 'genesis':
      return issuing(p, 'genesis', `Create the root key, split it ${mOfN} among the officers, create every domain's KEK and the internal CA`);
    case 'reshare':
      return issuing(p, 'reshare', `Split the same root key ${mOfN} among the officers; every earlier share stops working`);
    case 'rotate-root':
      return issuing(p, 'rotate-root', `Create a new root key, rewrap every KEK under it, split it ${mOfN}; every earlier share stops working`);
    case 'unseal':
      return [
        open(''),
        { title: `Officers give their shares one by one until ${p.threshold ?? 'the threshold'} are in; the hierarchy opens`, by: 'administrator', auto: 'unseal' },
        { title: 'Confirm the hierarchy is unsealed and the shares are back with their officers; close', by: closer(p) },
      ];
    case 'verify-shares':
      return [
        open(''),
        { title: 'Officers give their shares; each is checked and the set is tried against the root, which stays sealed', by: 'administrator', auto: 'verify-shares' },
        { title: 'Confirm the result and that every share is back with its officer; close', by: closer(p) },
      ];
    case 'rotate-kek':
      return [
        open(` (domain ${p.domain ?? '?'})`),
        { title: `Create a new version of the ${p.domain ?? '?'} KEK and rewrap every data key of the domain to it`, by: 'administrator', auto: 'rotate-kek' },
        { title: 'Confirm the new version and the count of rewrapped keys; close', by: closer(p) },
      ];
  }
}
