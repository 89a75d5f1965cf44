import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { UserView } from '../../../shared/contract/users';
import { Roles, type Role } from '../../../shared/domain/roles';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { DASH } from '../../components/format';
import { Time } from '../../components/Time';
import { passwordProblem } from '../../../shared/domain/password-policy';
import { Modal } from '../../components/Modal';
import { useApp } from '../../context';
import { RoleChecks } from '../../components/RoleChecks';

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
  // No role is ticked until the admin chooses one: a default would grant a role nobody decided on.
  const [roles, setRoles] = useState<Set<Role>>(() => new Set());
  const [mustChange, setMustChange] = useState(true);
  const [action, setAction] = useState<UserAction | null>(null);
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
    const r = await client.users.create({ name, password, roles: Roles.filter((x) => roles.has(x)), mustChangePassword: mustChange });
    setBusy(false);
    if (!r.ok) return setCreateError(r.error);
    setCreated(`Created ${r.value.name}.`);
    // The form starts over: the next user's roles are chosen afresh, not inherited from this one.
    setName('');
    setPassword('');
    setRoles(new Set());
    setMustChange(true);
    await load();
  }

  const problem = password ? passwordProblem(password, name) : null;
  const ready = name !== '' && password !== '' && !problem && roles.size > 0;

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
              <th>Created by</th>
              <th>State</th>
              <th>TOTP</th>
              <th>Last sign-in</th>
              <th>Locked until</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(users ?? []).map((u) => (
              <tr key={u.name} data-testid={`user-row-${u.name}`} data-disabled={u.disabled}>
                <td className="strong">{u.name}</td>
                <td data-testid={`user-roles-${u.name}`}>
                  {u.roles.map((r) => (
                    <span key={r} className={`role role-${r}`}>
                      {r}
                    </span>
                  ))}
                </td>
                <td className="nowrap">
                  <Time iso={u.createdAt} testId={`user-created-${u.name}`} />
                </td>
                <td>{u.createdBy ?? DASH}</td>
                <td>
                  {u.disabled ? <span className="badge badge-error">disabled</span> : 'active'}
                  {u.mustChangePassword ? <span className="badge badge-warn" title="must choose a password at next sign-in"> new password</span> : null}
                </td>
                <td>{u.totpEnrolled ? 'enrolled' : DASH}</td>
                <td className="nowrap">
                  <Time iso={u.lastLoginAt} testId={`user-last-login-${u.name}`} />
                </td>
                <td className="nowrap">
                  {u.lockedUntil ? (
                    <span className="badge badge-error">
                      <Time iso={u.lockedUntil} testId={`user-locked-until-${u.name}`} />
                    </span>
                  ) : (
                    DASH
                  )}
                </td>
                <td className="col-actions">
                  <select
                    value=""
                    aria-label={`Actions for ${u.name}`}
                    data-testid={`user-action-${u.name}`}
                    onChange={(e) => {
                      const kind = e.target.value as UserAction['kind'];
                      if (kind) setAction({ kind, user: u });
                    }}
                  >
                    <option value="">Actions…</option>
                    <option value="roles">Set roles…</option>
                    {u.disabled ? <option value="enable">Enable…</option> : <option value="disable">Disable…</option>}
                    <option value="resetPassword">Reset password…</option>
                    {u.totpEnrolled ? <option value="resetTotp">Reset TOTP…</option> : null}
                    {u.lockedUntil ? <option value="unlock">Unlock</option> : null}
                    <option value="remove">Remove…</option>
                  </select>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {action ? (
        <UserActionDialog
          action={action}
          onClose={() => setAction(null)}
          onDone={() => {
            setAction(null);
            void load();
          }}
        />
      ) : null}

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
          <RoleChecks legend="Roles" options={Roles} roles={roles} setRoles={setRoles} testIdPrefix="user-create-role" help={ROLE_HELP} />
          <label className="check">
            <input type="checkbox" checked={mustChange} onChange={(e) => setMustChange(e.target.checked)} data-testid="user-create-must-change" />
            <span>Must change password at first sign-in</span>
          </label>
          {problem ? <div className="hint warn-line" data-testid="user-create-hint">{problem}</div> : null}
          {name !== '' && password !== '' && !problem && roles.size === 0 ? (
            <div className="hint" data-testid="user-create-roles-hint">
              Choose at least one role.
            </div>
          ) : null}
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

type UserAction = { kind: 'roles' | 'enable' | 'disable' | 'resetPassword' | 'resetTotp' | 'unlock' | 'remove'; user: UserView };

const TITLES: Record<UserAction['kind'], string> = {
  roles: 'Set roles',
  enable: 'Enable user',
  disable: 'Disable user',
  resetPassword: 'Reset password',
  resetTotp: 'Reset TOTP',
  unlock: 'Unlock sign-in',
  remove: 'Remove user',
};

/** One dialog for every per-user action: destructive ones say what happens and need a click to confirm. */
function UserActionDialog({ action, onClose, onDone }: { action: UserAction; onClose: () => void; onDone: () => void }) {
  const { client } = useApp();
  const { kind, user } = action;
  const [roles, setRoles] = useState<Set<Role>>(new Set(user.roles));
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const needsPassword = kind === 'enable' || kind === 'resetPassword';
  const problem = needsPassword && password ? passwordProblem(password, user.name) : null;
  const ready = needsPassword ? password !== '' && !problem : kind === 'roles' ? roles.size > 0 : true;

  async function run(e: FormEvent) {
    e.preventDefault();
    if (busy || !ready) return;
    setBusy(true);
    setError(null);
    const name = user.name;
    const r =
      kind === 'roles'
        ? await client.users.setRoles({ name, roles: Roles.filter((x) => roles.has(x)) })
        : kind === 'enable'
          ? await client.users.enable({ name, password })
          : kind === 'disable'
            ? await client.users.disable({ name })
            : kind === 'resetPassword'
              ? await client.users.resetPassword({ name, password })
              : kind === 'resetTotp'
                ? await client.users.resetTotp({ name })
                : kind === 'unlock'
                  ? await client.users.unlock({ name })
                  : await client.users.remove({ name });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onDone();
  }

  const warning: Partial<Record<UserAction['kind'], string>> = {
    disable: `${user.name} is signed out everywhere and their vault key slot is destroyed.`,
    remove: `${user.name} is removed for good and their vault key slot is destroyed. This cannot be undone.`,
    resetPassword: `${user.name}'s sessions end; they must choose a new password at next sign-in.`,
    resetTotp: `${user.name}'s authenticator and recovery codes stop working; they enrol again at next sign-in.`,
    enable: `${user.name} gets a new vault key slot with this initial password, to be changed at first sign-in.`,
  };
  const destructive = kind === 'disable' || kind === 'remove' || kind === 'resetTotp' || kind === 'resetPassword';

  return (
    <Modal title={`${TITLES[kind]}: ${user.name}`} onClose={onClose} testId="user-action-dialog" busy={busy}>
      <form onSubmit={run} className="form-grid">
        {warning[kind] ? <div className={destructive ? 'danger-box' : 'info-line'}>{warning[kind]}</div> : null}
        {kind === 'roles' ? (
          <RoleChecks legend="Roles" options={Roles} roles={roles} setRoles={setRoles} testIdPrefix="user-action-role" />
        ) : null}
        {needsPassword ? (
          <label className="field">
            <span>New initial password</span>
            <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" data-testid="user-action-password" />
            {problem ? <span className="hint warn-line">{problem}</span> : null}
          </label>
        ) : null}
        <ErrorLine error={error} testId="user-action-error" />
        <div className="form-actions">
          <button type="submit" className={destructive ? 'danger' : 'primary'} disabled={busy || !ready} data-testid="user-action-confirm">
            {TITLES[kind]}
          </button>
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}

