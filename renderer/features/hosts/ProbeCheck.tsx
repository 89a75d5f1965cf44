import { FingerprintCheck } from './FingerprintCheck';
import type { HostProbe } from './useHostProbe';

/**
 * The out-of-band comparison for what hosts:probe answered, as enrol, confirm and repin all show
 * it: one place hands the probe's fields to FingerprintCheck, so no dialog can drop a warning
 * (pinned elsewhere, known_hosts differs or revoked) by forgetting a prop.
 */
export function ProbeCheck({ probe }: { probe: HostProbe }) {
  return (
    <FingerprintCheck
      address={probe.address}
      port={probe.port}
      fingerprint={probe.fingerprint}
      keyType={probe.keyType}
      pinned={probe.pinned}
      knownHosts={probe.knownHosts}
    />
  );
}
