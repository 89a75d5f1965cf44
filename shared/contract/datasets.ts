import { z } from 'zod';
import { channel } from './channel';
import { NoInput, visibleText } from './common';
import { ANY, Classification, DatasetId, IsoDate, LineageRole, Text, VersionStatus } from './models';

/**
 * Datasets as catalog entries (issue 13): id, classification, retention date and where they are,
 * so a model version's lineage (training, fine-tuning, evaluation) names something real.
 */

export const Dataset = z.object({
  id: DatasetId,
  name: z.string(),
  description: z.string(),
  classification: Classification,
  retentionUntil: z.string().nullable(),
  location: z.string(),
  owner: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
});
export type Dataset = z.infer<typeof Dataset>;

export const datasets = {
  'datasets:add': channel({
    in: z
      .object({
        id: DatasetId,
        name: visibleText(z.string().min(1).max(200)),
        description: Text(4000).optional(),
        classification: Classification,
        retentionUntil: IsoDate.nullable().optional(),
        /** Where the dataset is (a vault, a share, a system of record): lineage links to something real. */
        location: visibleText(z.string().min(1).max(1000)),
        owner: visibleText(z.string().min(1).max(200)),
      })
      .strict(),
    out: Dataset,
    roles: ['admin'],
    target: 'id',
    summary: 'Add a dataset to the catalog (id, classification, retention, where it is) so model lineage can name it',
  }),
  'datasets:list': channel({
    in: NoInput,
    out: z.array(Dataset),
    roles: ANY,
    summary: 'The datasets of the catalog',
  }),
  'datasets:show': channel({
    in: z.object({ id: DatasetId }).strict(),
    out: z.object({ dataset: Dataset, usedBy: z.array(z.object({ model: z.string(), version: z.string(), role: LineageRole, status: VersionStatus })) }),
    roles: ANY,
    target: 'id',
    summary: 'One dataset, and the model versions trained, fine-tuned or evaluated on it',
  }),
} as const;

