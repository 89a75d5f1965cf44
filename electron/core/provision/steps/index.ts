import { egressLockdown } from './egress';
import { inferenceGate } from './gate';
import { gpuCheck } from './gpu';
import { inferenceService } from './inference';
import { modelWeights } from './models';
import { offlinePackages } from './packages';
import { sshHardening } from './sshd';
import type { StepImpl } from './types';

/** The step catalogue: a playbook may name only these types. */
export const STEPS: ReadonlyMap<string, StepImpl<unknown>> = new Map(
  ([gpuCheck, offlinePackages, modelWeights, inferenceService, inferenceGate, egressLockdown, sshHardening] as unknown as Array<StepImpl<unknown>>).map((s) => [s.type, s]),
);
