import { z } from 'zod';
import { channel } from './channel';
import { NoInput, RequestId } from './common';
import { MediaPath, ModelName, ModelVersion, Sha256Hex } from './provision';

export const StoreDeb = z.object({ package: z.string(), version: z.string(), arch: z.string(), sha256: Sha256Hex, size: z.number(), file: z.string(), importedAt: z.string() });
export const StoreModel = z.object({
  name: ModelName,
  version: ModelVersion,
  importedAt: z.string(),
  files: z.array(z.object({ path: z.string(), sha256: Sha256Hex, size: z.number() })),
  size: z.number(),
});

export const store = {
  'store:list': channel({
    in: NoInput,
    out: z.object({ debs: z.array(StoreDeb), models: z.array(StoreModel), mediaRoots: z.array(z.string()) }),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'The offline store: imported .deb packages and model versions',
  }),
  'store:importDebs': channel({
    in: z.object({ dir: MediaPath, requestId: RequestId.optional() }).strict(),
    out: z.object({ imported: z.array(StoreDeb), already: z.number().int() }),
    roles: ['admin'],
    summary: 'Import .deb files from removable media into the offline store (each checked against the SHA256SUMS beside it; cancellable)',
  }),
  'store:importModel': channel({
    in: z.object({ dir: MediaPath, name: ModelName, version: ModelVersion, requestId: RequestId.optional() }).strict(),
    out: StoreModel,
    roles: ['admin'],
    target: 'name',
    summary: "Import a model version's files from removable media (each checked against the SHA256SUMS beside it; cancellable)",
  }),
} as const;
