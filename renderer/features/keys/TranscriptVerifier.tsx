import type { Out } from '../../../shared/contract/index';
import { TextVerifier } from '../../components/TextVerifier';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';

type Report = Out<'keys:verifyTranscript'>;

/** The contract's bound on a transcript's text (keys:verifyTranscript). */
const MAX_TRANSCRIPT = 1024 * 1024;

/**
 * Checks a ceremony transcript someone hands the officer (a file from removable media, or pasted)
 * against this console's root CA certificate: the same check `airlock keys verify-transcript`
 * makes offline. The form is the console's one verifier (components/TextVerifier.tsx).
 */
export function TranscriptVerifier() {
  const { client } = useApp();
  return (
    <TextVerifier<Report>
      title="Verify a ceremony transcript"
      hint={<>A transcript is valid when its signature chains to this console&apos;s root CA certificate and its content is unchanged.</>}
      fileLabel="Transcript file (JSON)"
      maxBytes={MAX_TRANSCRIPT}
      paste="Or paste the transcript"
      verify={(text) => client.keys.verifyTranscript({ text })}
      validText="Valid: signed under this console’s root CA"
      testId="keys-verify"
      rootTestId="keys-verifier"
      className="card keys-card"
      details={(report) => (
        <dl className="kv">
          <dt>Ceremony</dt>
          <dd data-testid="keys-verify-kind">{safeLine(report.kind ?? '—')}</dd>
          <dt>Nonce</dt>
          <dd className="mono">{safeLine(report.nonce ?? '—')}</dd>
          <dt>Signed by</dt>
          <dd>
            {report.signer ? (
              <>
                {safeLine(report.signer.subject)} <span className="mono">{safeLine(report.signer.fingerprint)}</span>
              </>
            ) : (
              '—'
            )}
          </dd>
        </dl>
      )}
    />
  );
}
