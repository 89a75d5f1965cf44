import type { ComponentType } from 'react';
import type { Client } from '../../shared/contract/client';
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
  /**
   * The feature's entries in the command palette (Ctrl+K) beside "Go to <label>", which every
   * feature gets. A new feature adds its own actions here; features/palette/ lists them.
   */
  commands?: readonly FeatureCommand[];
  /** Keys the page handles itself (the terminal's Alt+1…9), listed among the palette's shortcuts. */
  shortcuts?: ReadonlyArray<{ keys: string; what: string }>;
}

/** What a command may do when it runs. */
export interface CommandContext {
  client: Client;
  /** Show a feature, optionally with a request (like FeatureProps.open). */
  open(id: string, name?: string): void;
  /**
   * Show the feature and run the handler its page bound to this command id with
   * `useCommand(id, fn)` (features/palette/commands.ts), once the page is mounted.
   */
  perform(featureId: string, commandId: string): void;
}

/** One action in the command palette. */
export interface FeatureCommand {
  /** Unique among all commands: `<feature id>.<verb>` ('hosts.enrol'). */
  id: string;
  /** What the palette shows ('Enrol a host'); with `choices`, the label of each choice's entry. */
  label: string;
  /** Listed only for users who may call this channel (a UI hint: the core checks again). */
  channel?: ChannelName;
  /** The keyboard shortcut shown beside the entry and in the palette's list of shortcuts. */
  keys?: string;
  /** Extra words the filter matches ('scan' finds "Scan all hosts", 'ssh' finds terminals). */
  keywords?: string;
  /**
   * Shown only while this is true (given the feature shown: tab shortcuts only on the terminal).
   * Default: always.
   */
  when?(shown: string): boolean;
  /**
   * What it does. Default: `ctx.perform(<its feature>, id)`: show the feature and run the handler
   * the page bound with `useCommand(id, …)`. With `choices`, `arg` is the chosen value.
   */
  run?(ctx: CommandContext, arg?: string): void;
  /**
   * One entry per choice, read when the palette opens ("New terminal to <host>" for every host
   * with a pinned key). The entry's label is `label` with `{choice}` replaced by the choice's.
   */
  choices?(ctx: CommandContext): Promise<ReadonlyArray<{ value: string; label: string; detail?: string }>>;
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
