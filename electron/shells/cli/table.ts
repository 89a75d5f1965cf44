import type { ChannelName } from '../../../shared/contract/index';
import { enclaves, grants, policy, principals } from './access';
import { approvals } from './approvals';
import { attest } from './attest';
import { datasets } from './datasets';
import { audit } from './audit';
import { hosts } from './hosts';
import { identity } from './identity';
import { init } from './init';
import { keys } from './keys';
import { models } from './models';
import { provision } from './provision';
import { serve } from './serve';
import { session } from './session';
import { settings } from './settings';
import type { AreaTable, CommandDef } from './spec';
import { store } from './store';
import { totp } from './totp';
import { users } from './users';

/**
 * Every CLI command, area by area, in the order the help lists them. An area is a channel prefix
 * (shared/contract/<area>.ts), and its commands live in ./<area>.ts; init and serve are the two
 * commands that are not one channel's. `ops` (ops:cancel) has no command of its own: the store
 * imports call it on Ctrl-C. `terminal` has none: see NOT_IN_CLI.
 */
export const AREAS: readonly AreaTable[] = [init, serve, session, totp, users, settings, approvals, identity, hosts, provision, store, attest, keys, datasets, models, principals, grants, enclaves, policy, audit];

export const COMMANDS: readonly CommandDef[] = AREAS.flatMap((a) => a.commands);

/**
 * Channels no CLI command calls, and why. The coverage test (table.test.ts) fails on a channel
 * that is neither called by a command nor listed here, so a new channel is never forgotten silently.
 */
export const NOT_IN_CLI: Partial<Record<ChannelName, string>> = {
  'session:logout': 'each CLI run is its own sign-in; its session ends when the process does',
  'session:stepUp': 'each CLI run signs in afresh, so its step-up window is always open',
  'session:signInLink': 'a link of a running browser console, asked from its page; `airlock serve` prints new ones itself (Enter, SIGUSR1)',
  'terminal:open': 'an interactive PTY with a live byte stream: the terminal view of the desktop or browser console (or ssh itself)',
  'terminal:input': 'keystrokes to an open terminal (terminal:open)',
  'terminal:resize': 'resizes an open terminal (terminal:open)',
  'terminal:close': 'closes an open terminal (terminal:open)',
};

/** Words → command; aliases included. */
export const BY_WORDS: ReadonlyMap<string, CommandDef> = new Map(COMMANDS.flatMap((c) => [[c.words, c] as const, ...(c.aliases ?? []).map((a) => [a, c] as const)]));
