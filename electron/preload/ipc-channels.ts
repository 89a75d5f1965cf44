/**
 * The only two Electron IPC channels between the preload and the main process.
 * Every contract call travels on IPC_CALL as (channelName, input); every event
 * from the core arrives on IPC_EVENT as { event, payload }. Nothing else is
 * registered on either side, so there is nothing else to reach.
 */
export const IPC_CALL = 'airlock:call';
export const IPC_EVENT = 'airlock:event';

/** The envelope of a core → renderer event. */
export interface EventEnvelope {
  event: string;
  payload: unknown;
}
