import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { UserView } from '../../../shared/contract/session';
import { Roles, type Role } from '../../../shared/domain/roles';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { formatTime } from '../../components/format';
import { useApp } from '../../context';

const ROLE_HELP: Record<Role, string> = {
  admin: 'enrol and manage hosts, terminals, users',
  officer: 'keys and approvals',
  auditor: 'read the audit trail, read-only',
};

export function UsersView() {
  const { client, can } = useApp();
  const [users, setUsers] = useState<UserView[] | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState<Set<Role>>(new Set(['auditor']));
  const [busy, setBusy] = useState(false);
  const [createError, setCreateError] = useState<AirlockErrorShape | null>(null);
  const [created, setCreated] = useState<string | null>(null);

  const load = useCallback(async () => {
    const r = await client.users.list({});
    if (r.ok) {
      setUsers(r.value);
      setError(null);
    } else setError(r.error);
  }, [client]);

  useEffect(() => {
    void load();
  }, [load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setCreateError(null);
    setCreated(null);
    const r = await client.users.create({ name, password, roles: Roles.filter((x) => roles.has(x)) });
    setBusy(false);
    if (!r.ok) return setCreateError(r.error);
    setCreated(`Created ${r.value.name}.`);
    setName('');
    setPassword('');
    await load();
  }

  const ready = name !== '' && password.length >= 12 && roles.size > 0;

  return (
    <section className="view" data-testid="users-view">
      <ErrorLine error={error} testId="users-error" />
      <div className="table-wrap">
        <table className="grid" data-testid="users-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Roles</th>
              <th>Created</th>
              <th>State</th>
            </tr>
          </thead>
          <tbody>
            {(users ?? []).map((u) => (
              <tr key={u.name} data-testid={`user-row-${u.name}`}>
                <td className="strong">{u.name}</td>
                <td>
                  {u.roles.map((r) => (
                    <span key={r} className={`role role-${r}`}>
                      {r}
                    </span>
                  ))}
                </td>
                <td>{formatTime(u.createdAt)}</td>
                <td>{u.disabled ? <span className="badge badge-error">disabled</span> : 'active'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {can('users:create') ? (
        <form className="card form-card" onSubmit={create} data-testid="user-create-form">
          <h3>Create user</h3>
          <div className="form-row">
            <label className="field">
              <span>Name</span>
              <input value={name} onChange={(e) => setName(e.target.value)} maxLength={64} autoComplete="off" data-testid="user-create-name" />
            </label>
            <label className="field">
              <span>Initial password (≥ 12 characters)</span>
              <input
                type="password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                autoComplete="new-password"
                data-testid="user-create-password"
              />
            </label>
          </div>
          <fieldset className="roles-field">
            <legend>Roles</legend>
            {Roles.map((r) => (
              <label key={r} className="check">
                <input
                  type="checkbox"
                  checked={roles.has(r)}
                  onChange={(e) =>
                    setRoles((cur) => {
                      const n = new Set(cur);
                      if (e.target.checked) n.add(r);
                      else n.delete(r);
                      return n;
                    })
                  }
                  data-testid={`user-create-role-${r}`}
                />
                <span className="role-name">{r}</span> <span className="muted">— {ROLE_HELP[r]}</span>
              </label>
            ))}
          </fieldset>
          <ErrorLine error={createError} testId="user-create-error" />
          {created ? <div className="info-line">{created}</div> : null}
          <button type="submit" className="primary" disabled={!ready || busy} data-testid="user-create-submit">
            {busy ? 'Creating…' : 'Create user'}
          </button>
        </form>
      ) : null}
    </section>
  );
}
