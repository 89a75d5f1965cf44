import type { ComponentType } from 'react';
import type { SessionStatus } from '../../shared/contract/session';
import { channels, type ChannelName } from '../../shared/contract/index';
import { Roles, type Role } from '../../shared/domain/roles';

/**
 * A request one feature opens another with (Hosts → "Terminal on this host"). The nonce makes a
 * second request for the same name a new one.
 */
export interface FeatureRequest {
  name: string;
  nonce: number;
}

/** What the console gives the feature on screen. */
export interface FeatureProps {
  /** Whether this feature is the one shown (a kept-mounted feature is hidden, not unmounted). */
  active: boolean;
  /** The session status the gate read (the account page shows one's own). */
  status: SessionStatus;
  /** Read the session status again (after one's own TOTP or the settings changed). */
  onStatus(): void;
  /** Show another feature, optionally with a request for it. */
  open(id: string, name?: string): void;
  /** The last request another feature opened this one with. */
  request: FeatureRequest | null;
}

/**
 * One entry of the console: its folder's index.ts exports it, features/registry.ts lists it.
 * Adding a feature is one folder and one line in the registry.
 */
export interface Feature {
  /** Stable id: the nav button's test id is `nav-<id>`. */
  id: string;
  /** The nav label, also the top bar's title while the feature is shown. */
  label: string;
  /** The roles that see it in the nav (a UI hint: the core checks every call again). */
  roles: readonly Role[];
  component: ComponentType<FeatureProps>;
  /**
   * Keep it mounted while another feature is shown (hidden with CSS): open terminals and a
   * provisioning run's live progress survive a look at another page.
   */
  keepMounted?: boolean;
  /** Shown in the nav item beside the label (approvals' pending count). */
  badge?: ComponentType;
}

/**
 * The roles that may call a channel, read from the contract: a feature is shown to whoever may
 * call the channel its page needs, so the nav follows the contract when a channel's roles change.
 */
export function rolesFor(channel: ChannelName): readonly Role[] {
  const allowed = channels[channel].roles;
  return allowed === 'public' ? Roles : allowed;
}

/** Whether a user with these roles sees the feature. */
export function sees(roles: readonly Role[], feature: Feature): boolean {
  return roles.some((r) => feature.roles.includes(r));
}
