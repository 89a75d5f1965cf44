/** `attestation-<host>-<id>.json`; host names are already file-name safe, this only makes sure. */
export function attestationFileName(host: string, id: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `attestation-${safe(host)}-${safe(id)}.json`;
}
