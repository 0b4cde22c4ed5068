import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildView } from '../../src/api/build-service.js';
import { startHttpServer, type HttpServerHandle } from '../../src/api/http-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';
import { scriptedWorker, startFixture, urlBuild, type Fixture } from '../helpers/manager-fixture.js';
import { colourCounts, decodePng } from './png-pixels.js';

const CHROMIUM = '/usr/bin/chromium';
/** The flags that work for root on a machine without a network (see the machine notes). */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** The current state's fill in status.css (--blue). */
const HIGHLIGHT = '37,99,235';

describe.skipIf(!existsSync(CHROMIUM))('status page in headless Chromium', () => {
  let dir: string;
  let shots: string;
  let fx: Fixture;
  let http: HttpServerHandle;
  let browser: Browser;
  let page: Page;
  let running: BuildView;
  let cancelled: BuildView;
  const offsite: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'buildman-status-'));
    shots = process.env.BUILDMAN_SCREENSHOT_DIR ?? join(dir, 'screenshots');
    mkdirSync(shots, { recursive: true });
    // Each worker phase lasts 4 s: long enough to look at a running build.
    const worker = scriptedWorker(dir, 'full-run', { STEP_DELAY_MS: '4000' });
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 5
EXECUTORS:
- EXECUTOR: popen
  NAME: local
  BUILDER_BINARY_LOCATION: ${worker}
  INSECURE: true
  SETUP_TIME: 60`);
    http = await startHttpServer(fx.manager.service, { host: '127.0.0.1', port: 0, logger: silentLogger() });
    // playwright gives each launch a new empty profile of its own.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('request', (request) => {
      if (!request.url().startsWith(http.url) && !request.url().startsWith('data:')) offsite.push(request.url());
    });

    cancelled = await fx.manager.service.submit(urlBuild('acme/old-site', { tags: ['v1'] }));
    await fx.manager.service.cancel(cancelled.id);
    running = await fx.manager.service.submit(urlBuild('acme/web', { tags: ['latest', 'v2'] }));
  });
  afterAll(async () => {
    await browser?.close();
    await http?.close();
    await fx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the builds with repository, phase, age, executor and attempt', async () => {
    await page.goto(`${http.url}/`);
    const row = page.locator(`tr[data-build="${running.id}"]`);
    await row.locator('.phase-active').waitFor({ timeout: 20_000 });
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[0]).toBe(running.id.slice(0, 8));
    expect(cells[1]).toContain('acme/web');
    expect(cells[2]).toMatch(/^(unpacking|pulling|building|pushing)$/);
    expect(cells[3]).toMatch(/^running\./);
    expect(cells[4]).toMatch(/^\d+ s$/);
    expect(cells[5]).toBe('local');
    expect(cells[6]).toBe('1');
    expect(await page.locator(`tr[data-build="${cancelled.id}"] .phase`).innerText()).toBe('cancelled');
    expect(await page.locator('#summary').innerText()).toMatch(/1 in progress/);
    await page.screenshot({ path: join(shots, 'status-list.png') });
  });

  it('shows a running build: statechart with the running state highlighted, timeline, live log', async () => {
    await page.locator(`tr[data-build="${running.id}"] a`).click();
    await page.waitForURL(`${http.url}/builds/${running.id}`);
    // The current leaf is one of running's children, and running itself is marked as its parent.
    const leaf = page.locator('.statechart .sc-state.sc-child.current');
    await leaf.waitFor({ timeout: 10_000 });
    expect(await leaf.getAttribute('data-state')).toMatch(/^running\.(unpacking|pulling|building|pushing)$/);
    expect(await page.locator('.statechart .sc-state.current').count()).toBe(2);
    await expect.poll(() => page.locator('.statechart .sc-compound.current').getAttribute('data-state')).toBe('running');
    expect(await page.locator('.statechart .sc-state.visited[data-state="queued"]').count()).toBe(1);

    const timeline = page.locator('#timeline li');
    await expect.poll(() => timeline.count()).toBeGreaterThanOrEqual(5);
    const events = await page.locator('#timeline .event-type').allInnerTexts();
    expect(events).toEqual(expect.arrayContaining(['xstate.init', 'job.claimed', 'executor.started', 'worker.registered', 'worker.phase']));

    await page.locator('#log .log-command').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('#log .log-phase').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('#log-status').innerText()).toBe('following…');

    const png = await page.screenshot({ path: join(shots, 'status-build.png'), fullPage: true });
    const pixels = decodePng(png);
    expect(pixels.width).toBe(1280);
    const counts = colourCounts(pixels);
    const total = pixels.width * pixels.height;
    const [background, backgroundCount] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
    // Not blank: many colours, much of the page not the background, and the highlighted box drawn.
    expect(counts.size).toBeGreaterThan(100);
    expect(1 - backgroundCount / total).toBeGreaterThan(0.2);
    expect(background).not.toBe(HIGHLIGHT);
    expect(counts.get(HIGHLIGHT) ?? 0).toBeGreaterThan(1000);
  });

  it('follows the build to its end: complete highlighted, log ended', async () => {
    await page.locator('.statechart .sc-state.current[data-state="complete"]').waitFor({ timeout: 40_000 });
    await expect.poll(() => page.locator('#log-status').innerText(), { timeout: 10_000 }).toMatch(/^build ended \(complete\)/);
    expect(await page.locator('#phase').innerText()).toBe('complete');
    expect(await page.locator('#log .log-phase').last().innerText()).toMatch(/^COMPLETE/);
    await page.screenshot({ path: join(shots, 'status-build-complete.png'), fullPage: true });
  }, 60_000);

  it('loads nothing from outside the server and forbids it by policy', async () => {
    expect(offsite).toEqual([]);
    const res = await fetch(`${http.url}/builds/${running.id}`);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('the pixel check itself tells a picture from a blank page', async () => {
    const blank = await browser.newPage({ viewport: { width: 200, height: 100 } });
    await blank.setContent('<body style="margin:0;background:#fff"></body>');
    const white = colourCounts(decodePng(await blank.screenshot()));
    expect([...white.keys()]).toEqual(['255,255,255']);
    await blank.setContent('<body style="margin:0;background:#fff"><div style="width:50px;height:40px;background:rgb(37,99,235)"></div></body>');
    expect(colourCounts(decodePng(await blank.screenshot())).get(HIGHLIGHT)).toBe(2000);
    await blank.close();
  });
});

describe('status page routes', () => {
  it('answers 400 for a malformed build id', async () => {
    const fx = await startFixture('EXECUTORS:\n- EXECUTOR: popen');
    const http = await startHttpServer(fx.manager.service, { host: '127.0.0.1', port: 0, logger: silentLogger() });
    try {
      expect((await fetch(`${http.url}/builds/..%2Fetc`)).status).toBe(400);
      expect((await fetch(`${http.url}/status/assets/nope.js`)).status).toBe(404);
      const svg = await fetch(`${http.url}/status/statechart.svg`);
      expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      const text = await svg.text();
      for (const state of ['queued', 'scheduling', 'waitingForRegistration', 'running', 'running.building', 'retrying', 'complete', 'error', 'cancelled', 'expired']) {
        expect(text).toContain(`data-state="${state}"`);
      }
      // The exported diagram is linked when `buildman export-statecharts` has written it.
      const exported = existsSync(join(PACKAGE_ROOT, 'visualizations/build-job.svg'));
      expect((await fetch(`${http.url}/status/statechart-full.svg`)).status).toBe(exported ? 200 : 404);
      expect((await (await fetch(`${http.url}/builds/some-build`)).text()).includes('/status/statechart-full.svg')).toBe(exported);
      const css = await fetch(`${http.url}/status/assets/status.css`);
      expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    } finally {
      await http.close();
      await fx.close();
    }
  });
});
