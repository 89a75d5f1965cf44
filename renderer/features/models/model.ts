import type { Out } from '../../../shared/contract/index';

/** Pure helpers of the Models page (no React): the catalog's rows and a version's lineage chain. */

export type Catalog = Out<'models:list'>;
export type Version = Catalog['models'][number]['versions'][number];

/** Every version of the catalog as a row, newest import last within a model, models by name. */
export function rowsOf(catalog: Catalog | null): Version[] {
  return (catalog?.models ?? []).flatMap((m) => m.versions);
}

export const CLASSIFICATION_LABELS: Record<Version['classification'], string> = {
  public: 'Public',
  internal: 'Internal',
  confidential: 'Confidential',
  phi: 'PHI',
};

/**
 * The lineage of a version as the steps a reader follows left to right: its datasets, then its
 * base chain from the oldest ancestor down, then the version itself (datasets → base → fine-tune).
 */
export function lineageSteps(
  v: Pick<Version, 'model' | 'version' | 'classification' | 'lineage'>,
  ancestry: readonly { model: string; version: string; classification: Version['classification']; status: Version['status'] }[],
): { kind: 'dataset' | 'base' | 'self'; label: string; detail: string; classification: Version['classification'] }[] {
  return [
    ...v.lineage.map((l) => ({ kind: 'dataset' as const, label: l.dataset, detail: `${l.role}${l.retentionUntil ? ` · kept until ${l.retentionUntil}` : ''}`, classification: l.classification })),
    ...[...ancestry].reverse().map((a) => ({ kind: 'base' as const, label: `${a.model} ${a.version}`, detail: `base · ${a.status}`, classification: a.classification })),
    { kind: 'self' as const, label: `${v.model} ${v.version}`, detail: 'this version', classification: v.classification },
  ];
}

/** What the operator may do to a version in its status (the core decides again). */
export function actionsFor(status: Version['status']): { approve: boolean; deprecate: boolean; revoke: boolean; publish: boolean } {
  return { approve: status === 'staged', deprecate: status === 'approved', revoke: status !== 'revoked', publish: status === 'approved' };
}
