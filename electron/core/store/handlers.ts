import type { AreaHandlers } from '../dispatch';
import type { OfflineStore } from './store';

/** The offline store: Debian packages and model files imported from removable media. */
export function storeHandlers(d: { store: OfflineStore }): AreaHandlers<'store'> {
  const { store } = d;
  return {
    'store:list': () => ({ debs: store.listDebs(), models: store.listModels(), mediaRoots: store.mediaRoots }),
    'store:importDebs': (ctx, input) => store.importDebs(input.dir, ctx.requireSession().user, ctx.signal),
    'store:importModel': (ctx, input) => store.importModel(input.dir, input.name, input.version, ctx.requireSession().user, ctx.signal),
  };
}
