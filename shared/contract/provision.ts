import { z } from 'zod';
import { channel, event } from './channel';
import { Fingerprint, HostName, NoInput, RequestId, visibleText } from './common';

/** Playbook and step names: short identifiers. */
export const PlaybookName = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lower-case letters, digits, _ . -');
export const StepId = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ -');
export const RunId = z.string().regex(/^run-[0-9a-f]{16}$/);
export const AttestationId = z.string().regex(/^att-[0-9a-f]{16}$/);
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits');
/** A model name and version as the organisation names them. */
export const ModelName = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
export const ModelVersion = z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/);
/** A directory on the console machine under one of the configured media roots (removable media). */
export const MediaPath = z.string().min(1).max(4096).refine((s) => !s.includes('\0') && !s.includes('\n'), 'no NUL or newline');

/** Which hosts: names, `all`, or `label:<x>` (hosts carrying that label). Resolved by the core; unknown names refused. */
export const HostSelector = z.array(z.string().min(1).max(80).regex(/^(all|label:[A-Za-z0-9_.-]+|[A-Za-z0-9][A-Za-z0-9_.-]*)$/)).min(1).max(10000);

/** Per-step parameter overrides for one run: `{ stepId: { param: value } }` (validated by the step's schema). */
export const ParamOverrides = z.record(StepId, z.record(z.string().max(64), z.unknown())).default({});

export const StepDecl = z
  .object({
    id: StepId,
    type: z.string().min(1).max(64),
    title: visibleText(z.string().max(200)).optional(),
    params: z.record(z.string().max(64), z.unknown()).default({}),
  })
  .strict();

/** A playbook as stored in resources/playbooks/*.json or imported by the organisation: data only, never code. */
export const Playbook = z
  .object({
    format: z.literal('airlock.playbook/v1'),
    name: PlaybookName,
    version: z.string().min(1).max(32).regex(/^[0-9A-Za-z.+-]+$/),
    description: visibleText(z.string().max(2000), { allow: '\n' }).default(''),
    steps: z.array(StepDecl).min(1).max(100),
  })
  .strict();
export type Playbook = z.infer<typeof Playbook>;

export const PlaybookInfo = z.object({
  name: PlaybookName,
  version: z.string(),
  description: z.string(),
  source: z.enum(['builtin', 'imported']),
  /** SHA-256 of the playbook's canonical JSON: runs and attestations name it. */
  digest: Sha256Hex,
  steps: z.array(
    z.object({
      id: StepId,
      type: z.string(),
      title: z.string(),
      needs: z.object({ root: z.boolean(), store: z.array(z.string()) }),
      params: z.record(z.string(), z.unknown()),
      /**
       * The JSON Schema (draft 2020-12, input side) of the step type's parameters, from its zod
       * schema: the console builds the parameters form from it and checks values before Plan.
       * Checks a JSON Schema cannot say (a CIDR's syntax) are the core's alone. Null if the schema
       * could not be expressed.
       */
      paramsSchema: z.record(z.string(), z.unknown()).nullable().optional(),
    }),
  ),
});
export type PlaybookInfo = z.infer<typeof PlaybookInfo>;

/** One thing a step would change on a host. */
export const Change = z.object({
  kind: z.enum(['file', 'package', 'service', 'firewall', 'config', 'model', 'check']),
  target: z.string(),
  /** What is there now / what there will be (short text); null = absent. */
  from: z.string().nullable(),
  to: z.string().nullable(),
  /** A unified diff for text files and rulesets, when there is one. */
  diff: z.string().nullable().default(null),
});
export type Change = z.infer<typeof Change>;

export const StepStatus = z.enum(['pending', 'running', 'ok', 'changed', 'would-change', 'failed', 'cancelled', 'interrupted', 'skipped']);
export type StepStatus = z.infer<typeof StepStatus>;
export const HostRunStatus = z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export const RunStatus = z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export const RunKind = z.enum(['plan', 'apply', 'drift']);

export const StepRecord = z.object({
  idx: z.number().int().nonnegative(),
  stepId: StepId,
  type: z.string(),
  title: z.string(),
  status: StepStatus,
  /** The phase last entered: check → apply → verify. */
  phase: z.enum(['check', 'apply', 'verify']).nullable(),
  changes: z.array(Change),
  /** Output from the host (escape sequences neutralised), capped; the tail is kept. */
  output: z.string(),
  exitCode: z.number().int().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  durationMs: z.number().int().nullable(),
  message: z.string().nullable(),
  errorCode: z.string().nullable(),
  /** Transfers: bytes sent this attempt and the total to reach. */
  transfer: z.object({ sent: z.number(), done: z.number(), total: z.number() }).nullable(),
});
export type StepRecord = z.infer<typeof StepRecord>;

export const HostRun = z.object({
  host: HostName,
  status: HostRunStatus,
  message: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  attestationId: AttestationId.nullable(),
  steps: z.array(StepRecord),
});
export type HostRun = z.infer<typeof HostRun>;

export const Run = z.object({
  id: RunId,
  kind: RunKind,
  playbook: PlaybookName,
  playbookVersion: z.string(),
  playbookDigest: Sha256Hex,
  actor: z.string(),
  status: RunStatus,
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** How many times the run was resumed. */
  attempts: z.number().int().positive(),
  hosts: z.array(HostRun),
});
export type Run = z.infer<typeof Run>;

export const RunSummary = Run.omit({ hosts: true }).extend({
  hostCount: z.number().int(),
  failedHosts: z.number().int(),
});

export const RunInput = z
  .object({
    playbook: PlaybookName,
    hosts: HostSelector,
    params: ParamOverrides,
    requestId: RequestId.optional(),
    /** Hosts provisioned at once (steps stay in order per host). */
    concurrency: z.number().int().min(1).max(64).optional(),
  })
  .strict();

export const DriftItem = z.object({ stepId: StepId, path: z.string(), attested: z.unknown(), now: z.unknown() });
export const DriftReport = z.object({
  host: HostName,
  attestationId: AttestationId.nullable(),
  drifted: z.boolean(),
  items: z.array(DriftItem),
  error: z.string().nullable(),
});

export const provision = {
  'provision:playbooks': channel({
    in: NoInput,
    out: z.array(PlaybookInfo),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'List playbooks (built in and imported) with their steps and parameters',
  }),
  'provision:importPlaybook': channel({
    in: z.object({ text: z.string().max(256 * 1024) }).strict(),
    out: PlaybookInfo,
    roles: ['admin'],
    stepUp: true,
    summary: 'Import an organisation playbook (JSON, validated against the schema and the step catalogue; never executed blind)',
  }),
  'provision:plan': channel({
    in: RunInput,
    out: Run,
    roles: ['admin'],
    summary: "Run every step's read-only check on the chosen hosts and record what would change",
  }),
  'provision:apply': channel({
    in: RunInput,
    out: Run,
    roles: ['admin'],
    stepUp: true,
    summary: 'Apply a playbook: per host, steps in order (check → apply → verify); a host stops at its first failure',
  }),
  'provision:resume': channel({
    in: z.object({ runId: RunId, requestId: RequestId.optional(), concurrency: z.number().int().min(1).max(64).optional() }).strict(),
    out: Run,
    roles: ['admin'],
    stepUp: true,
    summary: 'Resume an interrupted, failed or cancelled apply from each host\'s first unfinished step (re-checked first)',
  }),
  'provision:disableEgressLockdown': channel({
    in: z.object({ host: HostName }).strict(),
    out: z.object({ host: HostName, removed: z.boolean() }),
    roles: ['admin'],
    target: 'host',
    stepUp: true,
    twoPerson: 'provision:disableEgressLockdown',
    summary: "Remove a host's egress lockdown (two-person rule: another person must approve)",
  }),
  'provision:drift': channel({
    in: z.object({ hosts: HostSelector, requestId: RequestId.optional() }).strict(),
    out: z.array(DriftReport),
    roles: ['admin', 'officer', 'auditor'],
    summary: "Check only: compare hosts with their last as-built attestation and list what drifted",
  }),
  'provision:status': channel({
    in: z.object({ runId: RunId }).strict(),
    out: Run,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'A run: per host and per step, status, output, exit code and duration',
  }),
  'provision:runs': channel({
    in: z.object({ limit: z.number().int().min(1).max(1000).default(50) }).strict(),
    out: z.array(RunSummary),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Recent provisioning runs, newest first',
  }),
} as const;

export const provisionEvents = {
  'provision:progress': event({
    payload: z.object({
      runId: RunId,
      host: HostName,
      /** Null for host-level changes. */
      step: StepRecord.nullable(),
      hostStatus: HostRunStatus,
      /** A chunk of new output for the step (neutralised), when there is one. */
      output: z.string().nullable(),
    }),
    summary: 'Provisioning progress: a step or host changed, output arrived, a transfer advanced',
    // A slow client gets each step's (or host's) latest state; skipped output chunks stay in the
    // step log (provision:status).
    flow: { latest: (p) => `${p.runId}/${p.host}/${p.step?.idx ?? ''}` },
  }),
} as const;
