import { createContext, useContext } from 'react';
import type { Client } from '../shared/contract/client';
import type { ChannelName } from '../shared/contract/index';
import type { Role } from '../shared/domain/roles';
import type { Api } from './api';

export interface SessionUser {
  name: string;
  roles: Role[];
}

export interface AppContextValue {
  api: Api;
  client: Client;
  user: SessionUser;
  /** Whether the signed-in user's roles allow a channel (UI hint; the core checks again). */
  can(channel: ChannelName): boolean;
  /** The core's clock now (ms): `Date.now()` corrected by session:status's `now` (ages of core timestamps). */
  coreNow(): number;
  /** Work to finish before signing out (closing terminals); returns an unregister function. */
  onBeforeLogout(hook: () => Promise<void>): () => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const v = useContext(AppContext);
  if (!v) throw new Error('useApp outside AppContext');
  return v;
}
