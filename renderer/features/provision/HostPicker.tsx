import { useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { useApp } from '../../context';
import { StatusBadge } from '../hosts/HostsView';
import { labelsOf, parseLabels, resolveSelection, type HostSelection } from './model';

/**
 * Which hosts: a checkbox list of enrolled hosts, "all", or a label. Hosts whose key is not
 * confirmed cannot be provisioned (the core refuses them) and are shown disabled. Administrators
 * can set a host's labels here (hosts:setLabels).
 */
export function HostPicker({
  hosts,
  value,
  onChange,
  onHostsChanged,
  prefix,
}: {
  hosts: Host[];
  value: HostSelection;
  onChange: (v: HostSelection) => void;
  onHostsChanged: () => void;
  /** test id prefix: one picker per panel. */
  prefix: string;
}) {
  const { can } = useApp();
  const labels = labelsOf(hosts);
  const resolved = resolveSelection(value, hosts);
  const usable = hosts.filter((h) => h.fingerprint !== null);
  const allChecked = usable.length > 0 && usable.every((h) => value.names.includes(h.name));
  const toggle = (name: string, on: boolean) => {
    const names = on ? [...new Set([...value.names, name])] : value.names.filter((n) => n !== name);
    onChange({ ...value, mode: 'names', names });
  };
  return (
    <div data-testid={`${prefix}-hosts`}>
      <div className="prov-host-modes" role="radiogroup" aria-label="Which hosts">
        <label>
          <input type="radio" name={`${prefix}-mode`} checked={value.mode === 'names'} onChange={() => onChange({ ...value, mode: 'names' })} data-testid={`${prefix}-mode-names`} />
          Chosen hosts
        </label>
        <label>
          <input type="radio" name={`${prefix}-mode`} checked={value.mode === 'all'} onChange={() => onChange({ ...value, mode: 'all' })} data-testid={`${prefix}-mode-all`} />
          All hosts
        </label>
        <label>
          <input
            type="radio"
            name={`${prefix}-mode`}
            checked={value.mode === 'label'}
            disabled={labels.length === 0}
            onChange={() => onChange({ ...value, mode: 'label', label: value.label || labels[0] || '' })}
            data-testid={`${prefix}-mode-label`}
          />
          Hosts labelled
        </label>
        <select
          value={value.label}
          disabled={labels.length === 0}
          onChange={(e) => onChange({ ...value, mode: 'label', label: e.target.value })}
          data-testid={`${prefix}-label`}
          aria-label="Label"
        >
          {labels.length === 0 ? <option value="">no labels yet</option> : null}
          {labels.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
        </select>
      </div>
      {value.mode === 'names' ? (
        <div className="prov-host-list" data-testid={`${prefix}-host-list`}>
          {hosts.length === 0 ? <div className="muted">No hosts enrolled yet (Hosts → Enrol host…).</div> : null}
          {usable.length > 1 ? (
            <label className="check muted">
              <input
                type="checkbox"
                checked={allChecked}
                onChange={(e) => onChange({ ...value, mode: 'names', names: e.target.checked ? usable.map((h) => h.name) : [] })}
                data-testid={`${prefix}-check-every`}
              />
              every host listed
            </label>
          ) : null}
          {hosts.map((h) => (
            <HostLine key={h.name} host={h} checked={value.names.includes(h.name)} onToggle={toggle} prefix={prefix} canLabel={can('hosts:setLabels')} onHostsChanged={onHostsChanged} />
          ))}
        </div>
      ) : (
        <div className="hint" data-testid={`${prefix}-resolved`}>
          {resolved.length ? `${resolved.length} host(s) now: ${resolved.join(', ')}` : 'No enrolled host matches.'} The core resolves the selector when the run starts.
        </div>
      )}
    </div>
  );
}

function HostLine({
  host,
  checked,
  onToggle,
  prefix,
  canLabel,
  onHostsChanged,
}: {
  host: Host;
  checked: boolean;
  onToggle: (name: string, on: boolean) => void;
  prefix: string;
  canLabel: boolean;
  onHostsChanged: () => void;
}) {
  const { client } = useApp();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState('');
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [busy, setBusy] = useState(false);
  const pinned = host.fingerprint !== null;

  async function save() {
    setBusy(true);
    setError(null);
    const r = await client.hosts.setLabels({ name: host.name, labels: parseLabels(text) });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setEditing(false);
    onHostsChanged();
  }

  return (
    <div className="check" data-testid={`${prefix}-pick-${host.name}`}>
      <input
        type="checkbox"
        checked={checked && pinned}
        disabled={!pinned}
        onChange={(e) => onToggle(host.name, e.target.checked)}
        aria-label={`Select ${host.name}`}
        data-testid={`${prefix}-check-${host.name}`}
      />
      <span className="strong">{host.name}</span>
      <span className="prov-host-addr mono">
        {host.user}@{host.address}:{host.port}
      </span>
      <StatusBadge status={host.status} />
      {!pinned ? <span className="muted">confirm its key first</span> : null}
      {host.labels.map((l) => (
        <span key={l} className="prov-label" data-testid={`${prefix}-host-label-${host.name}`}>
          {l}
        </span>
      ))}
      {canLabel && !editing ? (
        <button
          type="button"
          className="small link-button"
          onClick={() => {
            setText(host.labels.join(', '));
            setError(null);
            setEditing(true);
          }}
          data-testid={`${prefix}-labels-edit-${host.name}`}
        >
          labels…
        </button>
      ) : null}
      {editing ? (
        <span className="prov-label-edit">
          <input
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="gpu, rack-1"
            aria-label={`Labels of ${host.name}`}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault();
                void save();
              }
            }}
            data-testid={`${prefix}-labels-input-${host.name}`}
          />
          <button type="button" className="small primary" disabled={busy} onClick={() => void save()} data-testid={`${prefix}-labels-save-${host.name}`}>
            Save
          </button>
          <button type="button" className="small" disabled={busy} onClick={() => setEditing(false)}>
            Cancel
          </button>
        </span>
      ) : null}
      <ErrorLine error={error} testId={`${prefix}-labels-error-${host.name}`} />
    </div>
  );
}
