// The build list: every build with repository, phase, age, executor and attempt, refreshed every 2 s.
import { duration, el, every, getJson, phaseBadge, phaseKind } from './status-common.js';

const body = document.getElementById('builds');
const empty = document.getElementById('empty');
const summary = document.getElementById('summary');

function row(build) {
  const age = Date.now() - build.createdAt;
  const took = build.final ? `took ${duration(build.updatedAt - build.createdAt)}` : undefined;
  const link = el('a', { href: `/builds/${encodeURIComponent(build.id)}`, class: 'build-link' }, el('code', {}, build.id.slice(0, 8)));
  const tr = el(
    'tr',
    { 'data-build': build.id, class: build.final ? 'final' : 'live' },
    el('td', {}, link),
    el('td', {}, el('span', { class: 'repo' }, build.repository), ' ', el('span', { class: 'tags' }, build.tags.map((t) => `:${t}`).join(' '))),
    el('td', {}, phaseBadge(build.phase)),
    el('td', {}, el('code', { class: 'state' }, build.state)),
    el('td', { title: took ?? new Date(build.createdAt).toLocaleString() }, duration(age), took ? el('span', { class: 'hint' }, ` · ${took}`) : null),
    el('td', {}, build.executor ?? '—'),
    el('td', { class: 'num' }, build.attempt || '—'),
  );
  // The whole row opens the build, not just its id.
  tr.addEventListener('click', (e) => {
    if (!(e.target instanceof HTMLAnchorElement)) location.href = link.href;
  });
  return tr;
}

function renderSummary(builds) {
  const counts = { active: 0, ok: 0, bad: 0, warn: 0 };
  for (const b of builds) {
    const kind = phaseKind(b.phase);
    if (!b.final) counts.active++;
    else if (kind in counts) counts[kind]++;
  }
  summary.replaceChildren(
    el('span', { class: 'count count-active' }, `${counts.active} in progress`),
    el('span', { class: 'count count-ok' }, `${counts.ok} complete`),
    el('span', { class: 'count count-bad' }, `${counts.bad} failed`),
    el('span', { class: 'count count-warn' }, `${counts.warn} cancelled`),
  );
}

every(2000, async () => {
  const { builds } = await getJson('/api/v1/builds?limit=200');
  body.replaceChildren(...builds.map(row));
  empty.hidden = builds.length > 0;
  renderSummary(builds);
  return false;
});
