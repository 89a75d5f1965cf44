import './terminal.css';
import { useCallback, useEffect, useRef, useState } from 'react';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import type { Host } from '../../../shared/contract/hosts';
import type { EventPayload } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { copyText } from '../../components/clipboard';
import { CopyButton } from '../../components/CopyButton';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';
import { createStyleMirror, installSpanStyleShim, type StyleMirror } from './cspStyles';

type Phase = 'idle' | 'opening' | 'open' | 'closed';
type DataEvt = EventPayload<'terminal:data'>;
type ExitEvt = EventPayload<'terminal:exit'>;
type Pending = { kind: 'data'; p: DataEvt } | { kind: 'exit'; p: ExitEvt };

/** The contract allows 64 KiB per input call; pastes larger than that are split. */
const INPUT_CHUNK = 32 * 1024;

const THEME = {
  background: '#0f1419',
  foreground: '#d6dde6',
  cursor: '#e6edf3',
  cursorAccent: '#0f1419',
  selectionBackground: '#2f5d8a',
  black: '#1c2128',
  red: '#f47067',
  green: '#8ddb8c',
  yellow: '#e0b341',
  blue: '#6cb6ff',
  magenta: '#dcbdfb',
  cyan: '#76e3ea',
  white: '#cdd9e5',
  brightBlack: '#636e7b',
  brightRed: '#ff938a',
  brightGreen: '#b4f1b4',
  brightYellow: '#f2cc60',
  brightBlue: '#96d0ff',
  brightMagenta: '#eedcff',
  brightCyan: '#b3f0ff',
  brightWhite: '#f0f6fc',
};

export function TerminalView({ active, request }: { active: boolean; request: { name: string; nonce: number } | null }) {
  const { api, client, onBeforeLogout } = useApp();
  const [hosts, setHosts] = useState<Host[]>([]);
  const [hostsError, setHostsError] = useState<AirlockErrorShape | null>(null);
  const [selected, setSelected] = useState('');
  const [phase, setPhase] = useState<Phase>('idle');
  const [session, setSession] = useState<{ id: string; host: string; fingerprint: string } | null>(null);
  const [exitInfo, setExitInfo] = useState<string | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [autoOpen, setAutoOpen] = useState(false);

  const boxRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const idRef = useRef<string | null>(null);
  const phaseRef = useRef<Phase>('idle');
  const pendingRef = useRef<Pending[]>([]);
  const outRef = useRef({ buf: '', sending: false });
  const resizeTimer = useRef<number | null>(null);
  const mirrorRef = useRef<StyleMirror | null>(null);

  const setPhaseBoth = (p: Phase) => {
    phaseRef.current = p;
    setPhase(p);
  };

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

  const handleExit = useCallback((p: ExitEvt) => {
    if (p.id !== idRef.current) return;
    idRef.current = null;
    setPhaseBoth('closed');
    const why = [p.code !== null ? `exit code ${p.code}` : null, p.reason ? safeLine(p.reason) : null].filter(Boolean).join(', ');
    setExitInfo(why || 'closed');
    termRef.current?.write(`\r\n\x1b[2m[session closed${why ? `: ${why}` : ''}]\x1b[0m\r\n`);
  }, []);

  // Events are subscribed for the life of the view; bytes that arrive before
  // terminal:open has returned the id are held and replayed once it is known.
  useEffect(() => {
    const offData = client.on('terminal:data', (p) => {
      if (p.id === idRef.current) termRef.current?.write(p.data);
      else if (phaseRef.current === 'opening') pendingRef.current.push({ kind: 'data', p });
    });
    const offExit = client.on('terminal:exit', (p) => {
      if (p.id === idRef.current) handleExit(p);
      else if (phaseRef.current === 'opening') pendingRef.current.push({ kind: 'exit', p });
    });
    return () => {
      offData();
      offExit();
    };
  }, [client, handleExit]);

  // Keystrokes go out strictly in order: one call in flight, the rest coalesced.
  const pump = useCallback(async () => {
    const out = outRef.current;
    if (out.sending) return;
    out.sending = true;
    try {
      while (out.buf && idRef.current) {
        const chunk = out.buf.slice(0, INPUT_CHUNK);
        out.buf = out.buf.slice(chunk.length);
        const r = await client.terminal.input({ id: idRef.current, data: chunk });
        if (!r.ok) {
          setError(r.error);
          if (r.error.code === 'NOT_FOUND') {
            idRef.current = null;
            setPhaseBoth('closed');
            setExitInfo('the session is gone');
          }
          out.buf = '';
        }
      }
    } finally {
      out.sending = false;
    }
  }, [client]);

  const send = useCallback(
    (data: string) => {
      if (!idRef.current) return;
      outRef.current.buf += data;
      void pump();
    },
    [pump],
  );

  /** The selection to copy, or null (with a note saying so) when there is none. */
  const selection = useCallback((): string | null => {
    const sel = termRef.current?.getSelection() ?? '';
    if (!sel) setNote('Select text in the terminal first.');
    return sel || null;
  }, []);
  const copied = useCallback((ok: boolean, sel: string) => setNote(ok ? `Copied ${sel.length} characters.` : 'Copy failed: select the text and copy it.'), []);
  const copySelection = useCallback(async () => {
    const sel = selection();
    if (sel !== null) copied(await copyText(sel), sel);
  }, [selection, copied]);

  const ensureTerminal = useCallback((): Terminal | null => {
    if (termRef.current) return termRef.current;
    const box = boxRef.current;
    if (!box) return null;
    const term = new Terminal({
      fontFamily: "'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
      fontSize: 13,
      cursorBlink: true,
      scrollback: 5000,
      allowProposedApi: false,
      theme: THEME,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    const mirror = mirrorRef.current;
    if (mirror) mirror.captureDuring(() => term.open(box));
    else term.open(box);
    term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.code === 'KeyC') {
        void copySelection();
        return false;
      }
      if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.code === 'KeyV') {
        if (navigator.clipboard?.readText) {
          void navigator.clipboard.readText().then(
            (t) => term.paste(t),
            () => setNote('Paste failed: clipboard read is not allowed here; use the browser paste (Ctrl+V / middle click).'),
          );
          return false;
        }
      }
      return true;
    });
    term.onData((d) => send(d));
    term.onResize(({ cols, rows }) => {
      if (!idRef.current) return;
      if (resizeTimer.current !== null) window.clearTimeout(resizeTimer.current);
      resizeTimer.current = window.setTimeout(() => {
        resizeTimer.current = null;
        const id = idRef.current;
        if (id) void client.terminal.resize({ id, cols: Math.max(2, cols), rows: Math.max(2, rows) });
      }, 120);
    });
    termRef.current = term;
    fitRef.current = fit;
    return term;
  }, [client, copySelection, send]);

  // Styles xterm injects are re-applied through CSSOM (see cspStyles.ts).
  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const mirror = createStyleMirror(box);
    mirrorRef.current = mirror;
    const unshim = installSpanStyleShim();
    return () => {
      unshim();
      mirror.dispose();
      mirrorRef.current = null;
    };
  }, []);

  // Fit on container size changes and when the view becomes visible again.
  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const ro = new ResizeObserver(() => {
      if (!active || !termRef.current) return;
      try {
        fitRef.current?.fit();
      } catch {
        // not laid out yet
      }
    });
    ro.observe(box);
    return () => ro.disconnect();
  }, [active]);

  const close = useCallback(async () => {
    const id = idRef.current;
    if (!id) return;
    const r = await client.terminal.close({ id });
    if (!r.ok && r.error.code !== 'NOT_FOUND') {
      setError(r.error);
      return;
    }
    if (idRef.current === id) {
      idRef.current = null;
      setPhaseBoth('closed');
      setExitInfo('closed by you');
      termRef.current?.write('\r\n\x1b[2m[session closed]\x1b[0m\r\n');
    }
  }, [client]);

  // Close an open terminal before sign-out and when the console goes away.
  useEffect(() => onBeforeLogout(close), [onBeforeLogout, close]);
  useEffect(
    () => () => {
      const id = idRef.current;
      idRef.current = null;
      if (id) void client.terminal.close({ id });
      termRef.current?.dispose();
      termRef.current = null;
    },
    [client],
  );

  const open = useCallback(async () => {
    if (!selected || phaseRef.current === 'opening' || phaseRef.current === 'open') return;
    const term = ensureTerminal();
    if (!term) return;
    setError(null);
    setNote(null);
    setExitInfo(null);
    term.reset();
    try {
      fitRef.current?.fit();
    } catch {
      // keep the default size
    }
    pendingRef.current = [];
    setPhaseBoth('opening');
    await api.eventsReady();
    const r = await client.terminal.open({ host: selected, cols: Math.max(2, term.cols), rows: Math.max(2, term.rows) });
    if (!r.ok) {
      setPhaseBoth('idle');
      setError(r.error);
      pendingRef.current = [];
      return;
    }
    const { id, fingerprint } = r.value;
    idRef.current = id;
    setSession({ id, host: selected, fingerprint });
    setPhaseBoth('open');
    const pending = pendingRef.current;
    pendingRef.current = [];
    for (const ev of pending) {
      if (ev.p.id !== id) continue;
      if (ev.kind === 'data') term.write(ev.p.data);
      else handleExit(ev.p);
    }
    // The size may have changed while we were connecting.
    if (idRef.current === id) {
      try {
        fitRef.current?.fit();
      } catch {
        // ignore
      }
      term.focus();
    }
  }, [api, client, ensureTerminal, handleExit, selected]);

  // "Terminal" on a host row: preselect it and open when nothing is running.
  useEffect(() => {
    if (!request) return;
    setSelected(request.name);
    setAutoOpen(true);
  }, [request]);
  useEffect(() => {
    if (!autoOpen || !active || !selected || !hosts.some((h) => h.name === selected)) return;
    setAutoOpen(false);
    if (phaseRef.current === 'open' || phaseRef.current === 'opening') {
      if (session && session.host !== selected) setNote(`A session to ${session.host} is open; close it to open ${selected}.`);
      return;
    }
    void open();
  }, [autoOpen, active, selected, hosts, open, session]);

  useEffect(() => {
    if (active && termRef.current) {
      try {
        fitRef.current?.fit();
      } catch {
        // ignore
      }
    }
  }, [active]);

  const busy = phase === 'opening' || phase === 'open';
  const selectedHost = hosts.find((h) => h.name === selected);
  const shownFingerprint = busy && session ? session.fingerprint : (selectedHost?.fingerprint ?? null);

  return (
    <section className="view terminal-view" data-testid="terminal-view">
      <div className="toolbar">
        <label className="inline-field">
          <span>Host</span>
          <select value={selected} onChange={(e) => setSelected(e.target.value)} disabled={busy} data-testid="terminal-host">
            {hosts.length === 0 ? <option value="">No enrolled hosts</option> : null}
            {hosts.map((h) => (
              <option key={h.name} value={h.name}>
                {h.name} ({h.user}@{h.address}:{h.port})
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="primary" onClick={() => void open()} disabled={!selected || busy} data-testid="terminal-open">
          {phase === 'opening' ? 'Connecting…' : 'Open'}
        </button>
        <button type="button" onClick={() => void close()} disabled={phase !== 'open'} data-testid="terminal-close">
          Close
        </button>
        <CopyButton text={selection} onResult={copied} disabled={!termRef.current} testId="terminal-copy" title="Copy the selection (Ctrl+Shift+C)" />
        <div className="toolbar-spacer" />
        <span className={`term-state term-state-${phase}`} data-testid="terminal-status" data-phase={phase}>
          {phase === 'idle' ? 'not connected' : phase === 'opening' ? 'connecting…' : phase === 'open' ? `connected to ${session?.host ?? ''}` : `closed${exitInfo ? ` (${exitInfo})` : ''}`}
        </span>
      </div>
      <div className="fp-strip" data-testid="terminal-fingerprint">
        {selectedHost || session ? (
          <>
            <span className="muted">{busy && session ? 'Host key verified on connect:' : 'Pinned host key:'}</span>{' '}
            <span className="mono">{shownFingerprint ?? '—'}</span>
            {selectedHost?.keyType ? <span className="muted"> ({safeLine(selectedHost.keyType)})</span> : null}
          </>
        ) : (
          <span className="muted">Only hosts with a confirmed host key can be opened.</span>
        )}
      </div>
      <ErrorLine error={hostsError} testId="terminal-hosts-error" />
      <ErrorLine error={error} testId="terminal-error" />
      {note ? (
        <div className="info-line" data-testid="terminal-note">
          {note}
        </div>
      ) : null}
      <div className={`term-frame term-frame-${phase}`}>
        <div className="term-box" ref={boxRef} data-testid="terminal-screen" />
        {phase === 'idle' && !termRef.current ? <div className="term-placeholder">Choose a host and press Open.</div> : null}
      </div>
      <div className="hint">
        Copy: select, then Ctrl+Shift+C or Copy. Paste: Ctrl+Shift+V. The session is audited when it opens and closes;
        keystrokes are not recorded.
      </div>
    </section>
  );
}
