import crypto from 'node:crypto';
import { z } from 'zod';
import { Playbook, type PlaybookInfo } from '../../../shared/contract/provision';
import { AirlockError } from '../../../shared/domain/errors';
import gpuInferenceNode from '../../../resources/playbooks/gpu-inference-node.json';
import labGpuNode from '../../../resources/playbooks/lab-gpu-node.json';
import { canonical } from '../audit/canonical';
import type { Db } from '../db/db';
import { STEPS } from './steps/index';

/** Playbooks shipped in resources/playbooks (bundled into the app, so they cannot be swapped on disk). */
const BUILTIN: unknown[] = [gpuInferenceNode, labGpuNode];

export interface LoadedPlaybook {
  playbook: Playbook;
  digest: string;
  source: 'builtin' | 'imported';
}

export const playbookDigest = (p: Playbook) => crypto.createHash('sha256').update(canonical(p)).digest('hex');

function issues(e: z.ZodError): string {
  return e.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
    .join('; ');
}

/** A step's parameter problems, each naming the parameter (`parameter dest: must not contain a .. segment`). */
function paramIssues(e: z.ZodError): string {
  return e.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `parameter ${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** Schema, then every step against the catalogue and its own parameter schema. Nothing runs. */
export function validatePlaybook(raw: unknown): Playbook {
  const r = Playbook.safeParse(raw);
  if (!r.success) throw new AirlockError('INVALID_INPUT', `Not a valid playbook: ${issues(r.error)}`);
  const pb = r.data;
  const ids = new Set<string>();
  for (const s of pb.steps) {
    if (ids.has(s.id)) throw new AirlockError('INVALID_INPUT', `Step id "${s.id}" appears twice.`);
    ids.add(s.id);
    const impl = STEPS.get(s.type);
    if (!impl) throw new AirlockError('INVALID_INPUT', `Step "${s.id}": unknown type "${s.type}" (known: ${[...STEPS.keys()].join(', ')}).`);
    const p = impl.params.safeParse(s.params);
    // Every parameter, paths included (steps type them HostPath: the rule checkHostPath applies at plan).
    if (!p.success) throw new AirlockError('INVALID_INPUT', `Step "${s.id}" (${s.type}): ${paramIssues(p.error)}`);
  }
  return pb;
}

/** A step's parameters for one run: the playbook's, with the run's overrides on top, validated. */
export function stepParams(pb: Playbook, stepId: string, overrides: Record<string, Record<string, unknown>>): unknown {
  const s = pb.steps.find((x) => x.id === stepId);
  if (!s) throw new AirlockError('INVALID_INPUT', `The playbook has no step "${stepId}".`);
  const impl = STEPS.get(s.type)!;
  const r = impl.params.safeParse({ ...s.params, ...(overrides[stepId] ?? {}) });
  if (!r.success) throw new AirlockError('INVALID_INPUT', `Step "${stepId}" (${s.type}): ${paramIssues(r.error)}`);
  return r.data;
}

export function checkOverrides(pb: Playbook, overrides: Record<string, Record<string, unknown>>): void {
  for (const id of Object.keys(overrides)) stepParams(pb, id, overrides);
}

export class Playbooks {
  private readonly builtin: LoadedPlaybook[];

  constructor(private readonly deps: { db: Db; now: () => string }) {
    this.builtin = BUILTIN.map((raw) => {
      const playbook = validatePlaybook(raw);
      return { playbook, digest: playbookDigest(playbook), source: 'builtin' as const };
    });
  }

  /**
   * Built-in and imported playbooks. An imported one is validated again on every read: one stored
   * before a check became stricter (a path with `..`, say) is left out here, and `get` names why.
   */
  all(): LoadedPlaybook[] {
    const imported: LoadedPlaybook[] = [];
    for (const r of this.deps.db.prepare('SELECT body FROM playbooks ORDER BY name').all() as Array<{ body: string }>) {
      try {
        const playbook = validatePlaybook(JSON.parse(r.body));
        imported.push({ playbook, digest: playbookDigest(playbook), source: 'imported' });
      } catch {
        continue;
      }
    }
    return [...this.builtin, ...imported];
  }

  get(name: string): LoadedPlaybook {
    const p = this.all().find((x) => x.playbook.name === name);
    if (p) return p;
    const stored = this.deps.db.prepare('SELECT body FROM playbooks WHERE name = ?').get(name) as { body: string } | undefined;
    if (stored) {
      try {
        validatePlaybook(JSON.parse(stored.body));
      } catch (e) {
        throw new AirlockError('INVALID_INPUT', `The imported playbook "${name}" no longer passes validation: ${(e as Error).message} Import a corrected version.`);
      }
    }
    throw new AirlockError('NOT_FOUND', `No playbook named "${name}".`);
  }

  import(text: string, actor: string): LoadedPlaybook {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new AirlockError('PARSE_ERROR', `The playbook is not JSON: ${(e as Error).message.slice(0, 200)}`);
    }
    const playbook = validatePlaybook(raw);
    if (this.builtin.some((b) => b.playbook.name === playbook.name)) {
      throw new AirlockError('CONFLICT', `"${playbook.name}" is a built-in playbook: import yours under another name.`);
    }
    const digest = playbookDigest(playbook);
    this.deps.db
      .prepare(
        `INSERT INTO playbooks (name, version, body, digest, imported_at, imported_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET version = excluded.version, body = excluded.body, digest = excluded.digest,
           imported_at = excluded.imported_at, imported_by = excluded.imported_by`,
      )
      .run(playbook.name, playbook.version, JSON.stringify(playbook), digest, this.deps.now(), actor);
    return { playbook, digest, source: 'imported' };
  }

  info(p: LoadedPlaybook): PlaybookInfo {
    return {
      name: p.playbook.name,
      version: p.playbook.version,
      description: p.playbook.description,
      source: p.source,
      digest: p.digest,
      steps: p.playbook.steps.map((s) => {
        const impl = STEPS.get(s.type)!;
        const params = impl.params.parse(s.params);
        return {
          id: s.id,
          type: s.type,
          title: s.title ?? impl.title,
          needs: { root: impl.needs.root, store: impl.needs.store(params) },
          params: params as Record<string, unknown>,
          paramsSchema: paramsSchemaOf(impl.params),
        };
      }),
    };
  }
}

/**
 * A step type's parameters as JSON Schema (what the console's form is generated from). Refinements
 * (CIDR syntax, IPv4 checks) have no JSON Schema form and are left to the core's own check at Plan.
 */
export function paramsSchemaOf(schema: z.ZodType): Record<string, unknown> | null {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  } catch {
    return null;
  }
}
