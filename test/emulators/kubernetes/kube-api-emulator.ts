import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { JobController, randomSuffix, type PropagationPolicy, type RunWorker } from './job-controller.js';
import { validateJob } from './job-validation.js';
import { clone, type Job, type Pod } from './kube-objects.js';
import {
  alreadyExists,
  badRequest,
  failure,
  forbidden,
  invalid,
  methodNotAllowed,
  noRoute,
  notFound,
  quotaExceeded,
  statusForCode,
  StatusError,
  success,
  unauthorized,
} from './kube-status.js';
import { parseLabelSelector } from './label-selector.js';
import { TestPki } from './test-pki.js';

export type { RunWorker } from './job-controller.js';
export type { Job as EmulatedJob, Pod as EmulatedPod } from './kube-objects.js';

/** The token every emulator accepts unless `tokens` says otherwise; it may use every namespace. */
export const DEFAULT_EMULATOR_TOKEN = 'buildman-emulator-token';

/** Namespaces an identity may use: `'*'` for all. */
export type NamespaceAccess = '*' | readonly string[];

export interface KubeApiEmulatorOptions {
  /** Bearer tokens and the namespaces each may use. Default: `{ [DEFAULT_EMULATOR_TOKEN]: '*' }`. */
  tokens?: Record<string, NamespaceAccess>;
  /** Client-certificate users (the certificate's CN, signed by `pki.ca`) and their namespaces. Default none. */
  clientCertUsers?: Record<string, NamespaceAccess>;
  /** Serve plain HTTP with no authentication (the old insecure port Quay talks to without credentials). */
  plainHttp?: boolean;
  /** The PKI to serve with (its CA signs the server and client certificates); made and removed by the emulator if absent. */
  pki?: TestPki;
  /** ResourceQuota `count/jobs.batch` per namespace: creating one more Job is a 403 `exceeded quota`. */
  maxJobs?: number;
  /** Starts a real worker process for each pod (see {@link RunWorker}); without it pods just stay Running. */
  runWorker?: RunWorker;
  /** SIGTERM → SIGKILL delay for a deleted pod's worker. Default 2000 ms. */
  workerStopGraceMs?: number;
  /** Delay before a failed pod is replaced (within backoffLimit). Default 100 ms. */
  podRetryDelayMs?: number;
}

/** One request as the emulator saw it, for assertions. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Who it authenticated as (`anonymous` over plain HTTP, absent when it was refused with 401). */
  user?: string;
  status?: number;
}

interface InjectedFailure {
  code: number;
  remaining: number;
  retryAfterSeconds: number;
  method?: string;
}

interface Caller {
  user: string;
  access: NamespaceAccess;
}

const JOBS_PATH = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+)(\/status)?)?$/;
const ALL_JOBS_PATH = /^\/apis\/batch\/v1\/jobs$/;
const PODS_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?$/;
const MAX_BODY_BYTES = 3 * 1024 * 1024;
const ORPHAN_WARNING =
  '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"';

/**
 * A Kubernetes API server for tests, speaking what the executors use of batch/v1 Jobs and core/v1
 * Pods over HTTPS (or plain HTTP), with the real server's authentication (bearer tokens, client
 * certificates), RBAC-like namespace rights, Status errors, schema validation of Jobs, a
 * ResourceQuota, a Job controller that runs real worker processes, and fault injection.
 */
export class KubeApiEmulator {
  readonly requests: RecordedRequest[] = [];
  readonly pki: TestPki | undefined;
  private readonly server: Server;
  private readonly controller: JobController;
  private readonly sockets = new Set<Socket>();
  private readonly ownsPki: boolean;
  private readonly tokens: Map<string, Caller>;
  private readonly certUsers: Record<string, NamespaceAccess>;
  private listenPort = 0;
  private delayMs = 0;
  private injected: InjectedFailure[] = [];
  private maxJobs: number | undefined;
  private readonly pending = new Set<NodeJS.Timeout>();

  private constructor(private readonly opts: KubeApiEmulatorOptions) {
    this.ownsPki = !opts.plainHttp && !opts.pki;
    this.pki = opts.plainHttp ? undefined : (opts.pki ?? TestPki.create());
    this.maxJobs = opts.maxJobs;
    this.tokens = new Map(
      Object.entries(opts.tokens ?? { [DEFAULT_EMULATOR_TOKEN]: '*' }).map(([token, access], i) => [token, { user: `system:serviceaccount:builder:emulated-${i}`, access }]),
    );
    this.certUsers = opts.clientCertUsers ?? {};
    this.controller = new JobController({
      runWorker: opts.runWorker,
      workerStopGraceMs: opts.workerStopGraceMs ?? 2000,
      podRetryDelayMs: opts.podRetryDelayMs ?? 100,
    });
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = this.pki
      ? createHttpsServer({ key: this.pki.server.key, cert: this.pki.server.cert, ca: [this.pki.ca.cert], requestCert: true, rejectUnauthorized: false }, handler)
      : createHttpServer(handler);
    // A client that rejects our certificate aborts the handshake: normal in the TLS tests.
    this.server.on('tlsClientError', () => {});
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  static async start(opts: KubeApiEmulatorOptions = {}): Promise<KubeApiEmulator> {
    const emulator = new KubeApiEmulator(opts);
    await emulator.listen(0);
    return emulator;
  }

  /** `127.0.0.1:<port>`: the value for `K8S_API_SERVER`. */
  get address(): string {
    return `127.0.0.1:${this.listenPort}`;
  }

  get port(): number {
    return this.listenPort;
  }

  get url(): string {
    return `${this.pki ? 'https' : 'http'}://${this.address}`;
  }

  /** The cluster CA file: the value for `K8S_API_TLS_CA`. */
  get caFile(): string {
    if (!this.pki) throw new Error('a plain-HTTP emulator has no CA');
    return this.pki.ca.certFile;
  }

  // ---- state, for assertions (copies) ----

  jobs(namespace?: string, labelSelector?: string): Job[] {
    return this.controller.listJobs(namespace, parseLabelSelector(labelSelector)).map(clone);
  }

  job(namespace: string, name: string): Job | undefined {
    const job = this.controller.getJob(namespace, name);
    return job && clone(job);
  }

  pods(namespace?: string, labelSelector?: string): Pod[] {
    return this.controller.listPods(namespace, parseLabelSelector(labelSelector)).map(clone);
  }

  /** Finishes a Job's running pod as if its container exited (for Jobs run without `runWorker`). */
  finishJob(namespace: string, name: string, succeeded = true): boolean {
    return this.controller.finishPod(namespace, name, succeeded);
  }

  /** Worker processes still alive. */
  get liveWorkers(): number {
    return this.controller.liveWorkers;
  }

  /** Resolves once every worker process has exited. */
  workersExited(): Promise<void> {
    return this.controller.workersExited();
  }

  // ---- faults ----

  /** Stops listening and drops every open connection: clients get ECONNREFUSED until {@link acceptConnections}. */
  async refuseConnections(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Listens again, on the same port. */
  async acceptConnections(): Promise<void> {
    if (!this.server.listening) await this.listen(this.listenPort);
  }

  /** Holds every response for `ms` (0 to stop): past the client's timeout, a request times out. */
  delayResponses(ms: number): void {
    this.delayMs = ms;
  }

  /**
   * Answers the next `times` requests (default: every request until {@link clearFaults}) with
   * `code` and the Status the API server sends for it (500 InternalError, 503 ServiceUnavailable,
   * 429 TooManyRequests with Retry-After, …), optionally only for one HTTP method.
   */
  failRequests(code: number, opts: { times?: number; retryAfterSeconds?: number; method?: string } = {}): void {
    this.injected.push({ code, remaining: opts.times ?? Infinity, retryAfterSeconds: opts.retryAfterSeconds ?? 1, method: opts.method?.toUpperCase() });
  }

  /** API priority and fairness rejecting requests: 429 with `Retry-After`. */
  throttle(retryAfterSeconds = 1, times?: number): void {
    this.failRequests(429, { retryAfterSeconds, times });
  }

  /** The namespace's ResourceQuota on Jobs (`undefined` removes it). */
  setMaxJobs(maxJobs: number | undefined): void {
    this.maxJobs = maxJobs;
  }

  /** Removes delays and injected failures, and listens again if refusing. */
  async clearFaults(): Promise<void> {
    this.delayMs = 0;
    this.injected = [];
    await this.acceptConnections();
  }

  async close(): Promise<void> {
    for (const t of this.pending) clearTimeout(t);
    await this.refuseConnections();
    await this.controller.close();
    if (this.ownsPki) this.pki?.remove();
  }

  // ---- HTTP ----

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.listenPort = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams) };
    this.requests.push(record);
    try {
      if (this.delayMs > 0) await this.sleep(this.delayMs);
      this.injectedFailure(record.method);
      const caller = this.authenticate(req);
      record.user = caller.user;
      const body = await readBody(req);
      const { code, payload, headers } = this.route(record.method, url, body, caller);
      record.status = code;
      send(res, code, payload, headers);
    } catch (err) {
      const e = err instanceof StatusError ? err : failure(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
      record.status = e.status.code;
      send(res, e.status.code, e.status, e.headers);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(t);
        resolve();
      }, ms);
      this.pending.add(t);
    });
  }

  private injectedFailure(method: string): void {
    const fault = this.injected.find((f) => f.remaining > 0 && (!f.method || f.method === method));
    if (!fault) return;
    fault.remaining--;
    throw statusForCode(fault.code, fault.retryAfterSeconds);
  }

  /** Bearer token first (a wrong one is a 401 even with a good certificate), then the client certificate. */
  private authenticate(req: IncomingMessage): Caller {
    if (!this.pki) return { user: 'system:anonymous', access: '*' };
    const header = req.headers.authorization;
    if (header) {
      const m = header.match(/^Bearer\s+(\S+)$/i);
      const caller = m ? this.tokens.get(m[1]) : undefined;
      if (!caller) throw unauthorized();
      return caller;
    }
    const socket = req.socket as TLSSocket;
    if (socket.authorized) {
      const cn = socket.getPeerCertificate()?.subject?.CN;
      const user = Array.isArray(cn) ? cn[0] : cn;
      if (user) return { user, access: this.certUsers[user] ?? [] };
    }
    throw unauthorized();
  }

  private authorize(caller: Caller, verb: string, resource: string, group: string, namespace: string | undefined): void {
    const ok = caller.access === '*' || (namespace !== undefined && caller.access.includes(namespace));
    if (!ok) throw forbidden(caller.user, verb, resource, group, namespace ?? '');
  }

  private route(method: string, url: URL, body: string, caller: Caller): { code: number; payload: unknown; headers?: Record<string, string> } {
    const q = url.searchParams;
    if (q.get('watch') === 'true' || q.get('watch') === '1') throw badRequest('watch is not supported by this emulator');
    let m: RegExpMatchArray | null;
    if ((m = url.pathname.match(JOBS_PATH))) {
      const [, ns, name, status] = m.map((p) => (p === undefined ? p : decodeURIComponent(p)));
      if (status) {
        if (method !== 'GET') throw methodNotAllowed(method);
        this.authorize(caller, 'get', 'jobs/status', 'batch', ns);
        return { code: 200, payload: this.readJob(ns, name!) };
      }
      if (!name) {
        if (method === 'GET') {
          this.authorize(caller, 'list', 'jobs', 'batch', ns);
          return { code: 200, payload: this.jobList(ns, q) };
        }
        if (method === 'POST') {
          this.authorize(caller, 'create', 'jobs', 'batch', ns);
          return { code: 201, payload: this.createJob(ns, body) };
        }
        throw methodNotAllowed(method);
      }
      if (method === 'GET') {
        this.authorize(caller, 'get', 'jobs', 'batch', ns);
        return { code: 200, payload: this.readJob(ns, name) };
      }
      if (method === 'DELETE') {
        this.authorize(caller, 'delete', 'jobs', 'batch', ns);
        return this.deleteJob(ns, name, q, body);
      }
      throw methodNotAllowed(method);
    }
    if (ALL_JOBS_PATH.test(url.pathname)) {
      if (method !== 'GET') throw methodNotAllowed(method);
      this.authorize(caller, 'list', 'jobs', 'batch', undefined);
      return { code: 200, payload: this.jobList(undefined, q) };
    }
    if ((m = url.pathname.match(PODS_PATH))) {
      const [, ns, name] = m.map((p) => (p === undefined ? p : decodeURIComponent(p)));
      if (!name) {
        if (method === 'GET') {
          this.authorize(caller, 'list', 'pods', '', ns);
          return { code: 200, payload: this.podList(ns, q, false) };
        }
        if (method === 'DELETE') {
          this.authorize(caller, 'deletecollection', 'pods', '', ns);
          return { code: 200, payload: this.podList(ns, q, true) };
        }
        throw methodNotAllowed(method);
      }
      if (method === 'GET') {
        this.authorize(caller, 'get', 'pods', '', ns);
        const pod = this.controller.getPod(ns, name);
        if (!pod) throw notFound('pods', '', name);
        return { code: 200, payload: pod };
      }
      if (method === 'DELETE') {
        this.authorize(caller, 'delete', 'pods', '', ns);
        const pod = this.controller.deletePod(ns, name);
        if (!pod) throw notFound('pods', '', name);
        return { code: 200, payload: pod };
      }
      throw methodNotAllowed(method);
    }
    throw noRoute();
  }

  private readJob(ns: string, name: string): Job {
    const job = this.controller.getJob(ns, name);
    if (!job) throw notFound('jobs', 'batch', name);
    return job;
  }

  private jobList(ns: string | undefined, q: URLSearchParams): unknown {
    let items = this.controller.listJobs(ns, parseLabelSelector(q.get('labelSelector')));
    items = filterByField(items, q.get('fieldSelector'));
    return { kind: 'JobList', apiVersion: 'batch/v1', metadata: { resourceVersion: this.controller.currentResourceVersion }, items: items.map(listItem) };
  }

  /** GET lists pods; DELETE deletes the selected ones (their workers are killed) and lists what it deleted. */
  private podList(ns: string, q: URLSearchParams, remove: boolean): unknown {
    let items = this.controller.listPods(ns, parseLabelSelector(q.get('labelSelector')));
    items = filterByField(items, q.get('fieldSelector'));
    if (remove) items = items.map((p) => this.controller.deletePod(ns, p.metadata.name!)!);
    return { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: this.controller.currentResourceVersion }, items: items.map(listItem) };
  }

  /** In the API server's order: decode, defaults, validation (422), quota admission (403), storage (409). */
  private createJob(ns: string, body: string): Job {
    let job: Job;
    try {
      job = JSON.parse(body) as Job;
    } catch (err) {
      throw badRequest(`the body of the request was in an unknown format: ${(err as Error).message}`);
    }
    if (!job || typeof job !== 'object' || job.kind !== 'Job' || job.apiVersion !== 'batch/v1')
      throw badRequest(`the API version in the data (${String(job?.apiVersion)}) and kind (${String(job?.kind)}) do not match batch/v1 Job`);
    job.metadata ??= {};
    if (job.metadata.namespace && job.metadata.namespace !== ns)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    job.metadata.namespace = ns;
    if (!job.metadata.name && job.metadata.generateName) job.metadata.name = `${job.metadata.generateName}${randomSuffix()}`;
    delete job.metadata.uid;
    delete job.metadata.resourceVersion;
    delete (job as Partial<Job>).status;

    const causes = validateJob(job);
    if (causes.length > 0) throw invalid('Job', 'batch', job.metadata.name ?? '', causes);
    const name = job.metadata.name!;
    if (this.maxJobs !== undefined) {
      const used = this.controller.countJobs(ns);
      if (used >= this.maxJobs) throw quotaExceeded('jobs', 'batch', name, 'buildman-builders', used, this.maxJobs);
    }
    if (this.controller.getJob(ns, name)) throw alreadyExists('jobs', 'batch', name);
    return this.controller.createJob(job);
  }

  private deleteJob(ns: string, name: string, q: URLSearchParams, body: string): { code: number; payload: unknown; headers?: Record<string, string> } {
    let options: { propagationPolicy?: string; orphanDependents?: boolean } = {};
    if (body.trim()) {
      try {
        options = JSON.parse(body);
      } catch {
        throw badRequest('the body of the request was in an unknown format');
      }
    }
    const requested = q.get('propagationPolicy') ?? options.propagationPolicy ?? (q.get('orphanDependents') === 'false' || options.orphanDependents === false ? 'Background' : undefined);
    if (requested !== undefined && !['Orphan', 'Background', 'Foreground'].includes(requested))
      throw invalid('DeleteOptions', 'meta.k8s.io', '', [{ reason: 'FieldValueNotSupported', field: 'propagationPolicy', message: `Unsupported value: "${requested}": supported values: "Foreground", "Background", "Orphan", "nil"` }]);
    const policy = (requested ?? 'Orphan') as PropagationPolicy;
    const job = this.controller.deleteJob(ns, name, policy);
    if (!job) throw notFound('jobs', 'batch', name);
    const headers: Record<string, string> = requested === undefined ? { Warning: ORPHAN_WARNING } : {};
    // Foreground answers with the object, marked for deletion; the others with a Status.
    if (policy === 'Foreground') return { code: 200, payload: { ...job, metadata: { ...job.metadata, finalizers: ['foregroundDeletion'] } }, headers };
    return { code: 200, payload: success({ name, group: 'batch', kind: 'jobs', uid: job.metadata.uid }), headers };
  }
}

/** Only `metadata.name` and `metadata.namespace` field selectors, which is what matters here. */
function filterByField<T extends Job | Pod>(items: T[], selector: string | null): T[] {
  if (!selector) return items;
  return selector.split(',').reduce((acc, part) => {
    const m = part.match(/^(metadata\.name|metadata\.namespace)(==|=|!=)(.*)$/);
    if (!m) throw badRequest(`"${part}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
    const field = m[1] === 'metadata.name' ? 'name' : 'namespace';
    return acc.filter((i) => (i.metadata[field] === m[3]) === (m[2] !== '!='));
  }, items);
}

/** List items carry no kind/apiVersion of their own. */
function listItem<T extends Job | Pod>(item: T): Omit<T, 'kind' | 'apiVersion'> {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = item;
  return rest;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(failure(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, code: number, payload: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(payload);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
