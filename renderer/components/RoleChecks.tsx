/** Checkboxes choosing a set of roles (users' roles, a policy's approver roles). */
export function RoleChecks<R extends string>(props: {
  legend: string;
  options: readonly R[];
  roles: Set<R>;
  setRoles: (update: (cur: Set<R>) => Set<R>) => void;
  testIdPrefix: string;
  /** A line of help beside each role. */
  help?: Record<R, string>;
}) {
  const { legend, options, roles, setRoles, testIdPrefix, help } = props;
  return (
    <fieldset className="roles-field">
      <legend>{legend}</legend>
      {options.map((r) => (
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
            data-testid={`${testIdPrefix}-${r}`}
          />
          <span className="role-name">{r}</span>
          {help ? (
            <>
              {' '}
              <span className="muted">— {help[r]}</span>
            </>
          ) : null}
        </label>
      ))}
    </fieldset>
  );
}
