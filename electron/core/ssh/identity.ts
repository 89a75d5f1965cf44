import ssh2 from 'ssh2';
import { AirlockError } from '../../../shared/domain/errors';
import { fingerprintOfKey } from './fingerprint';

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

/** A fresh ed25519 identity for Airlock's own SSH client. */
export function generateIdentity(comment: string): SshIdentity {
  const c = safeComment(comment);
  const pair = ssh2.utils.generateKeyPairSync('ed25519', c ? { comment: c } : {});
  const publicKey = publicKeyOf(pair.private);
  return { privateKey: pair.private, publicKey, fingerprint: fingerprintOfPrivateKey(pair.private) };
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
