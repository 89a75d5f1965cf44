import type { z } from 'zod';
import type { Change } from '../../../../shared/contract/provision';
import type { HostSecretKeys } from '../../keys/host-secrets';
import type { SshConnection } from '../../ssh/connection';
import type { Remote } from '../remote';
import type { OfflineStore } from '../../store/store';

/** How long an upload may wait for the host's next acknowledgement before it fails (resumable). */
export const UPLOAD_STALL_MS = 20_000;

/** What a step's check found. */
export interface CheckResult {
  /** ok: already in the wanted state. change: apply would change `changes`. fail: cannot be made so by this step. */
  state: 'ok' | 'change' | 'fail';
  changes: Change[];
  message?: string;
}

export interface VerifyResult {
  ok: boolean;
  /** What was proven; goes into the as-built attestation and is compared for drift. JSON only. */
  facts: unknown;
  message?: string;
}

export interface StepContext {
  host: { name: string; address: string; port: number; user: string; fingerprint: string };
  remote: Remote;
  store: OfflineStore;
  signal: AbortSignal;
  /** Extra connections to the same host (parallel transfers); closed by the engine after the step. */
  extraConnections(n: number): Promise<SshConnection[]>;
  /** A brand-new connection, to prove Airlock can still get in (after firewall or sshd changes). Closed by the caller. */
  freshConnection(timeoutMs: number): Promise<SshConnection>;
  /** Append to the step's live log (neutralised and capped by the engine). */
  log(text: string): void;
  transfer(p: { sent: number; done: number; total: number }): void;
  /** Default timeout for one command on the host. */
  timeoutMs: number;
  /**
   * The key hierarchy, for host secrets sealed under the `host-secrets` KEK (keys/host-secrets.ts;
   * the inference API key). Optional: without it, or before genesis, a step keeps a host-made
   * secret and says so; with a sealed hierarchy it fails closed.
   */
  hostSecrets?: HostSecretKeys;
  /**
   * The gate policy as the console signs it now (models/access: compiled and, when it changed,
   * signed as a new version with the caller's vault key), with the pinned public key hosts verify
   * it with: what the inference-gate step installs. Absent in consoles without the access area.
   */
  gatePolicy?: (o: { issue: boolean }) => GatePolicyNow;
}

/** The pinned key and the current signed policy; `issue: false` only reads (null before the first one). */
export interface GatePolicyNow {
  keyPem: string | null;
  policy: { bytes: Buffer; sig: string; version: number } | null;
}

export interface StepImpl<P = unknown> {
  type: string;
  title: string;
  /** Typed, validated parameters: a playbook can only choose values, never code. */
  params: z.ZodType<P>;
  needs: { root: boolean; store: (p: P) => string[] };
  /** Read-only: is the host already in the wanted state, and if not, what would change. */
  check(ctx: StepContext, p: P): Promise<CheckResult>;
  /** Make it so. Idempotent. */
  apply(ctx: StepContext, p: P, found: CheckResult): Promise<void>;
  /** Prove it (read-only), and say what was proven. */
  verify(ctx: StepContext, p: P): Promise<VerifyResult>;
}

export function defineStep<P>(s: StepImpl<P>): StepImpl<P> {
  return s;
}
