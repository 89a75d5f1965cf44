import { useEffect, useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { Out } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { useApp } from '../../context';

/** What hosts:probe answered: the key an address presents now, and what the pins and known_hosts say of it. */
export type HostProbe = Out<'hosts:probe'>;

/**
 * Read the key an enrolled host presents, once the dialog opens (and again if its address or port
 * changes), for the dialogs that compare it with the pin before changing it (confirm, repin). An
 * answer that arrives after the dialog closed is dropped. `probing` is true until the first answer.
 */
export function useHostProbe(host: Pick<Host, 'address' | 'port'>): {
  probe: HostProbe | null;
  probing: boolean;
  error: AirlockErrorShape | null;
} {
  const { client } = useApp();
  const [probe, setProbe] = useState<HostProbe | null>(null);
  const [probing, setProbing] = useState(true);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  useEffect(() => {
    let live = true;
    void client.hosts.probe({ address: host.address, port: host.port }).then((r) => {
      if (!live) return;
      setProbing(false);
      if (r.ok) setProbe(r.value);
      else setError(r.error);
    });
    return () => {
      live = false;
    };
  }, [client, host.address, host.port]);

  return { probe, probing, error };
}
