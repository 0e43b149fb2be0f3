// Browser tests of the operations console, in Debian's headless Chromium, against the running stack.
//
// Starts its own console (the built binary, on a free port) so it depends on no console started
// elsewhere. Plain node, no test framework: `node console.test.mjs` runs the page and drain tests;
// `node console.test.mjs --drill-kill` runs only the region-kill drill (it SIGKILLs region eu
// through ./dev and heals it afterwards). Screenshots and the console's log go to artifacts/.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
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

// ------------------------------------------------------------------ the stack, as files describe it

/** Every region of deploy/regions.conf, in file order: the test hard-codes no region list. */
function regions() {
  const file = process.env.ORDERS_REGIONS_FILE ?? join(ROOT, 'deploy/regions.conf');
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [name, , , apiPort, workerPort] = line.split(/\s+/);
      return { name, api: `http://127.0.0.1:${apiPort}`, worker: `http://127.0.0.1:${workerPort}` };
    });
}

function consoleTargets() {
  return regions()
    .map((r) => `${r.name}=api@${r.api},worker@${r.worker}`)
    .join(';');
}

function opsToken() {
  const file = join(ROOT, '.dev/credentials.env');
  const line = readFileSync(file, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('OPS_TOKEN='));
  if (!line) throw new Error(`no OPS_TOKEN in ${file}`);
  return line.slice('OPS_TOKEN='.length).trim();
}

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

async function startConsole() {
  const binary = join(BIN_DIR, 'orders-console');
  if (!existsSync(binary)) throw new Error(`no console binary at ${binary} (cargo build -p orders-console)`);
  const web = join(ROOT, 'services/console/web/dist');
  if (!existsSync(join(web, 'index.html'))) throw new Error(`the page is not built in ${web} (npm run build)`);
  const port = Number(process.env.CONSOLE_TEST_PORT ?? (await freePort()));
  const url = `http://127.0.0.1:${port}`;
  const log = createWriteStream(join(ARTIFACTS, 'console.log'));
  const child = spawn(binary, [], {
    cwd: ROOT,
    env: {
      ...process.env,
      ORDERS_LISTEN: `127.0.0.1:${port}`,
      ORDERS_CONSOLE_TARGETS: consoleTargets(),
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
  await waitAllGreen(page, SETTLE_MS);
  // Charts fill after two scrapes (5 s apart): wait for the placement chart to exist, then shoot.
  await waitFor('the first chart', 15_000, async () => (await page.locator('.chart .uplot').count()) > 0);
  await page.screenshot({ path: join(ARTIFACTS, 'console-green.png'), fullPage: true });
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
  const tests = process.argv.includes('--drill-kill')
    ? [killingRegionEuTurnsItRedAndHealingTurnsItGreen]
    : [theConsoleShowsEveryRegionGreenUnderAGreenGlobalStatus, drainingARegionTurnsItYellowForDrainingAndUndrainingTurnsItGreen];
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
