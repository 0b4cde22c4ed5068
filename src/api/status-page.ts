import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { buildJobMachine } from '../../machines/build-job-machine.js';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { buildIdParams } from './api-schemas.js';
import { renderStatechartSvg } from './status-page-statechart.js';

/** The page's own CSS and scripts, served from the source tree (they are not compiled). */
const ASSET_DIR = join(PACKAGE_ROOT, 'src/api/status-assets');
const ASSET_TYPES: Record<string, string> = {
  'status.css': 'text/css; charset=utf-8',
  'status-common.js': 'text/javascript; charset=utf-8',
  'list-page.js': 'text/javascript; charset=utf-8',
  'build-page.js': 'text/javascript; charset=utf-8',
};
/**
 * The exported diagram (`buildman export-statecharts`), with guards and actions: too dense to read
 * at page width, so the page draws its own compact chart to highlight and links to this one.
 */
const FULL_DIAGRAM = join(PACKAGE_ROOT, 'visualizations/build-job.svg');
/** Everything comes from this server: no CDN, no inline script or style, nothing framed. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The status page: `/` lists builds, `/builds/<id>` shows one build's statechart (current state
 * highlighted), its history as a timeline and its log, following live. The pages are small HTML
 * shells; their scripts read the JSON API (`/api/v1/builds...`), polling it and streaming the log.
 */
export function registerStatusPage(app: FastifyInstance): void {
  const assets = new Map(Object.keys(ASSET_TYPES).map((name) => [name, readFileSync(join(ASSET_DIR, name), 'utf8')]));
  const statechart = renderStatechartSvg(buildJobMachine);
  const fullDiagram = existsSync(FULL_DIAGRAM) ? readFileSync(FULL_DIAGRAM, 'utf8') : undefined;

  const html = (reply: FastifyReply, body: string) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).header('cache-control', 'no-store').send(body);

  app.get('/', async (_request, reply) => html(reply, listPage()));
  app.get<{ Params: { id: string } }>('/builds/:id', { schema: { params: buildIdParams } }, async (request, reply) =>
    html(reply, buildPage(request.params.id, statechart, fullDiagram !== undefined)),
  );
  app.get('/status/statechart.svg', async (_request, reply) => reply.type('image/svg+xml').send(statechart));
  app.get('/status/statechart-full.svg', async (_request, reply) => {
    if (fullDiagram === undefined) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no exported diagram: run buildman export-statecharts' } });
    return reply.type('image/svg+xml').header('content-security-policy', CSP).send(fullDiagram);
  });
  app.get<{ Params: { name: string } }>('/status/assets/:name', async (request, reply) => {
    const body = assets.get(request.params.name);
    if (body === undefined) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no status page asset ${request.params.name}` } });
    return reply.type(ASSET_TYPES[request.params.name]).header('cache-control', 'no-cache').send(body);
  });
}

function shell(title: string, script: string, body: string, attrs = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · buildman</title>
<link rel="stylesheet" href="/status/assets/status.css">
<script type="module" src="/status/assets/${script}"></script>
</head>
<body${attrs}>
<header class="top">
  <a class="brand" href="/">buildman</a>
  <nav><a href="/">Builds</a><a href="/metrics">Metrics</a><a href="/health">Health</a></nav>
  <span id="updated" class="updated" aria-live="polite"></span>
</header>
<main>
${body}
</main>
</body>
</html>
`;
}

function listPage(): string {
  return shell(
    'Builds',
    'list-page.js',
    `<div class="page-head"><h1>Builds</h1><div id="summary" class="summary"></div></div>
<div class="card table-card">
<table class="builds">
  <thead><tr><th>Build</th><th>Repository</th><th>Phase</th><th>State</th><th>Age</th><th>Executor</th><th class="num">Attempt</th></tr></thead>
  <tbody id="builds"></tbody>
</table>
<p id="empty" class="empty" hidden>No builds yet. Submit one with <code>buildman submit</code> or <code>POST /api/v1/builds</code>.</p>
</div>`,
  );
}

function buildPage(id: string, statechart: string, linkFullDiagram: boolean): string {
  return shell(
    `Build ${id.slice(0, 8)}`,
    'build-page.js',
    `<div class="page-head"><h1 id="title">Build <code>${esc(id)}</code></h1><span id="phase" class="phase"></span></div>
<p id="missing" class="empty" hidden></p>
<dl id="meta" class="meta card"></dl>
<section class="card">
  <h2>Statechart <span class="hint">build-job machine · current state highlighted, states already passed through shaded${
    linkFullDiagram ? ' · <a href="/status/statechart-full.svg">full diagram with guards and actions</a>' : ''
  }</span></h2>
  <div class="chart">${statechart}</div>
</section>
<div class="columns">
  <section class="card"><h2>Timeline <span id="timeline-count" class="hint"></span></h2><ol id="timeline" class="timeline"></ol></section>
  <section class="card"><h2>Log <span id="log-status" class="hint"></span></h2><div id="log" class="log" role="log"></div></section>
</div>`,
    ` data-build="${esc(id)}"`,
  );
}
