import './provision.css';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { PlaybookInfo, Run } from '../../../shared/contract/provision';
import type { AirlockErrorShape, Result } from '../../../shared/domain/errors';
import { newRequestId } from '../../api';
import { ErrorLine } from '../../components/ErrorLine';
import { shortHash } from '../../components/format';
import { Modal } from '../../components/Modal';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';
import { useCommand } from '../palette/commands';
import { AttestationDialog, AttestationsPanel } from '../attest/Attestations';
import { DriftPanel } from './DriftPanel';
import { HostPicker } from './HostPicker';
import { ImportPlaybook } from './ImportPlaybook';
import { ParamsForm } from './ParamsForm';
import { overridesText, problemCount, validateOverrides } from './paramsForm';
import {
  applyProgress,
  currentParams,
  EMPTY_SELECTION,
  failLive,
  finishLive,
  inFlight,
  parseOverrides,
  planSummary,
  resolveSelection,
  resumable,
  selectorOf,
  skeletonOf,
  startLive,
  type HostSelection,
  type LiveKind,
  type LiveRun,
  type StepSkeleton,
} from './model';
import { RunBadge, RunHeader, RunHosts } from './RunDisplay';
import { runningFor } from '../../components/time';
import { RunsPanel } from './RunsPanel';
import { StorePanel } from '../store/StorePanel';

type Tab = 'run' | 'runs' | 'attestations' | 'drift' | 'store';

/**
 * Provisioning: playbooks applied to hosts over SSH (plan → review → apply → as-built attestation),
 * the runs record, drift against the attestations, and the offline store. Administrators run
 * playbooks; officers and auditors read runs, attestations, drift and the store.
 *
 * The view stays mounted while another view is shown (App keeps it in a hidden slot) so a long
 * apply keeps its live progress.
 */
export function ProvisionView({ active }: { active: boolean }) {
  const { api, client, can } = useApp();
  const canRun = can('provision:plan');
  const tabs: Array<{ id: Tab; label: string; show: boolean }> = [
    { id: 'run', label: 'Plan & apply', show: canRun },
    { id: 'runs', label: 'Runs', show: can('provision:runs') },
    { id: 'attestations', label: 'Attestations', show: can('attest:list') },
    { id: 'drift', label: 'Drift', show: can('provision:drift') },
    { id: 'store', label: 'Offline store', show: can('store:list') },
  ];
  const shownTabs = tabs.filter((t) => t.show);
  const [tab, setTab] = useState<Tab>(shownTabs[0]?.id ?? 'runs');

  const [playbooks, setPlaybooks] = useState<PlaybookInfo[] | null>(null);
  const [hosts, setHosts] = useState<Host[]>([]);
  const [loadError, setLoadError] = useState<AirlockErrorShape | null>(null);
  const [attestation, setAttestation] = useState<{ host: string; id: string } | null>(null);
  const [generation, setGeneration] = useState(0);

  const loadHosts = useCallback(async () => {
    const r = await client.hosts.list({});
    if (r.ok) setHosts(r.value);
    else setLoadError(r.error);
  }, [client]);

  const loadPlaybooks = useCallback(async () => {
    const r = await client.provision.playbooks({});
    if (r.ok) {
      setPlaybooks(r.value);
      setLoadError(null);
    } else setLoadError(r.error);
  }, [client]);

  useEffect(() => {
    if (!active) return;
    void loadPlaybooks();
    void loadHosts();
  }, [active, loadPlaybooks, loadHosts]);

  // ---- the one live run of this view (plan, apply or resume) ----
  const [live, setLive] = useState<LiveRun | null>(null);
  const liveRef = useRef<LiveRun | null>(null);
  useEffect(() => {
    liveRef.current = live;
  }, [live]);
  const [cancelError, setCancelError] = useState<AirlockErrorShape | null>(null);

  useEffect(() => client.on('provision:progress', (p) => setLive((cur) => (cur ? applyProgress(cur, p) : cur))), [client]);

  // Events sent while the stream was down are lost: on reconnect, re-read the run.
  useEffect(
    () =>
      api.onEventsState((connected) => {
        const l = liveRef.current;
        if (!connected || !l || l.phase !== 'running' || !l.runId) return;
        void client.provision.status({ runId: l.runId }).then((r) => {
          if (!r.ok) return;
          setLive((cur) => (cur && cur.phase === 'running' && cur.runId === r.value.id ? { ...cur, hosts: r.value.hosts, logs: {} } : cur));
        });
      }),
    [api, client],
  );

  const begin = useCallback(
    async (init: { kind: LiveKind; playbook: string; skeleton: StepSkeleton[]; expect: string[] | null; runId?: string; hosts?: Run['hosts'] }, call: (requestId: string) => Promise<Result<Run>>) => {
      const requestId = newRequestId();
      setCancelError(null);
      setLive(startLive({ ...init, requestId }));
      // Progress goes to this page's event stream: have it open before the run starts.
      await api.eventsReady();
      const r = await call(requestId);
      if (r.ok) {
        setLive((cur) => (cur && cur.requestId === requestId ? finishLive(cur, r.value) : cur));
      } else {
        // The run may exist and have done part of its work: show its record with the error.
        const runId = liveRef.current?.requestId === requestId ? liveRef.current.runId : null;
        const s = runId ? await client.provision.status({ runId }) : null;
        setLive((cur) => (cur && cur.requestId === requestId ? failLive(cur, r.error, s?.ok ? s.value : null) : cur));
      }
      setGeneration((g) => g + 1);
    },
    [api, client],
  );

  async function cancel() {
    const l = liveRef.current;
    if (!l || l.phase !== 'running') return;
    setLive((cur) => (cur && cur.requestId === l.requestId ? { ...cur, cancelling: true } : cur));
    const r = await client.ops.cancel({ requestId: l.requestId });
    if (!r.ok) setCancelError(r.error);
  }

  const running = inFlight(live);

  function resume(run: Run) {
    setTab('run');
    void begin(
      {
        kind: 'resume',
        playbook: run.playbook,
        runId: run.id,
        hosts: run.hosts,
        expect: run.hosts.map((h) => h.host),
        skeleton: (run.hosts[0]?.steps ?? []).map((s) => ({ id: s.stepId, type: s.type, title: s.title })),
      },
      (requestId) => client.provision.resume({ runId: run.id, requestId }),
    );
  }

  const openAttestation = (host: string, id: string) => setAttestation({ host, id });

  // The palette's "Plan a playbook" (declared in ./index.ts): the plan form, its playbook first.
  const runTabRef = useRef<HTMLDivElement>(null);
  useCommand(
    'provision.plan',
    canRun
      ? () => {
          setTab('run');
          // Once shown (a hidden element takes no focus).
          setTimeout(() => runTabRef.current?.querySelector<HTMLElement>('[data-testid="prov-playbook"]')?.focus(), 0);
        }
      : null,
  );

  return (
    <section className="view prov-view" data-testid="provision-view">
      <div className="prov-tabs" role="tablist" aria-label="Provisioning">
        {shownTabs.map((t) => (
          <button key={t.id} type="button" role="tab" aria-selected={tab === t.id} onClick={() => setTab(t.id)} data-testid={`prov-tab-${t.id}`}>
            {t.label}
            {t.id === 'run' && running ? <span className="spinner spinner-inline" aria-label="a run is in progress" /> : null}
          </button>
        ))}
      </div>
      <ErrorLine error={loadError} testId="prov-load-error" />

      {/* Every panel stays mounted (hidden when not shown): a form being filled, a drift report or an
          opened run survive a look at another tab. */}
      {canRun ? (
        <div className={tab === 'run' ? undefined : 'view-hidden'} ref={runTabRef}>
          <RunTab
            playbooks={playbooks}
            hosts={hosts}
            onHostsChanged={() => void loadHosts()}
            onPlaybooksChanged={() => void loadPlaybooks()}
            live={live}
            cancelError={cancelError}
            onStart={begin}
            onCancel={() => void cancel()}
            onResume={resume}
            onDismiss={() => setLive(null)}
            onAttestation={openAttestation}
          />
        </div>
      ) : null}
      <div className={tab === 'runs' ? undefined : 'view-hidden'}>
        <RunsPanel active={active && tab === 'runs'} generation={generation} busy={running} onResume={resume} onAttestation={openAttestation} />
      </div>
      {can('attest:list') ? (
        <div className={tab === 'attestations' ? undefined : 'view-hidden'}>
          <AttestationsPanel active={active && tab === 'attestations'} onOpen={openAttestation} />
        </div>
      ) : null}
      {can('provision:drift') ? (
        <div className={tab === 'drift' ? undefined : 'view-hidden'}>
          <DriftPanel hosts={hosts} onHostsChanged={() => void loadHosts()} onAttestation={openAttestation} />
        </div>
      ) : null}
      {can('store:list') ? (
        <div className={tab === 'store' ? undefined : 'view-hidden'}>
          <StorePanel active={active && tab === 'store'} />
        </div>
      ) : null}

      {attestation ? <AttestationDialog id={attestation.id} host={attestation.host} onClose={() => setAttestation(null)} /> : null}
    </section>
  );
}

interface Form {
  playbook: string;
  selection: HostSelection;
  params: string;
  concurrency: string;
  /** The parameters as a form (generated from the steps' schemas) or as JSON ("Advanced"). */
  paramsView: 'form' | 'json';
}

function RunTab({
  playbooks,
  hosts,
  onHostsChanged,
  onPlaybooksChanged,
  live,
  cancelError,
  onStart,
  onCancel,
  onResume,
  onDismiss,
  onAttestation,
}: {
  playbooks: PlaybookInfo[] | null;
  hosts: Host[];
  onHostsChanged: () => void;
  onPlaybooksChanged: () => void;
  live: LiveRun | null;
  cancelError: AirlockErrorShape | null;
  onStart: (init: { kind: LiveKind; playbook: string; skeleton: StepSkeleton[]; expect: string[] | null }, call: (requestId: string) => Promise<Result<Run>>) => Promise<void>;
  onCancel: () => void;
  onResume: (run: Run) => void;
  onDismiss: () => void;
  onAttestation: (host: string, id: string) => void;
}) {
  const { client, can } = useApp();
  const [form, setForm] = useState<Form>({ playbook: '', selection: EMPTY_SELECTION, params: '{}', concurrency: '', paramsView: 'form' });
  // Form fields whose JSON text does not parse yet (keyed step.param): Plan waits for them.
  const [draftErrors, setDraftErrors] = useState<Record<string, string>>({});
  const [confirmApply, setConfirmApply] = useState(false);
  // The settings the last plan of this view was made with, and what it found.
  const [planned, setPlanned] = useState<{ key: string; run: Run } | null>(null);

  const pb = playbooks?.find((p) => p.name === form.playbook) ?? null;
  useEffect(() => {
    if (!form.playbook && playbooks?.length) setForm((f) => ({ ...f, playbook: playbooks[0]!.name }));
  }, [playbooks, form.playbook]);

  const parsed = useMemo(() => parseOverrides(form.params, pb), [form.params, pb]);
  const problems = useMemo(() => (pb && !('error' in parsed) ? validateOverrides(pb, parsed.value) : {}), [parsed, pb]);
  const invalidParams = problemCount(problems) + Object.keys(draftErrors).length;
  const selector = selectorOf(form.selection);
  const concurrency = form.concurrency.trim() === '' ? undefined : Number(form.concurrency);
  const concurrencyBad = concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64);
  const ready = pb !== null && selector !== null && !('error' in parsed) && invalidParams === 0 && !concurrencyBad;
  const running = inFlight(live);
  const key = ready ? JSON.stringify({ p: pb.name, d: pb.digest, s: selector, o: parsed.value }) : null;
  const expect = resolveSelection(form.selection, hosts);

  // A plan finished with the settings it was started with: remember it for the apply confirmation.
  const pendingKey = useRef<string | null>(null);
  useEffect(() => {
    if (live?.kind === 'plan' && live.phase === 'done' && live.final && pendingKey.current) {
      setPlanned({ key: pendingKey.current, run: live.final });
      pendingKey.current = null;
    }
  }, [live]);

  function input(requestId: string) {
    if (!pb || !selector || 'error' in parsed) throw new Error('not ready');
    return { playbook: pb.name, hosts: selector, params: parsed.value, requestId, ...(concurrency !== undefined ? { concurrency } : {}) };
  }

  function plan() {
    if (!ready || running) return;
    pendingKey.current = key;
    void onStart({ kind: 'plan', playbook: pb.name, skeleton: skeletonOf(pb), expect: form.selection.mode === 'names' ? expect : null }, (id) => client.provision.plan(input(id)));
  }

  function apply() {
    if (!ready || running) return;
    setConfirmApply(false);
    void onStart({ kind: 'apply', playbook: pb.name, skeleton: skeletonOf(pb), expect: form.selection.mode === 'names' ? expect : null }, (id) => client.provision.apply(input(id)));
  }

  const reviewed = planned && planned.key === key ? planned.run : null;

  return (
    <div data-testid="prov-run-tab">
      <div className="prov-columns">
        <div className="card" data-testid="prov-playbook-card">
          <div className="prov-section-title">
            <h2>Playbook</h2>
            {pb ? (
              <span className="muted" data-testid="prov-playbook-digest" title={pb.digest}>
                {pb.source} · v{safeLine(pb.version)} · sha256 {shortHash(pb.digest, 16)}
              </span>
            ) : null}
          </div>
          <select
            value={form.playbook}
            onChange={(e) => {
              setDraftErrors({});
              setForm((f) => ({ ...f, playbook: e.target.value }));
            }}
            disabled={!playbooks || running}
            aria-label="Playbook"
            data-testid="prov-playbook"
          >
            {!playbooks ? <option value="">Loading…</option> : null}
            {(playbooks ?? []).map((p) => (
              <option key={p.name} value={p.name}>
                {p.name} (v{p.version}, {p.steps.length} steps)
              </option>
            ))}
          </select>
          {can('provision:importPlaybook') ? (
            <ImportPlaybook
              onImported={(name) => {
                onPlaybooksChanged();
                setForm((f) => ({ ...f, playbook: name }));
              }}
            />
          ) : null}
          {pb ? (
            <>
              {pb.description ? <p className="hint">{safeText(pb.description)}</p> : null}
              <table className="grid grid-compact prov-steps-table" data-testid="prov-playbook-steps">
                <thead>
                  <tr>
                    <th className="num">#</th>
                    <th>Step</th>
                    <th>Type</th>
                    <th>Needs</th>
                  </tr>
                </thead>
                <tbody>
                  {pb.steps.map((s, i) => (
                    <tr key={s.id} data-testid={`prov-pb-step-${s.id}`} data-type={s.type}>
                      <td className="num">{i + 1}</td>
                      <td>
                        <span className="strong">{safeLine(s.title)}</span> <span className="mono muted">{s.id}</span>
                      </td>
                      <td className="mono">{s.type}</td>
                      <td className="prov-needs" data-testid={`prov-pb-step-needs-${s.id}`}>
                        {[s.needs.root ? 'root' : null, ...s.needs.store.map((x) => `store ${x}`)].filter(Boolean).join(' · ') || 'read-only, no store'}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
        </div>

        <div className="card" data-testid="prov-target-card">
          <div className="prov-section-title">
            <h2>Hosts</h2>
            <span className="muted" data-testid="prov-selector">
              {selector ? selector.join(' ') : 'none chosen'}
            </span>
          </div>
          <HostPicker hosts={hosts} value={form.selection} onChange={(selection) => setForm((f) => ({ ...f, selection }))} onHostsChanged={onHostsChanged} prefix="prov" />
          <label className="inline-field prov-run">
            <span>Hosts at once</span>
            <input
              className="field-narrow"
              value={form.concurrency}
              onChange={(e) => setForm((f) => ({ ...f, concurrency: e.target.value }))}
              placeholder="default"
              inputMode="numeric"
              aria-invalid={concurrencyBad}
              data-testid="prov-concurrency"
            />
          </label>
          {concurrencyBad ? <div className="warn-line">Hosts at once: a whole number from 1 to 64.</div> : null}
        </div>
      </div>

      <div className="card prov-run" data-testid="prov-params-card">
        <div className="prov-section-title">
          <h2>Parameters for this run</h2>
          <span className="muted">Changed values override the playbook&apos;s for this run only; each is checked against the step&apos;s schema here and again by the core.</span>
        </div>
        <div className="prov-params-mode" role="group" aria-label="Show the parameters as">
          <button
            type="button"
            className="small"
            aria-pressed={form.paramsView === 'form'}
            disabled={'error' in parsed}
            title={'error' in parsed ? 'Fix the JSON first' : undefined}
            onClick={() => {
              setDraftErrors({});
              setForm((f) => ({ ...f, paramsView: 'form' }));
            }}
            data-testid="prov-params-view-form"
          >
            Form
          </button>
          <button
            type="button"
            className="small"
            aria-pressed={form.paramsView === 'json'}
            onClick={() => {
              setDraftErrors({});
              setForm((f) => ({ ...f, paramsView: 'json' }));
            }}
            data-testid="prov-params-view-json"
          >
            Advanced: JSON
          </button>
        </div>
        {form.paramsView === 'form' && pb && !('error' in parsed) ? (
          <ParamsForm
            pb={pb}
            overrides={parsed.value}
            problems={problems}
            disabled={running}
            onChange={(o) => setForm((f) => ({ ...f, params: overridesText(o) }))}
            onDraftError={(k, e) =>
              setDraftErrors(({ [k]: _old, ...rest }) => (e ? { ...rest, [k]: e } : rest))
            }
          />
        ) : null}
        {form.paramsView === 'json' ? (
          <>
            <p className="muted">
              Overrides as JSON: <span className="mono">{'{"stepId": {"param": value}}'}</span>, merged over the playbook&apos;s parameters. The form shows the same values.
            </p>
            <div className="prov-params">
              <label className="field">
                <span>Overrides</span>
                <textarea
                  value={form.params}
                  onChange={(e) => setForm((f) => ({ ...f, params: e.target.value }))}
                  spellCheck={false}
                  aria-invalid={'error' in parsed}
                  data-testid="prov-params"
                />
              </label>
              <div className="field">
                <span>The playbook&apos;s parameters now</span>
                <pre className="params" tabIndex={0} data-testid="prov-playbook-params">
                  {pb ? safeText(currentParams(pb)) : ''}
                </pre>
              </div>
            </div>
            {Object.entries(problems).flatMap(([step, ps]) =>
              Object.entries(ps).map(([param, msg]) => (
                <div key={`${step}.${param}`} className="warn-line" data-testid="prov-params-invalid">
                  <span className="mono">
                    {step}.{param}
                  </span>
                  : {safeLine(msg)}
                </div>
              )),
            )}
          </>
        ) : null}
        {'error' in parsed ? (
          <div className="error-line" role="alert" data-testid="prov-params-error">
            <span className="error-code">JSON</span>
            <span className="error-message">{parsed.error}</span>
          </div>
        ) : null}
        {'warnings' in parsed
          ? parsed.warnings.map((w) => (
              <div key={w} className="warn-line" data-testid="prov-params-warning">
                {w}
              </div>
            ))
          : null}
        {invalidParams > 0 ? (
          <div className="warn-line" data-testid="prov-params-invalid-summary">
            {invalidParams === 1 ? '1 parameter needs' : `${invalidParams} parameters need`} fixing before Plan.
          </div>
        ) : null}
        <div className="prov-actions">
          <button type="button" className="primary" disabled={!ready || running} onClick={plan} data-testid="prov-plan">
            Plan
          </button>
          {can('provision:apply') ? (
            <button type="button" className="danger" disabled={!ready || running} onClick={() => setConfirmApply(true)} data-testid="prov-apply">
              Apply…
            </button>
          ) : null}
          <span className="muted">Plan runs every step&apos;s read-only check; Apply changes the hosts (step-up required).</span>
        </div>
      </div>

      {live ? <LivePanel live={live} cancelError={cancelError} onCancel={onCancel} onResume={onResume} onDismiss={onDismiss} onAttestation={onAttestation} /> : null}

      {confirmApply && pb && selector && !('error' in parsed) ? (
        <Modal
          title={`Apply ${pb.name}?`}
          onClose={() => setConfirmApply(false)}
          wide
          testId="prov-apply-dialog"
          footer={
            <>
              <button type="button" onClick={() => setConfirmApply(false)} data-testid="prov-apply-cancel">
                Cancel
              </button>
              <button type="button" className="danger" onClick={apply} data-testid="prov-apply-confirm">
                Apply to {form.selection.mode === 'names' ? `${expect.length} host(s)` : selector.join(' ')}
              </button>
            </>
          }
        >
          <dl className="kv">
            <dt>Playbook</dt>
            <dd>
              {pb.name} v{pb.version} <span className="mono muted">sha256 {pb.digest}</span>
            </dd>
            <dt>Hosts</dt>
            <dd data-testid="prov-apply-hosts">
              <span className="mono">{selector.join(' ')}</span>
              {form.selection.mode !== 'names' ? <span className="muted"> (now: {expect.join(', ') || 'none'})</span> : null}
            </dd>
            <dt>Overrides</dt>
            <dd className="mono">{Object.keys(parsed.value).length ? safeLine(JSON.stringify(parsed.value), 2000) : 'none'}</dd>
          </dl>
          {reviewed ? (
            <div className={planSummary(reviewed).failed ? 'warn-line' : 'info-line'} data-testid="prov-apply-reviewed">
              Reviewed plan <span className="mono">{reviewed.id}</span>: {planSummary(reviewed).changing} step(s) would change on {reviewed.hosts.length} host(s)
              {planSummary(reviewed).failed ? `, ${planSummary(reviewed).failed} check(s) failed — those hosts will stop at that step` : ''}.
            </div>
          ) : (
            <div className="warn-line" data-testid="prov-apply-unreviewed">
              No plan was reviewed for exactly these settings. Plan first to see what would change.
            </div>
          )}
          <p className="muted">
            Per host, steps run in order (check → apply → verify); a host stops at its first failure while the others carry on. Each host that succeeds gets a
            signed as-built attestation.
          </p>
        </Modal>
      ) : null}
    </div>
  );
}

function LivePanel({
  live,
  cancelError,
  onCancel,
  onResume,
  onDismiss,
  onAttestation,
}: {
  live: LiveRun;
  cancelError: AirlockErrorShape | null;
  onCancel: () => void;
  onResume: (run: Run) => void;
  onDismiss: () => void;
  onAttestation: (host: string, id: string) => void;
}) {
  const { can } = useApp();
  // Both ends of the timer are this browser's clock (startedAt is when the first progress event
  // came), and `now` restarts with each run: a panel reused for a second run never counts back.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (live.phase !== 'running') return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [live.phase, live.startedAt]);

  const final = live.final;
  const status = final?.status ?? (inFlight(live) ? live.phase : 'failed');
  const title = live.kind === 'plan' ? 'Plan' : live.kind === 'apply' ? 'Apply' : 'Resume';
  const counts = live.hosts.reduce<Record<string, number>>((acc, h) => {
    acc[h.status] = (acc[h.status] ?? 0) + 1;
    return acc;
  }, {});
  const summary = final && final.kind === 'plan' ? planSummary(final) : null;

  return (
    <div className="card prov-run" data-testid="prov-live" data-kind={live.kind} data-phase={live.phase} data-status={status} data-run-id={live.runId ?? ''}>
      <div className="prov-section-title">
        <h2>
          {title} of {live.playbook}
        </h2>
        <span className="muted">
          {live.phase === 'waiting'
            ? 'starting…'
            : live.phase === 'running'
              ? runningFor(live.startedAt, now)
              : live.phase === 'error'
              ? 'ended with an error'
              : 'finished'}
        </span>
      </div>
      {final ? (
        <RunHeader run={final}>
          {can('provision:resume') && resumable(final) ? (
            <button type="button" className="small primary" onClick={() => onResume(final)} data-testid="prov-live-resume">
              Resume
            </button>
          ) : null}
          <button type="button" className="small" onClick={onDismiss} data-testid="prov-live-dismiss">
            Dismiss
          </button>
        </RunHeader>
      ) : (
        <div className="prov-run-head">
          <strong className="mono">{live.runId ?? 'starting…'}</strong>
          <RunBadge status={inFlight(live) ? live.phase : 'failed'} testId="prov-run-status" />
          <span className="muted">
            {Object.entries(counts)
              .map(([s, n]) => `${n} ${s}`)
              .join(' · ') || 'waiting for the first host'}
          </span>
          <div className="toolbar-spacer" />
          {live.phase === 'waiting' ? null : live.phase === 'running' ? (
            <button type="button" className="danger" onClick={onCancel} disabled={live.cancelling} data-testid="prov-cancel">
              {live.cancelling ? 'Cancelling…' : 'Cancel'}
            </button>
          ) : (
            <button type="button" className="small" onClick={onDismiss} data-testid="prov-live-dismiss">
              Dismiss
            </button>
          )}
        </div>
      )}
      <ErrorLine error={live.error} testId="prov-run-error" />
      <ErrorLine error={cancelError} testId="prov-cancel-error" />
      {summary ? (
        <div className={summary.failed ? 'panel panel-warn' : 'panel panel-ok'} data-testid="prov-plan-summary" data-changing={summary.changing} data-failed={summary.failed}>
          Plan: {summary.changing} step(s) would change, {summary.ok} already as wanted, {summary.failed} check(s) failed, on {summary.hosts} host(s). Review the changes
          below, then Apply.
        </div>
      ) : null}
      {final && final.kind !== 'plan' ? (
        <div className={final.status === 'succeeded' ? 'panel panel-ok' : 'panel panel-warn'} data-testid="prov-final" data-status={final.status}>
          {final.status === 'succeeded'
            ? `Every host succeeded; each has a signed as-built attestation.`
            : `${final.hosts.filter((h) => h.status === 'succeeded').length} of ${final.hosts.length} host(s) succeeded; the run is ${final.status}.${resumable(final) ? ' Resume continues each host from its first unfinished step.' : ''}`}
        </div>
      ) : null}
      <RunHosts key={live.requestId} kind={live.kind} hosts={live.hosts} logs={live.logs} live={inFlight(live)} onAttestation={onAttestation} expandFailed={live.kind === 'plan' || !inFlight(live)} />
    </div>
  );
}
