import type { ChannelDef } from '../../shared/contract/channel';
import { events, getChannel, isChannelName, type EventName, type EventPayload } from '../../shared/contract/index';
import { eventChecker, type EventCheck } from './outbox';
import type { Sessions } from './session/sessions';
import type { ClientContext } from './types';

/**
 * The core's live clients (windows, browser cookies, CLI runs), for events pushed to everyone who
 * may see them rather than to the one client that asked. An event declares its `audience` (a
 * channel) in the contract; it reaches exactly the clients whose session, re-read now, would pass
 * that channel's checks: signed in, holding one of its roles, not restricted (unless the channel
 * is `whileRestricted`). No session, an ended one, or the wrong roles: nothing is sent.
 */
export class Broadcaster {
  private readonly live = new Set<ClientContext>();

  /**
   * `check` is the core's one event checker (the one every client's queue uses): the payload is
   * parsed once here, and each client's queue recognises the checked value instead of parsing it
   * again for every client.
   */
  constructor(
    private readonly sessions: Pick<Sessions, 'get'>,
    private readonly check: EventCheck = eventChecker(console.error),
  ) {}

  add(client: ClientContext): void {
    this.live.add(client);
  }

  delete(client: ClientContext): void {
    this.live.delete(client);
  }

  clear(): void {
    this.live.clear();
  }

  /** Returns how many clients it was sent to. */
  broadcast<E extends EventName>(event: E, payload: EventPayload<E>): number {
    const def = events[event] as { audience?: string };
    if (!def.audience || !isChannelName(def.audience)) throw new Error(`${event} declares no audience channel: it cannot be broadcast`);
    const gate: ChannelDef = getChannel(def.audience);
    // The payload is checked against the contract before it leaves, like a channel's output: once, for every client.
    const r = this.check(event, payload);
    if (!r.ok) throw new Error(`${event}: the payload does not match the contract; not broadcast`);
    const checked = r.value;
    let sent = 0;
    for (const client of [...this.live]) {
      if (!this.mayReceive(client, gate)) continue;
      try {
        client.emit(event, checked as EventPayload<E>);
        sent++;
      } catch {
        // One client's broken transport never stops the others (the shell logs its own failures).
      }
    }
    return sent;
  }

  private mayReceive(client: ClientContext, gate: ChannelDef): boolean {
    if (gate.roles === 'public') return true;
    if (!client.session) return false;
    // Not activity: a pushed event must not keep an idle session alive.
    const s = this.sessions.get(client.session.id, { touch: false });
    if (!s) return false;
    const roles = gate.roles;
    if (!s.roles.some((r) => roles.includes(r))) return false;
    return !s.restriction || Boolean(gate.whileRestricted);
  }
}
