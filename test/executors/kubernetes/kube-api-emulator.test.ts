import { request as httpsRequest } from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EMULATOR_TOKEN, KubeApiEmulator, type KubeApiEmulatorOptions } from '../../emulators/kubernetes/kube-api-emulator.js';
import { TestPki } from '../../emulators/kubernetes/test-pki.js';
import { eventually } from './kube-fixture.js';
import { nodeWorker } from './worker-process.js';

/** The emulator on its own, over raw HTTPS: what a real API server would answer. */

let pki: TestPki;
let emulator: KubeApiEmulator | undefined;
beforeAll(() => {
  pki = TestPki.create();
});
afterAll(() => pki.remove());
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function start(opts: KubeApiEmulatorOptions = {}): Promise<KubeApiEmulator> {
  emulator = await KubeApiEmulator.start({ pki, ...opts });
  return emulator;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function call(method: string, path: string, body?: unknown, token: string | null = DEFAULT_EMULATOR_TOKEN): Promise<Reply> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: emulator!.port,
        method,
        path,
        ca: pki.ca.cert,
        // A length, as every real client sends: Node frames no DELETE body by itself.
        headers: {
          'Content-Type': 'application/json',
          ...(text !== undefined ? { 'Content-Length': Buffer.byteLength(text) } : {}),
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    if (text !== undefined) req.write(text);
    req.end();
  });
}

const JOBS = '/apis/batch/v1/namespaces/builder/jobs';

function job(name: string, labels: Record<string, string> = {}, over: Record<string, unknown> = {}) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels },
    spec: {
      backoffLimit: 1,
      template: { metadata: { labels }, spec: { restartPolicy: 'Never', containers: [{ name: 'builder', image: 'quay.io/projectquay/quay-builder:latest', env: [{ name: 'A', value: '1' }] }] } },
      ...over,
    },
  };
}

describe('authentication and errors as Status objects', () => {
  it('no token or a wrong one: 401 Unauthorized Status', async () => {
    await start();
    for (const token of [null, 'wrong']) {
      const r = await call('GET', JOBS, undefined, token);
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
  });

  it('a token without rights to the namespace: 403 Forbidden naming user, verb, resource and namespace', async () => {
    await start({ tokens: { limited: ['other'] } });
    const r = await call('POST', JOBS, job('x'), 'limited');
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403 });
    expect(r.body.message).toBe('jobs.batch is forbidden: User "system:serviceaccount:builder:emulated-0" cannot create resource "jobs" in API group "batch" in the namespace "builder"');
    expect((await call('GET', '/apis/batch/v1/namespaces/other/jobs', undefined, 'limited')).status).toBe(200);
  });

  it('404 NotFound for a missing Job and for an unknown path; 405 for a wrong method', async () => {
    await start();
    const r = await call('GET', `${JOBS}/nope`);
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ reason: 'NotFound', message: 'jobs.batch "nope" not found', details: { name: 'nope', group: 'batch', kind: 'jobs' } });
    expect((await call('GET', '/apis/apps/v1/namespaces/builder/deployments')).body).toMatchObject({ code: 404, message: 'the server could not find the requested resource' });
    expect((await call('PUT', JOBS, job('x'))).status).toBe(405);
  });
});

describe('creating Jobs', () => {
  it('stores metadata the server owns (uid, resourceVersion, creationTimestamp), the selector and controller labels', async () => {
    await start();
    const r = await call('POST', JOBS, job('build-1', { build: 'b1' }));
    expect(r.status).toBe(201);
    const m = r.body.metadata;
    expect(m).toMatchObject({ name: 'build-1', namespace: 'builder', generation: 1 });
    expect(m.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(m.resourceVersion)).toBeGreaterThan(0);
    expect(m.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(r.body.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': m.uid } });
    expect(r.body.spec.template.metadata.labels).toMatchObject({ build: 'b1', 'job-name': 'build-1', 'controller-uid': m.uid });
    // The controller gives it a pod.
    await eventually(() => emulator!.pods('builder', 'job-name=build-1').length === 1);
    expect(emulator!.job('builder', 'build-1')!.status).toMatchObject({ active: 1 });
  });

  it('generateName gets a random suffix', async () => {
    await start();
    const body = job('');
    (body.metadata as Record<string, unknown>) = { generateName: 'abc-' };
    const r = await call('POST', JOBS, body);
    expect(r.body.metadata.name).toMatch(/^abc-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it('409 AlreadyExists for a second Job of the same name', async () => {
    await start();
    await call('POST', JOBS, job('dup'));
    const r = await call('POST', JOBS, job('dup'));
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ reason: 'AlreadyExists', message: 'jobs.batch "dup" already exists', details: { name: 'dup', kind: 'jobs' } });
  });

  it('400 for a body in the wrong namespace or not JSON', async () => {
    await start();
    const wrongNs = job('x');
    (wrongNs.metadata as Record<string, unknown>).namespace = 'elsewhere';
    expect((await call('POST', JOBS, wrongNs)).body).toMatchObject({ code: 400, reason: 'BadRequest' });
    expect((await call('POST', JOBS, '{nope')).body).toMatchObject({ code: 400, reason: 'BadRequest' });
  });

  it.each([
    ['a name over 63 characters', job('a'.repeat(64)), 'metadata.name', 'must be no more than 63 characters'],
    ['an uppercase name', job('Build-1'), 'metadata.name', 'RFC 1123 label'],
    ['an invalid label value', job('x', { manager: 'host:8443' }), 'metadata.labels', 'a valid label must be'],
    ['a missing image', job('x', {}, { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'builder' }] } } }), 'spec.template.spec.containers[0].image', 'Required value'],
    ['restartPolicy Always', job('x', {}, { template: { spec: { restartPolicy: 'Always', containers: [{ name: 'b', image: 'i' }] } } }), 'spec.template.spec.restartPolicy', 'Unsupported value'],
    ['a bad quantity', job('x', {}, { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'b', image: 'i', resources: { requests: { memory: 'lots' } } }] } } }), 'spec.template.spec.containers[0].resources.requests.memory', 'quantities must match'],
    ['an unknown dnsPolicy (OpenAPI enum)', job('x', {}, { template: { spec: { restartPolicy: 'Never', dnsPolicy: 'Sometimes', containers: [{ name: 'b', image: 'i' }] } } }), 'spec.template.spec.dnsPolicy', 'supported values'],
    ['an env value that is not a string (OpenAPI type)', job('x', {}, { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'b', image: 'i', env: [{ name: 'N', value: 3 }] }] } } }), 'spec.template.spec.containers[0].env[0].value', 'must be string'],
    ['no containers', job('x', {}, { template: { spec: { restartPolicy: 'Never', containers: [] } } }), 'spec.template.spec.containers', 'Required value'],
  ])('422 Invalid for %s, naming the field', async (_what, body, field, text) => {
    await start();
    const r = await call('POST', JOBS, body);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Invalid', code: 422, details: { group: 'batch', kind: 'Job' } });
    const cause = (r.body.details.causes as Array<{ field: string; message: string }>).find((c) => c.field === field);
    expect(cause?.message).toContain(text);
    expect(r.body.message).toContain(field);
    expect(emulator!.jobs()).toEqual([]);
  });

  it('a ResourceQuota on Jobs: 403 exceeded quota once full; finished Jobs still count', async () => {
    await start({ maxJobs: 2 });
    await call('POST', JOBS, job('one'));
    await call('POST', JOBS, job('two'));
    await eventually(() => emulator!.finishJob('builder', 'one', true));
    const r = await call('POST', JOBS, job('three'));
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ reason: 'Forbidden', code: 403 });
    expect(r.body.message).toBe(
      'jobs.batch "three" is forbidden: exceeded quota: buildman-builders, requested: count/jobs.batch=1, used: count/jobs.batch=2, limited: count/jobs.batch=2',
    );
    emulator!.setMaxJobs(3);
    expect((await call('POST', JOBS, job('three'))).status).toBe(201);
  });
});

describe('listing with label selectors', () => {
  it('supports k=v,k2=v2, k, !k, k!=v and set forms; rejects nonsense with 400', async () => {
    await start();
    await call('POST', JOBS, job('a', { app: 'x', tier: 'one' }));
    await call('POST', JOBS, job('b', { app: 'x', tier: 'two' }));
    await call('POST', JOBS, job('c', { app: 'y' }));
    const names = async (selector: string) =>
      ((await call('GET', `${JOBS}?labelSelector=${encodeURIComponent(selector)}`)).body.items as Array<{ metadata: { name: string } }>).map((i) => i.metadata.name).sort();
    expect(await names('app=x,tier=two')).toEqual(['b']);
    expect(await names('app==x')).toEqual(['a', 'b']);
    expect(await names('tier')).toEqual(['a', 'b']);
    expect(await names('!tier')).toEqual(['c']);
    expect(await names('app!=x')).toEqual(['c']);
    expect(await names('tier in (one,three)')).toEqual(['a']);
    expect(await names('tier notin (one)')).toEqual(['b', 'c']);
    expect(await names('')).toEqual(['a', 'b', 'c']);
    expect((await call('GET', `${JOBS}?labelSelector=${encodeURIComponent('a=b=c')}`)).status).toBe(400);
    const list = (await call('GET', JOBS)).body;
    expect(list).toMatchObject({ kind: 'JobList', apiVersion: 'batch/v1' });
    expect(list.items[0]).not.toHaveProperty('kind');
  });
});

describe('deleting', () => {
  it('without a policy orphans the pods (batch/v1 default) and warns; Background deletes them and kills the worker', async () => {
    const worker = nodeWorker();
    await start({ runWorker: worker.runWorker });
    await call('POST', JOBS, job('orphaned'));
    await call('POST', JOBS, job('collected'));
    await eventually(() => emulator!.liveWorkers === 2);

    const orphan = await call('DELETE', `${JOBS}/orphaned`);
    expect(orphan.status).toBe(200);
    expect(orphan.headers.warning).toContain('child pods are preserved by default');
    expect(emulator!.pods('builder', 'job-name=orphaned')).toHaveLength(1);
    expect(emulator!.liveWorkers).toBe(2);

    const bg = await call('DELETE', `${JOBS}/collected?propagationPolicy=Background`);
    expect(bg.body).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'collected', kind: 'jobs' } });
    expect(emulator!.pods('builder', 'job-name=collected')).toEqual([]);
    await eventually(() => emulator!.liveWorkers === 1);

    // Deleting the orphan's pods by label, as the executors do.
    const pods = await call('DELETE', '/api/v1/namespaces/builder/pods?labelSelector=job-name%3Dorphaned');
    expect(pods.body).toMatchObject({ kind: 'PodList' });
    expect(pods.body.items).toHaveLength(1);
    await eventually(() => emulator!.liveWorkers === 0);
    expect((await call('DELETE', `${JOBS}/collected`)).status).toBe(404);
  });

  it('Foreground (also in a DeleteOptions body) answers with the object marked for deletion', async () => {
    await start();
    await call('POST', JOBS, job('fg'));
    await eventually(() => emulator!.pods('builder', 'job-name=fg').length === 1);
    const r = await call('DELETE', `${JOBS}/fg`, { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' });
    expect(r.body).toMatchObject({ kind: 'Job', metadata: { name: 'fg', finalizers: ['foregroundDeletion'] } });
    expect(r.body.metadata.deletionTimestamp).toBeDefined();
    expect(emulator!.pods('builder')).toEqual([]);
  });
});

describe('the Job controller', () => {
  it('activeDeadlineSeconds fails a Job that runs too long and kills its worker', async () => {
    const worker = nodeWorker();
    await start({ runWorker: worker.runWorker });
    await call('POST', JOBS, job('slow', {}, { activeDeadlineSeconds: 1 }));
    await eventually(() => emulator!.liveWorkers === 1);
    await eventually(() => emulator!.job('builder', 'slow')!.status.conditions?.some((c) => c.type === 'Failed'), 5000);
    expect(emulator!.job('builder', 'slow')!.status.conditions!.at(-1)).toMatchObject({ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' });
    await eventually(() => emulator!.liveWorkers === 0);
  });

  it('a worker that cannot start fails its pod', async () => {
    await start({
      runWorker: () => {
        throw new Error('image pull failed');
      },
      podRetryDelayMs: 5,
    });
    await call('POST', JOBS, job('broken'));
    await eventually(() => emulator!.job('builder', 'broken')!.status.conditions?.some((c) => c.type === 'Failed'));
    expect(emulator!.job('builder', 'broken')!.status.failed).toBe(2);
    expect(emulator!.pods('builder', 'job-name=broken').every((p) => p.status.phase === 'Failed' && p.status.reason?.includes('image pull failed'))).toBe(true);
  });
});

describe('fault injection', () => {
  it('failRequests answers with the code and its Status, for a number of requests and a method', async () => {
    await start();
    emulator!.failRequests(500, { times: 2, method: 'POST' });
    expect((await call('GET', JOBS)).status).toBe(200);
    expect((await call('POST', JOBS, job('a'))).body).toMatchObject({ code: 500, reason: 'InternalError' });
    expect((await call('POST', JOBS, job('a'))).status).toBe(500);
    expect((await call('POST', JOBS, job('a'))).status).toBe(201);
    emulator!.failRequests(503);
    expect((await call('GET', JOBS)).body).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    await emulator!.clearFaults();
    expect((await call('GET', JOBS)).status).toBe(200);
  });

  it('throttle: 429 TooManyRequests with Retry-After', async () => {
    await start();
    emulator!.throttle(7, 1);
    const r = await call('GET', JOBS);
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.body).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 7 } });
    expect((await call('GET', JOBS)).status).toBe(200);
  });

  it('refuseConnections closes the port; acceptConnections opens the same one again', async () => {
    await start();
    const port = emulator!.port;
    await emulator!.refuseConnections();
    await expect(call('GET', JOBS)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await emulator!.acceptConnections();
    expect(emulator!.port).toBe(port);
    expect((await call('GET', JOBS)).status).toBe(200);
  });

  it('delayResponses holds every answer', async () => {
    await start();
    emulator!.delayResponses(300);
    const began = Date.now();
    expect((await call('GET', JOBS)).status).toBe(200);
    expect(Date.now() - began).toBeGreaterThanOrEqual(280);
  });

  it('records every request with its user and status', async () => {
    await start();
    await call('GET', `${JOBS}?labelSelector=a%3Db`);
    await call('GET', JOBS, undefined, 'bad');
    expect(emulator!.requests).toEqual([
      { method: 'GET', path: JOBS, query: { labelSelector: 'a=b' }, user: 'system:serviceaccount:builder:emulated-0', status: 200 },
      { method: 'GET', path: JOBS, query: {}, status: 401 },
    ]);
  });
});
