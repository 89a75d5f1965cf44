import { useState } from 'react';
import type { SessionStatus } from '../../../shared/contract/session';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Time } from '../../components/Time';
import { useApp } from '../../context';
import { lockoutRuleText } from './lockoutRule';
import { PasswordForm } from './PasswordForm';
import { SignInLinkCard } from './SignInLinkCard';
import { SettingsForm } from '../settings/SettingsForm';
import { TotpCard } from '../totp/TotpCard';

/** One's own account (password, TOTP, recovery codes) and, for admins, the identity settings. */
export function AccountView({ status, onStatus }: { status: SessionStatus; onStatus: () => void }) {
  const { client, user, can } = useApp();
  const me = status.user!;
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  // The rule the core applies (session:status.lockout), in words.
  const lockout = lockoutRuleText(status.lockout);

  return (
    <section className="view view-narrow" data-testid="account-view">
      <h2>{user.name}</h2>
      <dl className="kv">
        <dt>Roles</dt>
        <dd>{user.roles.join(', ')}</dd>
        <dt>Two-factor</dt>
        <dd data-testid="account-totp" data-enrolled={me.totp.enrolled}>
          {me.totp.enrolled ? `enrolled · ${me.totp.recoveryCodesLeft} recovery codes left` : 'not enrolled'}
          {me.totp.required ? ' · required by policy' : ''}
        </dd>
        <dt>Step-up valid until</dt>
        <dd>{me.stepUpUntil ? <Time iso={me.stepUpUntil} /> : 'confirm your password at the next sensitive action'}</dd>
        <dt>Idle lock at</dt>
        <dd><Time iso={me.lockAt} /></dd>
        <dt>Wrong passwords</dt>
        <dd data-testid="account-lockout">
          <span data-testid="account-lockout-account">{lockout.account}</span>{' '}
          <span className="muted" data-testid="account-lockout-machine">{lockout.machine}</span>
        </dd>
      </dl>
      <ErrorLine error={error} testId="account-error" />
      {note ? (
        <div className="info-line" data-testid="account-note">
          {note}
        </div>
      ) : null}

      {status.shell === 'browser' ? <SignInLinkCard /> : null}

      <PasswordForm client={client} userName={user.name} title="Change password" onDone={() => setNote('Password changed.')} />

      <TotpCard totp={me.totp} onNote={setNote} onError={setError} onStatus={onStatus} />

      {can('settings:set') ? <SettingsForm onSaved={onStatus} /> : null}
    </section>
  );
}
