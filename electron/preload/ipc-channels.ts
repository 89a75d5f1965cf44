/**
 * The only Electron IPC channels between the preload and the main process.
 * Every contract call travels on IPC_CALL as (channelName, input); every event
 * from the core arrives on IPC_EVENT as { event, payload, seq }, acknowledged on IPC_ACK. Nothing else is
 * registered on either side, so there is nothing else to reach.
 */
export const IPC_CALL = 'airlock:call';
export const IPC_EVENT = 'airlock:event';
/**
 * The preload → main acknowledgement of events received: the envelope's `seq` (every envelope up
 * to it has arrived), or null from a freshly loaded page (nothing sent before it will be acked).
 * IPC has no backpressure signal of its own: the bytes sent and not yet acknowledged are the
 * window's `buffered` measure for the core's outbox (electron/core/outbox.ts).
 */
export const IPC_ACK = 'airlock:ack';

/** The envelope of a core → renderer event. */
export interface EventEnvelope {
  event: string;
  payload: unknown;
  /** Increasing per window, for IPC_ACK. */
  seq?: number;
}
