/** The enrol and edit dialogs' checks, in words, before anything is sent (the core checks again). */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const ADDR_RE = /^[A-Za-z0-9.:_-]+$/;
export const USER_RE = /^[a-z_][a-z0-9_.-]*\$?$/i;

/** What is wrong with an address, port and user, or null. */
export function endpointProblem(address: string, port: string, user: string): string | null {
  const portNum = Number(port);
  if (address !== '' && (!ADDR_RE.test(address) || address.startsWith('-'))) return 'Address: a host name or IP address';
  if (!/^\d+$/.test(port) || !Number.isInteger(portNum) || portNum < 1 || portNum > 65535) return 'Port: 1–65535';
  if (user !== '' && !USER_RE.test(user)) return 'User: a POSIX user name';
  return null;
}
