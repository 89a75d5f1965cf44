import crypto from 'node:crypto';
import ssh2 from 'ssh2';
import sshpk from 'sshpk';
import { AirlockError } from '../../../shared/domain/errors';
import { fingerprintOfKey } from '../ssh/fingerprint';

export interface SshIdentity {
  /** OpenSSH private key format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted: the vault seals it. */
  privateKey: string;
  /** One authorized_keys line: `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  fingerprint: string;
}

/**
 * The comment ends up in every host's authorized_keys; a newline in it would let whoever chose it
 * append a second, unintended key line there.
 */
function safeComment(comment: string): string {
  return comment
    .replace(/[^\x21-\x7e ]/g, '')
    .trim()
    .slice(0, 128);
}

/**
 * A fresh ed25519 identity for Airlock's own SSH client. The key comes from Node's crypto and is
 * written in OpenSSH format by sshpk: ssh2's own `generateKeyPairSync('ed25519')` drops a leading
 * zero byte of the public key (about 1 key in 256), producing a key nobody can parse
 * (see identity.test.ts, which generates thousands). The key registry (keys/registry.ts) passes
 * the ed25519 key it made from the injected random source.
 */
export function generateIdentity(comment: string, ed25519: crypto.KeyObject = crypto.generateKeyPairSync('ed25519').privateKey): SshIdentity {
  const c = safeComment(comment);
  const pem = ed25519.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = sshpk.parsePrivateKey(pem, 'pkcs8');
  key.comment = c; // sshpk would otherwise write '(unnamed)'
  const privateKey = key.toString('ssh-private');
  // Read back with the client that will use it: a key ssh2 cannot load must never be sealed.
  const publicKey = publicKeyOf(privateKey);
  return { privateKey, publicKey, fingerprint: fingerprintOfPrivateKey(privateKey) };
}

function parsePrivate(privateKey: string) {
  let parsed: ReturnType<typeof ssh2.utils.parseKey>;
  try {
    parsed = ssh2.utils.parseKey(privateKey);
  } catch {
    throw new AirlockError('PARSE_ERROR', 'The SSH private key could not be read.');
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) {
    throw new AirlockError('PARSE_ERROR', 'The SSH private key could not be read (encrypted keys are not supported here).');
  }
  if (key.getPrivatePEM() === null) throw new AirlockError('PARSE_ERROR', 'The key given is a public key, not a private key.');
  return key;
}

/** The authorized_keys line of a private key (its comment kept). */
export function publicKeyOf(privateKey: string): string {
  const key = parsePrivate(privateKey);
  const blob = key.getPublicSSH();
  const comment = safeComment(key.comment ?? '');
  return `${key.type} ${blob.toString('base64')}${comment ? ' ' + comment : ''}`;
}

/** The SHA256 fingerprint of a private key's public half. */
export function fingerprintOfPrivateKey(privateKey: string): string {
  return fingerprintOfKey(parsePrivate(privateKey).getPublicSSH());
}
