import crypto from 'node:crypto';
import fs from 'node:fs';

/**
 * Who owns a running job: `<pid>:<process start>:<nonce>`. The nonce tells two journals of one
 * process apart (a core re-created in the same process, or a test's second "process").
 */

/** This process, recognisably: a pid can be reused, a pid with its start time cannot. */
export function processStart(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '?';
  } catch {
    return '?';
  }
}

/** An owner id for the process `pid` (this one unless said otherwise). */
export function ownerId(pid: number = process.pid): string {
  return `${pid}:${processStart(pid)}:${crypto.randomBytes(4).toString('hex')}`;
}

export function ownerAlive(owner: string | null, mine: string): boolean {
  if (!owner) return false;
  if (owner === mine) return true;
  const [pidS, start] = owner.split(':');
  const pid = Number(pidS);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false; // an earlier core of this very process
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return start === '?' || processStart(pid) === start;
}
