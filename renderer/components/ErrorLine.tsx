import type { AirlockErrorShape } from '../../shared/domain/errors';
import { safeText } from './safeText';

/** The one way a failed Result is shown: its message, with the stable code beside it. */
export function ErrorLine({ error, testId }: { error: AirlockErrorShape | null | undefined; testId?: string }) {
  if (!error) return null;
  return (
    <div className="error-line" role="alert" data-testid={testId} data-code={error.code}>
      <span className="error-code">{error.code}</span>
      <span className="error-message">{safeText(error.message)}</span>
    </div>
  );
}
