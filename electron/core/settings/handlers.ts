import type { AreaHandlers } from '../dispatch';
import type { IdentitySettings } from './settings';

export function settingsHandlers(d: { settings: IdentitySettings }): AreaHandlers<'settings'> {
  return {
    'settings:get': () => d.settings.get(),
    'settings:set': (_ctx, input) => d.settings.set(input),
  };
}
