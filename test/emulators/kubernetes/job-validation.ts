import { Job as JobModel } from 'kubernetes-models/batch/v1/Job';
import type { Job } from './kube-objects.js';
import type { StatusCause } from './kube-status.js';

/**
 * What the API server checks before it stores a Job: the batch/v1 OpenAPI schema (through the
 * kubernetes-models validators), then the semantic rules the schema cannot say (name syntax and
 * length, label syntax, the Job's restart policy, container names, required images, env names).
 */
export function validateJob(job: Job): StatusCause[] {
  const causes: StatusCause[] = [];
  try {
    new JobModel(job as never).validate();
  } catch (err) {
    const errors = (err as { errors?: SchemaError[] }).errors ?? [{ instancePath: '', message: String(err) }];
    // One cause per field, as the API server reports it (ajv lists each branch of a oneOf).
    const byPath = new Map<string, SchemaError[]>();
    for (const e of errors) byPath.set(e.instancePath, [...(byPath.get(e.instancePath) ?? []), e]);
    for (const [pointer, list] of byPath) causes.push({ reason: 'FieldValueInvalid', field: fieldPath(pointer), message: schemaMessage(list, valueAt(job, pointer)) });
  }

  const name = job.metadata?.name ?? '';
  if (!name) causes.push({ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else {
    for (const problem of dns1123LabelProblems(name)) causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": ${problem}` });
  }
  checkLabels(job.metadata?.labels, 'metadata.labels', causes);
  checkLabels(job.spec?.template?.metadata?.labels, 'spec.template.metadata.labels', causes);

  const spec = job.spec;
  if (!spec?.template?.spec) return causes;
  const pod = spec.template.spec;
  const restart = pod.restartPolicy;
  if (restart !== 'Never' && restart !== 'OnFailure')
    causes.push({
      reason: restart ? 'FieldValueNotSupported' : 'FieldValueRequired',
      field: 'spec.template.spec.restartPolicy',
      message: restart ? `Unsupported value: "${restart}": supported values: "OnFailure", "Never"` : 'Required value',
    });
  for (const key of ['activeDeadlineSeconds', 'ttlSecondsAfterFinished', 'backoffLimit'] as const) {
    const v = spec[key];
    const min = key === 'activeDeadlineSeconds' ? 1 : 0;
    if (typeof v === 'number' && v < min)
      causes.push({ reason: 'FieldValueInvalid', field: `spec.${key}`, message: `Invalid value: ${v}: must be greater than or equal to ${min}` });
  }
  const containers = Array.isArray(pod.containers) ? pod.containers : [];
  if (containers.length === 0) causes.push({ reason: 'FieldValueRequired', field: 'spec.template.spec.containers', message: 'Required value' });
  const seen = new Set<string>();
  containers.forEach((c, i) => {
    const at = `spec.template.spec.containers[${i}]`;
    if (!c.name) causes.push({ reason: 'FieldValueRequired', field: `${at}.name`, message: 'Required value' });
    else {
      for (const problem of dns1123LabelProblems(c.name)) causes.push({ reason: 'FieldValueInvalid', field: `${at}.name`, message: `Invalid value: "${c.name}": ${problem}` });
      if (seen.has(c.name)) causes.push({ reason: 'FieldValueDuplicate', field: `${at}.name`, message: `Duplicate value: "${c.name}"` });
      seen.add(c.name);
    }
    if (!c.image) causes.push({ reason: 'FieldValueRequired', field: `${at}.image`, message: 'Required value' });
    (c.env ?? []).forEach((e, j) => {
      if (!ENV_NAME.test(e.name ?? ''))
        causes.push({
          reason: 'FieldValueInvalid',
          field: `${at}.env[${j}].name`,
          message: `Invalid value: "${e.name}": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit`,
        });
    });
  });
  return causes;
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Job's name becomes the `job-name` label of its pods, so it must also fit a label value (63). */
export function dns1123LabelProblems(name: string): string[] {
  const problems: string[] = [];
  if (name.length > 63) problems.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(name))
    problems.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
  return problems;
}

function checkLabels(labels: Record<string, string> | undefined, field: string, causes: StatusCause[]): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : '';
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (name.length > 63 || !LABEL_NAME.test(name) || (slash >= 0 && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))))
      causes.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
    if (typeof value === 'string' && (value.length > 63 || !LABEL_VALUE.test(value)))
      causes.push({
        reason: 'FieldValueInvalid',
        field: `${field}`,
        message: `Invalid value: "${value}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (must be no more than 63 characters)`,
      });
  }
}

/** `/spec/template/spec/containers/0/image` → `spec.template.spec.containers[0].image`. */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

interface SchemaError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

const QUANTITY = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

function schemaMessage(errors: SchemaError[], value: unknown): string {
  const shown = `Invalid value: ${JSON.stringify(value)}`;
  if (errors.some((e) => e.params?.format === 'quantity')) return `${shown}: ${QUANTITY}`;
  const allowed = errors.find((e) => Array.isArray(e.params?.allowedValues))?.params?.allowedValues as unknown[] | undefined;
  if (allowed) return `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((v) => `"${String(v)}"`).join(', ')}`;
  const messages = errors.map((e) => e.message).filter((m) => m && !m.startsWith('must match exactly one schema'));
  return `${shown}: ${messages.join(', ') || 'does not match the schema'}`;
}

function valueAt(root: unknown, pointer: string): unknown {
  let v: unknown = root;
  for (const part of pointer.split('/').filter(Boolean)) v = (v as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}
