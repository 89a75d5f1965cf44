import { describe, expect, it } from 'vitest';
import { areaOf, channelNames } from '../../shared/contract/index';
import { approvalsHandlers } from './approvals/handlers';
import { attestHandlers } from './attest/handlers';
import { auditHandlers } from './audit/handlers';
import type { AreaChannels, AreaHandlers } from './dispatch';
import { hostsHandlers } from './hosts/handlers';
import { identityHandlers } from './identity/handlers';
import { caHandlers } from './keys/ca-handlers';
import { keysHandlers } from './keys/handlers';
import { hostSecretsHandlers } from './keys/host-secrets';
import { modelsKeysHandlers } from './keys/models-handlers';
import { modelsRekeyHandlers } from './keys/models-rekey-handlers';
import { ownKeysHandlers } from './keys/own-keys-handlers';
import { sshRotationHandlers } from './keys/ssh-rotation-handlers';
import { createModelsArea } from './models/handlers';
import { createAccessArea } from './models/access/handlers';
import { opsHandlers } from './ops/handlers';
import { provisionHandlers } from './provision/handlers';
import { sessionHandlers } from './session/handlers';
import { settingsHandlers } from './settings/handlers';
import { storeHandlers } from './store/handlers';
import { terminalHandlers } from './terminal/handlers';
import { totpHandlers } from './totp/handlers';
import { usersHandlers } from './users/handlers';

// The factories only close over their services; nothing is called here, so none is needed.
const none = {} as never;
const access = createAccessArea(none);
const areas: Record<string, object> = {
  session: sessionHandlers(none),
  totp: totpHandlers(none),
  users: usersHandlers(none),
  settings: settingsHandlers(none),
  approvals: approvalsHandlers(none),
  identity: identityHandlers(none),
  hosts: hostsHandlers(none),
  ops: opsHandlers(none),
  terminal: terminalHandlers(none),
  keys: { ...keysHandlers(none), ...modelsKeysHandlers(none), ...caHandlers(none), ...sshRotationHandlers(none), ...hostSecretsHandlers(none), ...modelsRekeyHandlers(none), ...ownKeysHandlers(none) },
  provision: provisionHandlers(none),
  store: storeHandlers(none),
  attest: attestHandlers(none),
  audit: auditHandlers(none),
  datasets: createModelsArea(none).datasets,
  models: createModelsArea(none).models,
  principals: access.principalsHandlers(),
  grants: access.grantsHandlers(),
  enclaves: access.enclavesHandlers(),
  policy: access.policyHandlers(),
};

describe('per-area handlers', () => {
  it('each area handles exactly its own channels, and the areas together the whole contract', () => {
    for (const [area, handlers] of Object.entries(areas)) {
      expect(Object.keys(handlers).sort(), area).toEqual(channelNames.filter((c) => areaOf(c) === area).sort());
    }
    expect(Object.values(areas).flatMap((h) => Object.keys(h)).sort()).toEqual([...channelNames].sort());
  });

  it('a missing or an extra handler does not compile (tsc checks the expectations below)', () => {
    const channels: AreaChannels<'settings'>[] = ['settings:get', 'settings:set'];
    // @ts-expect-error — users:list is not a settings channel
    channels.push('users:list');
    // @ts-expect-error — settings:set has no handler
    const missing: AreaHandlers<'settings'> = { 'settings:get': () => ({}) as never };
    const extra: AreaHandlers<'settings'> = {
      'settings:get': () => ({}) as never,
      'settings:set': () => ({}) as never,
      // @ts-expect-error — an area may not handle another area's channel
      'users:list': () => [],
    };
    expect(Object.keys(missing)).toEqual(['settings:get']);
    expect(Object.keys(extra)).toHaveLength(3);
    expect(channels).toHaveLength(3);
  });
});
