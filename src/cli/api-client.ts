import type { HistoryEntry } from '../persistence/actor-store.js';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { SubmitJsonBody } from '../api/api-schemas.js';
import type { BuildView } from '../api/build-service.js';
import type { LogEntry } from '../builds/build-record.js';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8686';

/** An error answer from the API: `{ error: { code, message, field? } }`. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The server did not answer (refused, no route, DNS, reset). */
export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export interface UploadParams {
  repository: string;
  tags?: string[];
  dockerfile_path?: string;
  context?: string;
}

/** One line of a followed log: an entry, or the end with the final build. */
export type FollowLine = { index: number; entry: LogEntry } | { end: true; build: BuildView };

/** A small client for the buildman HTTP API, on Node's fetch. */
export class ApiClient {
  readonly baseUrl: string;

  constructor(baseUrl: string) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new CliError(`--server must be a URL like ${DEFAULT_SERVER_URL}, not "${baseUrl}"`, ExitCode.USAGE);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError(`--server must be an http:// or https:// URL, not "${baseUrl}"`, ExitCode.USAGE);
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** The JSON form of a submission (the upload form goes through `submitUpload`). */
  submit(body: SubmitJsonBody): Promise<BuildView> {
    return this.json('POST', '/api/v1/builds', { body: JSON.stringify(body), contentType: 'application/json' });
  }

  /** Streams a tar or tar.gz context; `mediaType` says which. */
  submitUpload(archive: AsyncIterable<Uint8Array>, mediaType: string, params: UploadParams): Promise<BuildView> {
    const query = new URLSearchParams({ repository: params.repository });
    for (const tag of params.tags ?? []) query.append('tag', tag);
    if (params.dockerfile_path) query.set('dockerfile_path', params.dockerfile_path);
    if (params.context) query.set('context', params.context);
    return this.json('POST', `/api/v1/builds?${query}`, { body: archive, contentType: mediaType });
  }

  get(id: string): Promise<BuildView> {
    return this.json('GET', `/api/v1/builds/${encodeURIComponent(id)}`);
  }

  async history(id: string): Promise<HistoryEntry[]> {
    return (await this.json<{ history: HistoryEntry[] }>('GET', `/api/v1/builds/${encodeURIComponent(id)}/history`)).history;
  }

  async list(limit?: number): Promise<BuildView[]> {
    const query = limit === undefined ? '' : `?limit=${limit}`;
    return (await this.json<{ builds: BuildView[] }>('GET', `/api/v1/builds${query}`)).builds;
  }

  logs(id: string, start = 0): Promise<{ start: number; total: number; logs: LogEntry[] }> {
    return this.json('GET', `/api/v1/builds/${encodeURIComponent(id)}/logs?start=${start}`);
  }

  cancel(id: string): Promise<BuildView> {
    return this.json('POST', `/api/v1/builds/${encodeURIComponent(id)}/cancel`);
  }

  /** The build's log from `start`, live, until the end line (or until the connection drops). */
  async *followLogs(id: string, start = 0): AsyncGenerator<FollowLine> {
    const res = await this.request('GET', `/api/v1/builds/${encodeURIComponent(id)}/logs?start=${start}&follow=true`);
    if (!res.body) return;
    const body = Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>);
    const lines = createInterface({ input: body, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim()) yield JSON.parse(line) as FollowLine;
      }
    } catch (err) {
      throw new UnreachableError(`lost the connection to buildman at ${this.baseUrl} while following build ${id}: ${reasonOf(err)}`);
    } finally {
      // Also when the caller stops early: hang up, so the server stops following too.
      lines.close();
      body.destroy();
    }
  }

  private async json<T>(method: string, path: string, init?: { body: RequestInit['body']; contentType: string }): Promise<T> {
    const res = await this.request(method, path, init);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(`${this.baseUrl} answered ${method} ${path} with something other than JSON; is it a buildman server?`, res.status, 'NOT_JSON');
    }
  }

  private async request(method: string, path: string, init?: { body: RequestInit['body']; contentType: string }): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        body: init?.body,
        headers: init ? { 'content-type': init.contentType } : undefined,
        // Needed for a streamed (async iterable) body.
        duplex: 'half',
      } as RequestInit);
    } catch (err) {
      throw new UnreachableError(
        `cannot reach buildman at ${this.baseUrl}: ${reasonOf(err)} (is \`buildman serve\` running? set --server or BUILDMAN_URL)`,
      );
    }
    if (res.ok) return res;

    const text = await res.text().catch(() => '');
    let error: { code?: string; message?: string; field?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      // Not our error shape (a proxy, another server): report the status and the start of the body.
    }
    if (error?.message) throw new ApiError(error.message, res.status, error.code ?? `HTTP_${res.status}`, error.field);
    throw new ApiError(`${this.baseUrl} answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`, res.status, `HTTP_${res.status}`);
  }
}

/** fetch wraps the socket error in `cause` (an AggregateError when several addresses were tried). */
function reasonOf(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause ?? err;
  const { message, code } = (cause ?? {}) as { message?: string; code?: string };
  if (message) return message;
  if (code) return code;
  return err instanceof Error ? err.message : String(err);
}
