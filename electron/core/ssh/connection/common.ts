/** How a connection names its host in messages, and how it bounds a wait. */

const MAX_TIMEOUT_MS = 24 * 3600 * 1000;

export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function label(address: string, port: number, hostName?: string): string {
  return hostName ? `${hostName} (${hostPort(address, port)})` : hostPort(address, port);
}

export function clampTimeout(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_TIMEOUT_MS) : 1;
}
