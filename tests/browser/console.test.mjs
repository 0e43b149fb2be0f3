// Browser tests of the operations console, in Debian's headless Chromium, against the running stack.
//
// Starts its own console (the built binary, on a free port) so it depends on no console started
// elsewhere. Plain node, no test framework: `node console.test.mjs` runs the page, drain and launch
// tests; `node console.test.mjs --drill-kill` runs only the kill drills (it SIGKILLs eu's Kafka, then
// all of region eu, through ./dev and heals each afterwards). Screenshots and the consoles' logs go
// to artifacts/; the first screen with eu's Kafka down is artifacts/console-eu-kafka-down.png.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const ARTIFACTS = join(HERE, 'artifacts');
const BIN_DIR = resolve(ROOT, process.env.ORDERS_BIN_DIR ?? 'target/debug');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** Time for the stack to settle into green before a test starts (others may have just poked it). */
const SETTLE_MS = 60_000;
/** The first screen the incident view must fit. */
const FIRST_SCREEN = { width: 1400, height: 900 };

// ------------------------------------------------------------------ the stack, as files describe it

/** Every region of deploy/regions.conf, in file order: the test hard-codes no region list. */
function regions() {
  const file = process.env.ORDERS_REGIONS_FILE ?? join(ROOT, 'deploy/regions.conf');
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [name, kafka, cassandra, apiPort, workerPort] = line.split(/\s+/);
      return {
        name,
        kafka,
        cassandra: `${cassandra}:9042`,
        api: `http://127.0.0.1:${apiPort}`,
        worker: `http://127.0.0.1:${workerPort}`,
      };
    });
}

function consoleTargets() {
  return regions()
    .map((r) => `${r.name}=api@${r.api},worker@${r.worker}`)
    .join(';');
}

function credential(name) {
  const file = join(ROOT, '.dev/credentials.env');
  const line = readFileSync(file, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`no ${name} in ${file}`);
  return line.slice(name.length + 1).trim();
}

const opsToken = () => credential('OPS_TOKEN');

// ------------------------------------------------------------------ helpers

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Polls `probe` until it returns something truthy; fails with what it last saw. */
async function waitFor(what, timeoutMs, probe) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last && last.ok !== false) return last;
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(250);
  }
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** `extraTargets` (`region=service@url`) are polled too, e.g. an extra API a test started. */
async function startConsole(extraTargets = '', logName = 'console.log') {
  const binary = join(BIN_DIR, 'orders-console');
  if (!existsSync(binary)) throw new Error(`no console binary at ${binary} (cargo build -p orders-console)`);
  const web = join(ROOT, 'services/console/web/dist');
  if (!existsSync(join(web, 'index.html'))) throw new Error(`the page is not built in ${web} (npm run build)`);
  const port = Number(process.env.CONSOLE_TEST_PORT ?? (await freePort()));
  const url = `http://127.0.0.1:${port}`;
  const log = createWriteStream(join(ARTIFACTS, logName));
  const child = spawn(binary, [], {
    cwd: ROOT,
    env: {
      ...process.env,
      ORDERS_LISTEN: `127.0.0.1:${port}`,
      ORDERS_CONSOLE_TARGETS: extraTargets ? `${consoleTargets()};${extraTargets}` : consoleTargets(),
      ORDERS_HEALTH_MODEL: join(ROOT, 'deploy/health-model.yaml'),
      ORDERS_CONSOLE_WEB: web,
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? code));
  await waitFor('the console to be ready', 20_000, async () => {
    if (exited !== null) throw new Error(`the console exited (${exited}); see artifacts/console.log`);
    const response = await fetch(`${url}/health/ready`);
    return response.ok;
  });
  const stop = async () => {
    if (exited !== null) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 50 && exited === null; i++) await sleep(100);
    if (exited === null) child.kill('SIGKILL');
  };
  return { url, stop };
}

async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'orders-console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1000 },
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/** What the page shows for a region. */
async function regionOnPage(page, name) {
  const card = page.getByTestId(`region-${name}`);
  if ((await card.count()) === 0) return { present: false };
  return {
    present: true,
    color: await card.getAttribute('data-color'),
    reason: await page.getByTestId(`region-${name}-reason`).textContent(),
  };
}

async function globalOnPage(page) {
  const status = page.getByTestId('global-status');
  return { color: await status.getAttribute('data-color'), text: await status.textContent() };
}

/** Waits until global and every region are green, as a test's starting point. */
async function waitAllGreen(page, timeoutMs) {
  return waitFor('global and every region green', timeoutMs, async () => {
    const seen = { global: await globalOnPage(page) };
    for (const { name } of regions()) seen[name] = await regionOnPage(page, name);
    const ok = seen.global.color === 'green' && regions().every(({ name }) => seen[name].color === 'green');
    return { ok, ...seen };
  });
}

/** Undrains every service of a region directly, bypassing page and console: the safety net. */
async function undrainDirectly(regionName, token) {
  const region = regions().find((r) => r.name === regionName);
  for (const base of [region.api, region.worker]) {
    try {
      await fetch(`${base}/admin/undrain`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    } catch (error) {
      console.error(`    could not undrain ${base}: ${error.message}`);
    }
  }
}

/** A second API of a region with its own limits, pointed at the running Cassandra and Kafka. */
async function startExtraApi(regionName, env) {
  const region = regions().find((r) => r.name === regionName);
  const binary = join(BIN_DIR, 'orders-api');
  if (!existsSync(binary)) throw new Error(`no API binary at ${binary}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = createWriteStream(join(ARTIFACTS, 'extra-api.log'));
  const child = spawn(binary, [], {
    cwd: ROOT,
    env: {
      ...process.env,
      ORDERS_REGION: region.name,
      ORDERS_LISTEN: `127.0.0.1:${port}`,
      ORDERS_CASSANDRA: region.cassandra,
      ORDERS_KAFKA: region.kafka,
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? code));
  const stop = async () => {
    if (exited !== null) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 50 && exited === null; i++) await sleep(100);
    if (exited === null) child.kill('SIGKILL');
  };
  try {
    await waitFor('the extra API to be ready', 60_000, async () => {
      if (exited !== null) throw new Error(`the extra API exited (${exited}); see artifacts/extra-api.log`);
      return (await fetch(`${url}/health/ready`)).ok;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** Places `count` orders at once; counts the answers by status. */
async function burst(base, count, statuses) {
  const key = credential('API_KEY');
  const order = () =>
    fetch(`${base}/v1/orders`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${key}`,
        'Idempotency-Key': randomUUID(),
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({
        customer_id: randomUUID(),
        items: [{ sku: 'MUG-LOGO', quantity: 1 }],
        shipping_address: { name: 'Ada', line1: '1 Main St', city: 'Berlin', postal_code: '10115', country: 'DE' },
      }),
    }).then(
      (response) => String(response.status),
      () => 'error',
    );
  for (const status of await Promise.all(Array.from({ length: count }, order))) {
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
}

/** Fails unless the element's box lies inside the first screen, with nothing to scroll to. */
async function onFirstScreen(page, testid) {
  const box = await page.getByTestId(testid).boundingBox();
  if (!box) throw new Error(`${testid} is not drawn`);
  const bottom = box.y + box.height;
  const scrolled = await page.evaluate(() => window.scrollY);
  if (scrolled !== 0 || bottom > FIRST_SCREEN.height || box.x + box.width > FIRST_SCREEN.width) {
    throw new Error(
      `${testid} does not fit the first ${FIRST_SCREEN.width}x${FIRST_SCREEN.height} screen: ` +
        `bottom at ${Math.round(bottom)} px, right at ${Math.round(box.x + box.width)} px, scrolled ${scrolled}`,
    );
  }
  return Math.round(bottom);
}

/** Visible text only: closed <details> do not count. */
const visibleText = (page) => page.evaluate(() => document.body.innerText);

function occurrences(text, part) {
  return text.split(part).length - 1;
}

// ------------------------------------------------------------------ tests

async function theConsoleShowsEveryRegionGreenUnderAGreenGlobalStatus({ page, url }) {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await waitFor('the global status to be drawn', 10_000, async () => (await globalOnPage(page)).color !== 'unknown');
  for (const { name } of regions()) {
    await waitFor(`region ${name} to render`, 10_000, async () => (await regionOnPage(page, name)).present);
    for (const button of [`drain-${name}`, `undrain-${name}`]) {
      if ((await page.getByTestId(button).count()) !== 1) throw new Error(`no ${button} button`);
    }
  }
  if ((await page.getByTestId('history').count()) !== 1) throw new Error('no history list');
  if ((await page.getByTestId('incidents').count()) !== 1) throw new Error('no incident timeline');
  await waitAllGreen(page, SETTLE_MS);
  await page.setViewportSize(FIRST_SCREEN);
  await waitFor('the root causes to say there is none', 10_000, async () => (await page.getByTestId('no-root-cause').count()) === 1);
  for (const { name } of regions()) {
    const bottom = await onFirstScreen(page, `region-${name}`);
    console.log(`    region ${name} ends at ${bottom} px of ${FIRST_SCREEN.height}`);
    await waitFor(`the launch panel to show ${name}`, 15_000, async () => (await page.getByTestId(`launch-${name}-shed`).count()) === 1);
  }
  if ((await page.getByTestId('launch-skus').count()) !== 1) throw new Error('no allotment table in the launch panel');
  // Charts fill after two scrapes (5 s apart): wait for the placement chart to exist, then shoot.
  await waitFor('the first chart', 15_000, async () => (await page.locator('.chart .uplot').count()) > 0);
  await page.screenshot({ path: join(ARTIFACTS, 'console-green.png'), fullPage: true });
  await page.screenshot({ path: join(ARTIFACTS, 'console-green-first-screen.png') });
  const html = await page.content();
  if (html.includes(opsToken())) throw new Error('the operator token appears in the page');
  if (errors.length) throw new Error(`the page threw: ${errors.join('; ')}`);
}

async function drainingARegionTurnsItYellowForDrainingAndUndrainingTurnsItGreen({ page, url }) {
  const token = opsToken();
  let prompts = 0;
  page.on('dialog', (dialog) => {
    prompts += 1;
    dialog.accept(token);
  });
  await page.goto(url);
  await waitAllGreen(page, SETTLE_MS);
  try {
    await page.getByTestId('drain-eu').click();
    const drained = await waitFor('eu to show draining', 10_000, async () => {
      const eu = await regionOnPage(page, 'eu');
      return { ok: ['yellow', 'red'].includes(eu.color) && /draining/i.test(eu.reason), ...eu };
    });
    if (prompts < 1) throw new Error('drain did not ask for the operator token');
    console.log(`    eu ${drained.color}: ${drained.reason.slice(0, 120)}`);
    await page.screenshot({ path: join(ARTIFACTS, 'console-eu-drained.png'), fullPage: true });
    await page.getByTestId('undrain-eu').click();
    await waitFor('eu green again after undrain', SETTLE_MS, async () => (await regionOnPage(page, 'eu')).color === 'green');
    await waitFor('the history to show the drain', 10_000, async () =>
      /draining/.test(await page.getByTestId('history').textContent()),
    );
  } finally {
    await undrainDirectly('eu', token);
  }
}

async function theLaunchPanelShowsShedAndRateLimitedCountsRisingDuringAnOverload({ page }) {
  // An extra eu API that admits one request at a time and 20 per second per client: a burst of 60
  // placements is rate-limited (429) past the first 20, and most of those 20 find no free slot (503).
  const api = await startExtraApi('eu', {
    ORDERS_MAX_IN_FLIGHT: '1',
    ORDERS_QUEUE_WAIT_MS: '0',
    ORDERS_RATE_LIMIT: '20/s,20',
    ORDERS_OPS_TOKEN: opsToken(),
  });
  let launchConsole = null;
  try {
    launchConsole = await startConsole(`eu=api-launch@${api.url}`, 'console-launch.log');
    await page.setViewportSize(FIRST_SCREEN);
    await page.goto(launchConsole.url);
    const figure = (what) => page.getByTestId(`launch-eu-${what}`);
    await waitFor('the launch panel to show eu', 20_000, async () => (await figure('shed').count()) === 1);
    const totals = async () => ({
      shed: Number(await figure('shed').getAttribute('data-total')),
      rateLimited: Number(await figure('rate-limited').getAttribute('data-total')),
    });
    const before = await totals();
    const statuses = {};
    let lastBurst = 0;
    const seen = await waitFor('shed and rate-limited totals rising on the launch panel', 60_000, async () => {
      if (Date.now() - lastBurst > 3000) {
        await burst(api.url, 60, statuses);
        lastBurst = Date.now();
      }
      const now = await totals();
      return { ok: now.shed > before.shed && now.rateLimited > before.rateLimited, before, now, statuses };
    });
    console.log(`    launch panel eu: shed ${before.shed} → ${seen.now.shed}, rate-limited ${before.rateLimited} → ${seen.now.rateLimited}; answers ${JSON.stringify(statuses)}`);
    if (!(statuses['429'] > 0 && statuses['503'] > 0)) throw new Error(`the burst was not refused both ways: ${JSON.stringify(statuses)}`);
    // The per-second figures and charts follow one scrape later.
    await waitFor('a shed rate above zero on the panel', 15_000, async () => {
      const text = await figure('shed').locator('.figure-value').textContent();
      return { ok: Number(text) > 0, text };
    });
    await page.getByTestId('launch-panel').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'console-launch.png') });
  } finally {
    if (launchConsole) await launchConsole.stop();
    await api.stop();
  }
}

async function killingEuKafkaNamesItAsTheOneRootCauseAndItsHealClosesTheIncident({ page, url }) {
  const dev = join(HERE, '../../dev');
  await page.setViewportSize(FIRST_SCREEN);
  await page.goto(url);
  await waitAllGreen(page, SETTLE_MS);
  const firstCause = () => page.getByTestId('root-cause').first();
  let killedAt;
  try {
    execFileSync(dev, ['kill', 'eu-kafka'], { stdio: 'inherit', cwd: ROOT });
    killedAt = Date.now();
    const named = await waitFor('the first root cause to be eu kafka within 10 s of the kill (typically 3.6–4.1 s; checks poll every few seconds)', 10_000, async () => {
      if ((await page.getByTestId('root-cause').count()) === 0) return { ok: false, causes: 'none' };
      const label = (await firstCause().getByTestId('root-cause-label').textContent()).trim();
      return { ok: label === 'eu kafka', label };
    });
    console.log(`    root cause ${named.label} after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
    // Let every check and the other region's replication notice, then judge the whole first screen.
    await sleep(6_000);
    const labels = await page.getByTestId('root-cause-label').allTextContents();
    if (labels[0].trim() !== 'eu kafka') throw new Error(`the first root cause is now ${labels[0]}: ${labels.join(' | ')}`);
    const summary = (await firstCause().getByTestId('root-cause-summary').textContent()).trim();
    // The summary is "services: reason"; the reason is the cause's text, which only the cause line shows.
    const reason = summary.slice(summary.indexOf(': ') + 2);
    const text = await visibleText(page);
    const times = occurrences(text, reason);
    if (times !== 1) throw new Error(`the cause's text appears ${times} times on the page, not once: ${reason}`);
    await onFirstScreen(page, 'root-causes');
    for (const { name } of regions()) {
      const bottom = await onFirstScreen(page, `region-${name}`);
      console.log(`    region ${name} ends at ${bottom} px of ${FIRST_SCREEN.height}`);
    }
    const eu = await regionOnPage(page, 'eu');
    if (eu.color !== 'red' || !/cause: kafka/.test(eu.reason)) throw new Error(`eu is ${eu.color}: ${eu.reason}`);
    await page.screenshot({ path: join(ARTIFACTS, 'console-eu-kafka-down.png') });
    console.log('    first screen with eu kafka down: tests/browser/artifacts/console-eu-kafka-down.png');
  } finally {
    execFileSync(dev, ['region', 'heal', 'eu'], { stdio: 'inherit', cwd: ROOT, timeout: 400_000 });
  }
  await waitAllGreen(page, 180_000);
  const incidents = page.getByTestId('incident');
  const closed = await waitFor('the eu kafka incident to close with its duration', 30_000, async () => {
    const all = await incidents.evaluateAll((items) =>
      items.map((li) => ({
        causes: li.dataset.causes,
        open: li.dataset.open === 'true',
        seconds: Number(li.dataset.duration),
        start: li.querySelector('time')?.getAttribute('datetime'),
        shown: li.querySelector('[data-testid=incident-duration]')?.textContent,
      })),
    );
    // The kill's incident: it names eu kafka and was still going at the kill (a lateness flapping
    // just before may have opened it; the kill then joins it rather than opening a second one).
    const ours = all.filter(
      (i) => i.causes.split(', ').includes('eu kafka') && Date.parse(i.start) + i.seconds * 1000 >= killedAt,
    );
    return { ok: ours.length === 1 && !ours[0].open && ours[0].seconds > 0 && ours[0].shown, ours, all };
  });
  const incident = closed.ours[0];
  console.log(`    incident ${incident.causes}: ${incident.shown}`);
  // One kill is one incident: exactly one names eu kafka (checked above), whatever joined it.
  await page.getByTestId('incidents').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(ARTIFACTS, 'console-eu-kafka-healed.png') });
}

async function killingRegionEuTurnsItRedAndHealingTurnsItGreen({ page, url }) {
  const dev = join(HERE, '../../dev');
  await page.goto(url);
  await waitAllGreen(page, SETTLE_MS);
  try {
    execFileSync(dev, ['region', 'kill', 'eu'], { stdio: 'inherit', cwd: ROOT });
    const killedAt = Date.now();
    const red = await waitFor('eu red within 15 s of the kill', 15_000, async () => {
      const eu = await regionOnPage(page, 'eu');
      return { ok: eu.color === 'red' && /unreachable/i.test(eu.reason), ...eu };
    });
    console.log(`    eu red after ${((Date.now() - killedAt) / 1000).toFixed(1)} s: ${red.reason.slice(0, 120)}`);
    const global = await globalOnPage(page);
    if (global.color !== 'yellow') throw new Error(`global is ${global.color} with one region down, not yellow`);
    await page.screenshot({ path: join(ARTIFACTS, 'console-eu-killed.png'), fullPage: true });
  } finally {
    execFileSync(dev, ['region', 'heal', 'eu'], { stdio: 'inherit', cwd: ROOT, timeout: 400_000 });
  }
  await waitFor('eu green after the heal', 180_000, async () => (await regionOnPage(page, 'eu')).color === 'green');
}

// ------------------------------------------------------------------ runner

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  let tests = process.argv.includes('--drill-kill')
    ? [killingEuKafkaNamesItAsTheOneRootCauseAndItsHealClosesTheIncident, killingRegionEuTurnsItRedAndHealingTurnsItGreen]
    : [
        theConsoleShowsEveryRegionGreenUnderAGreenGlobalStatus,
        drainingARegionTurnsItYellowForDrainingAndUndrainingTurnsItGreen,
        theLaunchPanelShowsShedAndRateLimitedCountsRisingDuringAnOverload,
      ];
  // --only name,name runs the tests whose names start with one of these (e.g. the non-destructive ones).
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : null;
  if (only) tests = tests.filter((t) => only.some((prefix) => t.name.startsWith(prefix)));
  if (tests.length === 0) throw new Error('no test selected');
  const consoleProcess = await startConsole();
  const browser = await launchBrowser();
  let passed = 0;
  let failed = 0;
  try {
    for (const test of tests) {
      const page = await browser.context.newPage();
      const started = Date.now();
      try {
        await test({ page, url: consoleProcess.url });
        passed += 1;
        console.log(`ok   ${test.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } catch (error) {
        failed += 1;
        console.log(`FAIL ${test.name}: ${error.message}`);
        await page.screenshot({ path: join(ARTIFACTS, `failed-${test.name}.png`), fullPage: true }).catch(() => {});
      } finally {
        await page.close().catch(() => {});
      }
    }
  } finally {
    await browser.close();
    await consoleProcess.stop();
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => {
    console.error(`browser tests could not run: ${error.message}`);
    process.exit(2);
  },
);
