import './palette.css';
import { useId, useMemo, useRef, useState } from 'react';
import { Modal } from '../../components/Modal';
import { filterEntries, moveIndex, type PaletteEntry } from './model';

/** A shortcut listed in the palette's "Keyboard shortcuts" section. */
export interface ShortcutLine {
  keys: string;
  what: string;
}

/**
 * The command palette (Ctrl+K / Cmd+K): a filter, the entries that match it (views, then actions),
 * and every keyboard shortcut. Arrow keys move, Enter runs, Esc closes (the Modal returns focus to
 * what had it). The input is an ARIA combobox whose active option is `aria-activedescendant`, so
 * focus stays in the input while the arrows move.
 */
export function CommandPalette({ entries, shortcuts, onClose }: { entries: readonly PaletteEntry[]; shortcuts: readonly ShortcutLine[]; onClose: () => void }) {
  const [query, setQuery] = useState('');
  const [index, setIndex] = useState(0);
  const listId = useId();
  const shown = useMemo(() => filterEntries(entries, query), [entries, query]);
  const active = Math.min(index, Math.max(0, shown.length - 1));
  const listRef = useRef<HTMLUListElement>(null);
  const optionId = (i: number) => `${listId}-o${i}`;

  const run = (e: PaletteEntry | undefined) => {
    if (!e) return;
    // Close first, so the dialog's focus returns before the action opens a dialog or moves focus.
    onClose();
    e.run();
  };

  const move = (delta: number) => {
    const next = moveIndex(active, delta, shown.length);
    setIndex(next);
    listRef.current?.querySelector(`#${CSS.escape(optionId(next))}`)?.scrollIntoView({ block: 'nearest' });
  };

  return (
    <Modal title="Command palette" onClose={onClose} testId="palette" wide>
      <input
        type="text"
        className="palette-input"
        role="combobox"
        aria-label="Type a view or an action"
        aria-expanded="true"
        aria-controls={listId}
        aria-autocomplete="list"
        aria-activedescendant={shown.length ? optionId(active) : undefined}
        placeholder="Type a view or an action…"
        value={query}
        data-autofocus
        data-testid="palette-input"
        onChange={(e) => {
          setQuery(e.target.value);
          setIndex(0);
        }}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
            e.preventDefault();
            move(e.key === 'ArrowDown' ? 1 : -1);
          } else if (e.key === 'Home' || e.key === 'End') {
            if (!shown.length) return;
            e.preventDefault();
            move((e.key === 'Home' ? 0 : shown.length - 1) - active);
          } else if (e.key === 'Enter') {
            e.preventDefault();
            run(shown[active]);
          }
        }}
      />
      <ul className="palette-list" role="listbox" id={listId} aria-label="Commands" ref={listRef} data-testid="palette-list">
        {shown.map((e, i) => (
          <li
            key={e.key}
            id={optionId(i)}
            role="option"
            aria-selected={i === active}
            className={i === active ? 'palette-item palette-item-active' : 'palette-item'}
            data-testid="palette-item"
            data-command={e.key}
            onMouseMove={() => i !== active && setIndex(i)}
            onClick={() => run(e)}
          >
            <span className="palette-group">{e.group === 'Views' ? 'View' : 'Action'}</span>
            <span className="palette-label">
              {e.label}
              {e.detail ? <span className="palette-detail muted"> {e.detail}</span> : null}
            </span>
            {e.keys ? <kbd className="palette-keys">{e.keys}</kbd> : null}
          </li>
        ))}
      </ul>
      {shown.length === 0 ? (
        <div className="muted palette-empty" data-testid="palette-empty">
          Nothing matches “{query}”.
        </div>
      ) : null}
      <section className="palette-shortcuts" aria-label="Keyboard shortcuts" data-testid="palette-shortcuts">
        <h3>Keyboard shortcuts</h3>
        <dl>
          {shortcuts.map((s) => (
            <div key={s.keys + s.what} className="palette-shortcut">
              <dt>
                <kbd>{s.keys}</kbd>
              </dt>
              <dd>{s.what}</dd>
            </div>
          ))}
        </dl>
      </section>
    </Modal>
  );
}
