import { Fragment, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { SessionStatus } from '../shared/contract/session';
import type { ChannelName } from '../shared/contract/index';
import type { AirlockErrorShape } from '../shared/domain/errors';
import { can as canCall, type Api } from './api';
import { AppContext, type AppContextValue } from './context';
import { ErrorLine } from './components/ErrorLine';
import { clockOffset } from './components/time';
import { AuditAlarmBanner } from './features/audit/AuditAlarm';
import type { CommandContext, Feature, FeatureCommand, FeatureRequest } from './features/feature';
import { CommandHandlersContext, HandlerRegistry } from './features/palette/commands';
import { CommandPalette, type ShortcutLine } from './features/palette/CommandPalette';
import { matchesAny, matchesKeys, type PaletteEntry } from './features/palette/model';
import { features, navFor } from './features/registry';
import { resolveRoute, routeHash } from './features/route';
import { SessionGate } from './features/session/SessionGate';

/** The session gate, then the console: the nav and the feature shown, both from the registry. */
export function App({ api }: { api: Api }) {
  return (
    <SessionGate api={api}>
      {(s) => <Console api={api} status={s.status} user={s.user} shellLine={s.banners} onStatus={s.onStatus} onSignedOut={s.onSignedOut} />}
    </SessionGate>
  );
}

/** Opens the palette anywhere but in a terminal, where Ctrl+K is the shell's (kill to end of line). */
export const PALETTE_KEYS = 'Ctrl+K / Cmd+K';
/** Opens the palette from a terminal too. */
export const PALETTE_KEYS_ANYWHERE = 'Ctrl+Shift+K';
/** The views by their place in the nav: Ctrl+Alt+1 is the first. */
const viewKeys = (i: number) => (i < 9 ? `Ctrl+Alt+${i + 1}` : undefined);

function Console({
  api,
  status,
  user,
  shellLine,
  onStatus,
  onSignedOut,
}: {
  api: Api;
  status: SessionStatus;
  user: NonNullable<SessionStatus['user']>;
  shellLine: React.ReactNode;
  onStatus: () => void;
  onSignedOut: () => void;
}) {
  const hooks = useRef(new Set<() => Promise<void>>());
  // Measured when a status arrives: the core's clock minus this browser's.
  const offset = useMemo(() => clockOffset(status.now, Date.now()), [status]);
  const ctx: AppContextValue = useMemo(
    () => ({
      api,
      client: api.client,
      user,
      can: (c: ChannelName) => canCall(user.roles, c),
      coreNow: () => Date.now() + offset,
      onBeforeLogout: (hook: () => Promise<void>) => {
        hooks.current.add(hook);
        return () => {
          hooks.current.delete(hook);
        };
      },
    }),
    [api, user, offset],
  );
  const nav = navFor(user.roles);

  // The view is the URL's (features/route.ts): the nav, the palette and Back/Forward all change
  // the fragment, and the console follows it. The fragment outlives a sign-out and a reload, so
  // whoever signs in next lands on the view the URL names.
  const [hash, setHash] = useState(() => location.hash);
  useEffect(() => {
    const follow = () => setHash(location.hash);
    window.addEventListener('hashchange', follow);
    window.addEventListener('popstate', follow);
    follow();
    return () => {
      window.removeEventListener('hashchange', follow);
      window.removeEventListener('popstate', follow);
    };
  }, []);
  const resolved = resolveRoute(hash, features, user.roles);
  const view = resolved.kind === 'view' ? resolved.feature.id : null;
  useEffect(() => {
    // No route, an unknown one or another spelling: the address bar shows the view's own route,
    // replacing the entry so that Back does not return to it.
    if (resolved.kind !== 'view' || resolved.canonical) return;
    const h = routeHash(resolved.feature.id);
    history.replaceState(history.state, '', h);
    setHash(h);
  }, [resolved]);
  const navigate = useCallback((id: string) => {
    const h = routeHash(id);
    if (location.hash !== h) location.hash = h; // a new history entry; hashchange follows
    else setHash(h);
  }, []);

  // The last request each feature was opened with (Hosts → Terminal on a host).
  const [requests, setRequests] = useState<Record<string, FeatureRequest>>({});
  const [logoutError, setLogoutError] = useState<AirlockErrorShape | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [palette, setPalette] = useState(false);

  const logout = useCallback(async () => {
    await Promise.allSettled([...hooks.current].map((h) => h()));
    const r = await api.client.session.logout({});
    if (!r.ok && r.error.code !== 'UNAUTHENTICATED') {
      setLogoutError(r.error);
      return;
    }
    onSignedOut();
  }, [api, onSignedOut]);

  const open = useCallback(
    (id: string, name?: string) => {
      if (name !== undefined) setRequests((cur) => ({ ...cur, [id]: { name, nonce: Date.now() } }));
      navigate(id);
    },
    [navigate],
  );

  // Commands: what features declare (Feature.commands), run by the handlers their pages bind.
  const labelOf = useRef(new Map<string, string>());
  const [handlers] = useState(() => new HandlerRegistry((id) => setNotice(`“${labelOf.current.get(id) ?? id}” is not available right now.`)));
  const cmdCtx: CommandContext = useMemo(
    () => ({
      client: api.client,
      open,
      perform: (featureId, commandId) => {
        setNotice(null);
        navigate(featureId);
        handlers.perform(commandId);
      },
    }),
    [api, open, navigate, handlers],
  );
  const runCommand = (f: Feature, c: FeatureCommand, arg?: string) => (c.run ? c.run(cmdCtx, arg) : cmdCtx.perform(f.id, c.id));
  /**
   * A command is offered when it can run now: the user may call its channel, its `when` holds
   * for the view shown, and (for one its page performs) the page has bound it or is not mounted
   * yet (showing it mounts it). A mounted page that has not bound it (the terminal's "next tab"
   * with one tab) has nothing to do: the entry would be dead.
   */
  const available = (f: Feature, c: FeatureCommand) => {
    if (c.channel && !ctx.can(c.channel)) return false;
    if (c.when && !c.when(view ?? '')) return false;
    if (c.run) return true;
    const mounted = f.keepMounted || view === f.id;
    return !mounted || handlers.bound(c.id);
  };
  const consoleCommands: Array<{ c: FeatureCommand; run(): void }> = [
    { c: { id: 'session.signOut', label: 'Sign out', keywords: 'log out logout lock leave hand over' }, run: () => void logout() },
  ];

  // "New terminal to <host>": choices are read each time the palette opens.
  const [choices, setChoices] = useState<Record<string, ReadonlyArray<{ value: string; label: string; detail?: string }>>>({});
  useEffect(() => {
    if (!palette) return;
    let live = true;
    for (const f of nav) {
      for (const c of f.commands ?? []) {
        if (!c.choices || (c.channel && !ctx.can(c.channel))) continue;
        void c.choices(cmdCtx).then(
          (list) => live && setChoices((cur) => ({ ...cur, [c.id]: list })),
          () => live && setChoices((cur) => ({ ...cur, [c.id]: [] })),
        );
      }
    }
    return () => {
      live = false;
    };
    // Read once per opening (not on the palette's own renders): only `palette` is a dependency.
  }, [palette]);

  const entries: PaletteEntry[] = [];
  const shortcuts: ShortcutLine[] = [
    { keys: PALETTE_KEYS, what: 'Open this palette (in a terminal Ctrl+K is the shell’s: use Ctrl+Shift+K there)' },
    { keys: PALETTE_KEYS_ANYWHERE, what: 'Open this palette, from a terminal too' },
    { keys: '↑ / ↓ · Enter · Esc', what: 'In the palette: move, run, close' },
  ];
  nav.forEach((f, i) => {
    entries.push({ key: `view:${f.id}`, group: 'Views', label: `Go to ${f.label}`, keys: viewKeys(i), keywords: f.id, run: () => navigate(f.id) });
    const k = viewKeys(i);
    if (k) shortcuts.push({ keys: k, what: `Go to ${f.label}` });
  });
  for (const f of nav) {
    for (const c of f.commands ?? []) {
      labelOf.current.set(c.id, c.label);
      if (c.keys) shortcuts.push({ keys: c.keys, what: `${c.label}${c.when ? ` (${f.label})` : ''}` });
      if (!available(f, c)) continue;
      if (c.choices) {
        for (const ch of choices[c.id] ?? []) {
          entries.push({ key: `${c.id}:${ch.value}`, group: 'Actions', label: c.label.replace('{choice}', ch.label), detail: ch.detail, keywords: c.keywords, run: () => runCommand(f, c, ch.value) });
        }
      } else {
        entries.push({ key: c.id, group: 'Actions', label: c.label, keys: c.keys, keywords: c.keywords, run: () => runCommand(f, c) });
      }
    }
    for (const s of f.shortcuts ?? []) shortcuts.push({ keys: s.keys, what: `${s.what} (${f.label})` });
  }
  for (const { c, run } of consoleCommands) entries.push({ key: c.id, group: 'Actions', label: c.label, keys: c.keys, keywords: c.keywords, run });

  // Global keys, read before the page's own handlers (capture) so a terminal does not swallow
  // them; the latest closure is used, so the shortcuts follow the view and the commands bound.
  const onKey = useRef<(e: KeyboardEvent) => void>(() => {});
  onKey.current = (e: KeyboardEvent) => {
    if (e.defaultPrevented || e.repeat) return;
    // A dialog is open (the palette included): its keys are its own.
    if (document.getElementById('root')?.inert) return;
    const inTerminal = e.target instanceof Element && e.target.closest('.xterm') !== null;
    const take = () => {
      e.preventDefault();
      e.stopPropagation();
    };
    if ((matchesAny(PALETTE_KEYS, e) && !(inTerminal && e.ctrlKey)) || matchesKeys(PALETTE_KEYS_ANYWHERE, e)) {
      take();
      setPalette(true);
      return;
    }
    const i = nav.findIndex((_, n) => n < 9 && matchesKeys(viewKeys(n)!, e));
    if (i >= 0) {
      take();
      navigate(nav[i]!.id);
      return;
    }
    for (const f of nav) {
      for (const c of f.commands ?? []) {
        if (c.keys && !c.choices && matchesAny(c.keys, e) && available(f, c)) {
          take();
          runCommand(f, c);
          return;
        }
      }
    }
  };
  useEffect(() => {
    const h = (e: KeyboardEvent) => onKey.current(e);
    window.addEventListener('keydown', h, true);
    return () => window.removeEventListener('keydown', h, true);
  }, []);

  const page = (f: Feature) => {
    const Page = f.component;
    return <Page active={view === f.id} status={status} onStatus={onStatus} open={open} request={requests[f.id] ?? null} />;
  };
  const title = resolved.kind === 'none' ? '' : resolved.feature.label;

  return (
    <AppContext.Provider value={ctx}>
      <CommandHandlersContext.Provider value={handlers}>
        <div className="layout">
          <nav className="sidebar" aria-label="Main">
            <div className="brand">Airlock</div>
            <ul>
              {nav.map((n, i) => (
                <li key={n.id}>
                  <button
                    type="button"
                    className={view === n.id ? 'nav-item active' : 'nav-item'}
                    aria-current={view === n.id ? 'page' : undefined}
                    aria-keyshortcuts={viewKeys(i)?.replace(/\+/g, '+')}
                    title={viewKeys(i)}
                    data-testid={`nav-${n.id}`}
                    onClick={() => navigate(n.id)}
                  >
                    {n.label}
                    {n.badge ? <n.badge /> : null}
                  </button>
                </li>
              ))}
            </ul>
            <button type="button" className="nav-palette" onClick={() => setPalette(true)} aria-keyshortcuts="Control+K Meta+K" data-testid="palette-open">
              Commands <kbd>Ctrl+K</kbd>
            </button>
            <div className="sidebar-foot" data-testid="shell-kind" data-shell={status.shell}>
              {status.shell} shell · v{status.version}
            </div>
          </nav>
          <div className="main">
            {shellLine}
            <AuditAlarmBanner client={api.client} enabled={ctx.can('audit:alarmStatus')} />
            <header className="topbar">
              <div className="topbar-title">{title}</div>
              <div className="topbar-user">
                <ErrorLine error={logoutError} testId="logout-error" />
                <span className="user-name" data-testid="topbar-user">
                  {user.name}
                </span>
                <span className="roles" data-testid="topbar-roles">
                  {user.roles.map((r) => (
                    <span key={r} className={`role role-${r}`}>
                      {r}
                    </span>
                  ))}
                </span>
                <button type="button" onClick={() => void logout()} data-testid="signout">
                  Sign out
                </button>
              </div>
            </header>
            {notice ? (
              <div className="info-line" role="status" data-testid="command-notice">
                {notice}
              </div>
            ) : null}
            <main className="content">
              {resolved.kind === 'forbidden' ? (
                <section className="view" data-testid="route-forbidden" data-route={resolved.feature.id}>
                  <div className="panel panel-warn">
                    <p>
                      <strong>{resolved.feature.label}</strong> is not available to your roles ({user.roles.join(', ')}). It is for:{' '}
                      {resolved.feature.roles.join(', ')}.
                    </p>
                    {resolved.fallback ? (
                      <p>
                        <a href={routeHash(resolved.fallback.id)} data-testid="route-fallback">
                          Go to {resolved.fallback.label}
                        </a>
                      </p>
                    ) : null}
                  </div>
                </section>
              ) : null}
              {nav.map((f) =>
                f.keepMounted ? (
                  <div key={f.id} className={view === f.id ? 'view-slot' : 'view-slot view-hidden'}>
                    {page(f)}
                  </div>
                ) : view === f.id ? (
                  <Fragment key={f.id}>{page(f)}</Fragment>
                ) : null,
              )}
            </main>
          </div>
        </div>
        {palette ? <CommandPalette entries={entries} shortcuts={shortcuts} onClose={() => setPalette(false)} /> : null}
      </CommandHandlersContext.Provider>
    </AppContext.Provider>
  );
}
