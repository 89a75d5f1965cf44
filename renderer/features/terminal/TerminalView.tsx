import './terminal.css';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { shortFingerprint } from '../../components/format';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';
import type { FeatureProps } from '../feature';
import { useCommand } from '../palette/commands';
import { matchesKeys } from '../palette/model';
import { TerminalTab, type TabState, type TerminalTabHandle } from './TerminalTab';

interface Tab {
  key: string;
  host: string;
}

/** Alt+1 … Alt+9: the tab at that place (the page's own keys, listed in the palette). */
export const TAB_KEYS = Array.from({ length: 9 }, (_, i) => `Alt+${i + 1}`);

/**
 * Terminal sessions in tabs, like Lens' terminal dock: each tab is one session to one host,
 * labelled with the host and the short form of its pinned key (the full key on hover and in the
 * panel). A tab hidden keeps its session and its scrollback; closing a tab closes its session.
 * The core keeps each session apart by id, per client (electron/core/terminal/service.ts).
 */
export function TerminalView({ active, request }: Pick<FeatureProps, 'active' | 'request'>) {
  const { client } = useApp();
  const [hosts, setHosts] = useState<Host[]>([]);
  const [hostsError, setHostsError] = useState<AirlockErrorShape | null>(null);
  const [selected, setSelected] = useState('');
  const [tabs, setTabs] = useState<Tab[]>([]);
  const [current, setCurrent] = useState<string | null>(null);
  const [states, setStates] = useState<Record<string, TabState>>({});
  const handles = useRef(new Map<string, TerminalTabHandle>());
  const counter = useRef(0);
  const tabRefs = useRef(new Map<string, HTMLButtonElement>());

  const loadHosts = useCallback(async () => {
    const r = await client.hosts.list({});
    if (!r.ok) return setHostsError(r.error);
    setHostsError(null);
    const usable = r.value.filter((h) => h.fingerprint !== null);
    setHosts(usable);
    setSelected((cur) => cur || usable[0]?.name || '');
  }, [client]);

  useEffect(() => {
    if (active) void loadHosts();
  }, [active, loadHosts]);

  const openTab = useCallback((host: string) => {
    const key = `t${++counter.current}`;
    setTabs((cur) => [...cur, { key, host }]);
    setCurrent(key);
  }, []);

  // "Terminal" on a host row, or "New terminal to <host>" in the palette: a new tab to that host.
  useEffect(() => {
    if (!request) return;
    setSelected(request.name);
    openTab(request.name);
  }, [request, openTab]);

  const onState = useCallback((key: string, s: TabState) => setStates((cur) => ({ ...cur, [key]: s })), []);

  const tabsRef = useRef(tabs);
  tabsRef.current = tabs;
  const closeTab = useCallback(async (key: string) => {
    await handles.current.get(key)?.close();
    const cur = tabsRef.current;
    const i = cur.findIndex((t) => t.key === key);
    const next = cur.filter((t) => t.key !== key);
    setTabs(next);
    // The neighbour takes its place, as in a browser's tab strip.
    setCurrent((c) => (c === key ? (next[Math.min(i, next.length - 1)]?.key ?? null) : c));
    setStates((s) => {
      const { [key]: _gone, ...rest } = s;
      return rest;
    });
  }, []);

  const select = useCallback((key: string | undefined, focusTab = false) => {
    if (!key) return;
    setCurrent(key);
    if (focusTab) tabRefs.current.get(key)?.focus();
  }, []);
  const step = (delta: number) => {
    if (tabs.length < 2) return;
    const i = tabs.findIndex((t) => t.key === current);
    select(tabs[(i + delta + tabs.length) % tabs.length]?.key);
  };

  useCommand('terminal.next', tabs.length > 1 ? () => step(1) : null);
  useCommand('terminal.previous', tabs.length > 1 ? () => step(-1) : null);
  useCommand('terminal.closeTab', current ? () => void closeTab(current) : null);

  // Alt+1…9 while the terminal is shown, before xterm (capture) so the shell does not get them.
  useEffect(() => {
    if (!active) return;
    const onKey = (e: KeyboardEvent) => {
      if (document.getElementById('root')?.inert) return;
      const n = TAB_KEYS.findIndex((k) => matchesKeys(k, e));
      if (n < 0) return;
      e.preventDefault();
      e.stopPropagation();
      select(tabsRef.current[n]?.key);
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [active, select]);

  const selectedHost = hosts.find((h) => h.name === selected);
  const hostOf = (name: string) => hosts.find((h) => h.name === name);

  return (
    <section className="view terminal-view" data-testid="terminal-view">
      <div className="toolbar">
        <label className="inline-field">
          <span>Host</span>
          <select value={selected} onChange={(e) => setSelected(e.target.value)} data-testid="terminal-host">
            {hosts.length === 0 ? <option value="">No enrolled hosts</option> : null}
            {hosts.map((h) => (
              <option key={h.name} value={h.name}>
                {h.name} ({h.user}@{h.address}:{h.port})
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="primary" onClick={() => openTab(selected)} disabled={!selected} data-testid="terminal-open" title="Open a session to this host in a new tab">
          Open
        </button>
      </div>
      <div className="fp-strip fp-strip-select" data-testid="terminal-fingerprint">
        {selectedHost ? (
          <>
            <span className="muted">Pinned host key of {selectedHost.name}:</span> <span className="mono">{selectedHost.fingerprint ?? '—'}</span>
            {selectedHost.keyType ? <span className="muted"> ({safeLine(selectedHost.keyType)})</span> : null}
          </>
        ) : (
          <span className="muted">Only hosts with a confirmed host key can be opened.</span>
        )}
      </div>
      <ErrorLine error={hostsError} testId="terminal-hosts-error" />
      {tabs.length ? (
        <div className="term-tabs" role="tablist" aria-label="Terminal sessions" data-testid="terminal-tabs">
          {tabs.map((t, i) => {
            const st = states[t.key];
            const fp = st?.fingerprint ?? hostOf(t.host)?.fingerprint ?? null;
            const on = t.key === current;
            return (
              // The strip holds only tabs (WAI-ARIA tablist): the wrapper is presentation, and the ×
              // is a mouse affordance; from the keyboard, Delete on a tab (or the palette's "Close
              // terminal tab") closes it.
              <div key={t.key} role="presentation" className={on ? 'term-tab term-tab-active' : 'term-tab'} data-testid="terminal-tab" data-host={t.host} data-active={on} data-phase={st?.phase ?? 'idle'}>
                <button
                  type="button"
                  role="tab"
                  id={`term-tab-${t.key}`}
                  aria-selected={on}
                  aria-controls={`term-panel-${t.key}`}
                  aria-keyshortcuts="Delete"
                  tabIndex={on ? 0 : -1}
                  title={`${t.host} — host key ${fp ?? 'not pinned'}${i < 9 ? ` (${TAB_KEYS[i]})` : ''}; Delete closes the tab`}
                  ref={(el) => {
                    if (el) tabRefs.current.set(t.key, el);
                    else tabRefs.current.delete(t.key);
                  }}
                  onClick={() => select(t.key)}
                  onKeyDown={(e) => {
                    // The tab strip's own keys (WAI-ARIA tabs pattern): arrows move, Delete closes.
                    if (e.key === 'Delete') {
                      e.preventDefault();
                      void closeTab(t.key);
                      return;
                    }
                    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
                    e.preventDefault();
                    select(tabs[(i + (e.key === 'ArrowRight' ? 1 : -1) + tabs.length) % tabs.length]?.key, true);
                  }}
                  data-testid="terminal-tab-select"
                >
                  <span className={`term-dot term-dot-${st?.phase ?? 'idle'}`} aria-hidden="true" />
                  <span className="term-tab-host">{t.host}</span> <span className="term-tab-fp mono" data-testid="terminal-tab-fp">{fp ? shortFingerprint(fp) : 'no pinned key'}</span>
                </button>
                <button type="button" className="icon-button term-tab-close" tabIndex={-1} aria-hidden="true" title={`Close the terminal tab of ${t.host} (Delete)`} onClick={() => void closeTab(t.key)} data-testid="terminal-tab-close">
                  ×
                </button>
              </div>
            );
          })}
        </div>
      ) : null}
      {tabs.map((t) => {
        const h = hostOf(t.host);
        return (
          <TerminalTab
            key={t.key}
            ref={(el) => {
              if (el) handles.current.set(t.key, el);
              else handles.current.delete(t.key);
            }}
            tabKey={t.key}
            host={t.host}
            pinned={h?.fingerprint ?? null}
            keyType={h?.keyType ?? null}
            label={t.host}
            visible={active && t.key === current}
            onState={onState}
          />
        );
      })}
      {tabs.length === 0 ? (
        <div className="term-frame term-frame-idle term-empty">
          <div className="term-placeholder">Choose a host and press Open. Each session opens in its own tab.</div>
        </div>
      ) : null}
      <div className="hint">
        Copy: select, then Ctrl+Shift+C or Copy. Paste: Ctrl+Shift+V. Tabs: Alt+1…9, Ctrl+PageUp/PageDown (Alt+PageUp/PageDown in a browser). The session is
        audited when it opens and closes; keystrokes are not recorded.
      </div>
    </section>
  );
}
