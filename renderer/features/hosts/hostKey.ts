/** Which host key file an operator should fingerprint on the host to compare with what Airlock saw. */
export function hostKeyFile(keyType: string | null | undefined): string {
  const t = (keyType ?? '').toLowerCase();
  if (t.includes('ecdsa')) return '/etc/ssh/ssh_host_ecdsa_key.pub';
  if (t.includes('rsa')) return '/etc/ssh/ssh_host_rsa_key.pub';
  return '/etc/ssh/ssh_host_ed25519_key.pub';
}

export function compareCommand(keyType: string | null | undefined): string {
  return `ssh-keygen -lf ${hostKeyFile(keyType)}`;
}
