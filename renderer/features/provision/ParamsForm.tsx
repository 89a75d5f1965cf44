import { useState } from 'react';
import type { PlaybookInfo } from '../../../shared/contract/provision';
import { safeLine } from '../../components/safeText';
import type { Overrides } from './model';
import { fieldsOf, linesToList, numberFromText, setOverride, valueOf, type ParamField } from './paramsForm';

type Step = PlaybookInfo['steps'][number];

/**
 * The playbook's parameters as a form generated from each step's schema. Every edit is an override
 * (`onChange` gets the whole overrides object, which the JSON view shows); `problems` are the
 * checks' words, shown next to their field. A JSON-valued field (a list of objects) whose text
 * does not parse reports it through `onDraftError`, so Plan stays disabled until it does.
 */
export function ParamsForm({
  pb,
  overrides,
  problems,
  disabled,
  onChange,
  onDraftError,
}: {
  pb: PlaybookInfo;
  overrides: Overrides;
  problems: Record<string, Record<string, string>>;
  disabled: boolean;
  onChange: (o: Overrides) => void;
  onDraftError: (key: string, error: string | null) => void;
}) {
  return (
    <div className="prov-params-form" data-testid="prov-params-form">
      {pb.steps.map((step) => {
        const fields = fieldsOf(step);
        return (
          <fieldset key={`${pb.name}\n${step.id}`} className="prov-params-step" data-testid={`prov-params-step-${step.id}`}>
            <legend>
              <span className="strong">{safeLine(step.title)}</span> <span className="mono muted">{step.id}</span>
              {overrides[step.id] ? <span className="badge badge-changed prov-params-changed">changed</span> : null}
            </legend>
            {fields.length === 0 ? <p className="muted">No parameters the form can show: use the JSON view.</p> : null}
            {fields.map((f) => (
              <Field
                key={f.name}
                step={step}
                field={f}
                value={valueOf(overrides, step, f.name)}
                overridden={!!overrides[step.id] && f.name in overrides[step.id]!}
                problem={problems[step.id]?.[f.name] ?? null}
                disabled={disabled}
                onValue={(v) => onChange(setOverride(overrides, step, f.name, v))}
                onDraftError={(e) => onDraftError(`${step.id}.${f.name}`, e)}
              />
            ))}
          </fieldset>
        );
      })}
    </div>
  );
}

function Field({
  step,
  field,
  value,
  overridden,
  problem,
  disabled,
  onValue,
  onDraftError,
}: {
  step: Step;
  field: ParamField;
  value: unknown;
  overridden: boolean;
  problem: string | null;
  disabled: boolean;
  onValue: (v: unknown) => void;
  onDraftError: (e: string | null) => void;
}) {
  const id = `prov-param-${step.id}-${field.name}`;
  const errId = `${id}-error`;
  const [draft, setDraft] = useState<{ text: string; error: string } | null>(null);
  const shownProblem = draft?.error ?? problem;
  const a11y = { id, 'aria-invalid': shownProblem !== null, 'aria-describedby': shownProblem ? errId : undefined, 'data-testid': id, disabled };

  let input;
  switch (field.kind) {
    case 'boolean':
      input = <input type="checkbox" {...a11y} checked={value === true} onChange={(e) => onValue(e.target.checked)} />;
      break;
    case 'enum':
      input = (
        <select {...a11y} value={typeof value === 'string' ? value : ''} onChange={(e) => onValue(e.target.value === '' ? undefined : e.target.value)}>
          {!field.required ? <option value="">(not set)</option> : null}
          {field.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      );
      break;
    case 'integer':
    case 'number':
      input = (
        <input
          {...a11y}
          className="field-narrow"
          inputMode="decimal"
          value={value === undefined ? '' : String(value)}
          onChange={(e) => onValue(numberFromText(e.target.value))}
        />
      );
      break;
    case 'string':
      input = <input {...a11y} value={typeof value === 'string' ? value : value === undefined ? '' : String(value)} onChange={(e) => onValue(e.target.value === '' && !field.required ? undefined : e.target.value)} />;
      break;
    case 'strings':
      input = (
        <textarea
          {...a11y}
          rows={Math.min(6, Math.max(2, Array.isArray(value) ? value.length + 1 : 2))}
          spellCheck={false}
          value={Array.isArray(value) ? value.join('\n') : ''}
          onChange={(e) => onValue(linesToList(e.target.value))}
        />
      );
      break;
    default:
      input = (
        <JsonField
          a11y={a11y}
          value={value}
          draft={draft}
          onDraft={(d) => {
            setDraft(d);
            onDraftError(d?.error ?? null);
          }}
          onValue={onValue}
        />
      );
  }

  return (
    <div className={`prov-param${overridden ? ' prov-param-overridden' : ''}`} data-kind={field.kind}>
      <label htmlFor={id} className="mono">
        {field.name}
        {field.required ? <span className="muted"> (required)</span> : null}
      </label>
      <div className="prov-param-input">
        {input}
        {field.kind === 'strings' ? <span className="muted prov-param-hint">one per line</span> : null}
        {shownProblem ? (
          <div className="field-error" id={errId} role="alert" data-testid={`prov-param-error-${step.id}-${field.name}`}>
            {safeLine(shownProblem)}
          </div>
        ) : null}
      </div>
    </div>
  );
}

/** A parameter the form has no widget for (a list of objects): its JSON, edited in place. */
function JsonField({
  a11y,
  value,
  draft,
  onDraft,
  onValue,
}: {
  a11y: Record<string, unknown>;
  value: unknown;
  draft: { text: string; error: string } | null;
  onDraft: (d: { text: string; error: string } | null) => void;
  onValue: (v: unknown) => void;
}) {
  // A draft lives only while it does not parse; the form is remounted when the JSON view or
  // another playbook replaces the values, so a stale draft cannot outlive them.
  const text = value === undefined ? '' : JSON.stringify(value);
  return (
    <textarea
      {...a11y}
      className="mono"
      rows={2}
      spellCheck={false}
      value={draft?.text ?? text}
      onChange={(e) => {
        const t = e.target.value;
        if (t.trim() === '') {
          onDraft(null);
          return onValue(undefined);
        }
        try {
          const v = JSON.parse(t) as unknown;
          onDraft(null);
          onValue(v);
        } catch {
          onDraft({ text: t, error: 'not JSON yet: check brackets, quotes and commas' });
        }
      }}
    />
  );
}
