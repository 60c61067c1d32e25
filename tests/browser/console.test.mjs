// The review console in headless Chromium against the real borderscand:
// a station uploads an image holding EICAR inside a zip and watches it become
// flagged; a reviewer sees it on the queue (live), opens the report, finds the
// EICAR finding with its archive path and matched string, previews the
// evidence, looks up "seen before", records a review, marks the finding a
// false positive and sees the history and the queue's derived verdict; a
// station sees no review tools. Also the served headers (CSP, types, caching),
// no console errors or CSP violations, keyboard focus on sign-in, and
// screenshots at 1280x800. The queue's "Scans in progress" strip against a
// second daemon whose scans are held running (--debug-scan-delay-ms); the
// live stream resuming with Last-Event-ID after a proxy cuts it; every
// control reached by Tab with a visible focus ring.
//
// Run by browser-test.sh (CTest browser_console) with BORDERSCAND,
// BROWSER_TOOLS_DIR (node_modules with playwright-core), BROWSER_ARTIFACTS,
// BROWSER_WORK and CHROMIUM in the environment.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run through browser-test.sh)`);
  return value;
};

const daemonBin = env('BORDERSCAND');
const artifacts = env('BROWSER_ARTIFACTS');
const workRoot = env('BROWSER_WORK');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const require = createRequire(path.join(env('BROWSER_TOOLS_DIR'), 'package.json'));
const { chromium } = require('playwright-core');

// The previous run's scratch folder (kept for a look after a failure) goes now.
fs.mkdirSync(workRoot, { recursive: true });
for (const old of fs.readdirSync(workRoot).filter((n) => n.startsWith('run-'))) {
  fs.rmSync(path.join(workRoot, old), { recursive: true, force: true });
}
const work = fs.mkdtempSync(path.join(workRoot, 'run-'));
let base = '';
let context = null;
let profile = null;  // Chromium's fresh user-data-dir
const tokens = {};
const consoleProblems = [];
// Console errors a step expects (e.g. the 401 of a wrong token); matched and removed.
const expectedProblems = [];
// Every daemon the tests started: { name, dir, config, log, proc, base }.
const daemons = [];

function daemonLog() {
  return daemons.map((d) => {
    try {
      return `--- ${d.name} daemon log:\n${fs.readFileSync(d.log, 'utf8').split('\n').slice(-40).join('\n')}`;
    } catch {
      return `(no ${d.name} daemon log)`;
    }
  }).join('\n');
}

// The EICAR test string, stored ROT13-encoded (as tests/data/make-fixtures.sh
// does) so that this file itself is not flagged by a desktop scanner.
function eicar() {
  return 'K5B!C%@NC[4\\CMK54(C^)7PP)7}$RVPNE-FGNAQNEQ-NAGVIVEHF-GRFG-SVYR!$U+U*'
    .replace(/[A-Za-z]/g, (c) => {
      const a = c <= 'Z' ? 65 : 97;
      return String.fromCharCode(((c.charCodeAt(0) - a + 13) % 26) + a);
    });
}

// A FAT12 image with /bundle.zip holding docs/eicar.com, built by real tools
// (zip, mkfs.vfat, mcopy) the way the fixture builder builds its images.
function makeImage() {
  const src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs', 'eicar.com'), eicar());
  fs.writeFileSync(path.join(src, 'readme.txt'), 'A harmless text file beside the archive.\n');
  execFileSync('zip', ['-X', '-q', '-r', path.join(work, 'bundle.zip'), 'docs'], { cwd: src });
  const image = path.join(work, 'stick.img');
  execFileSync('mkfs.vfat', ['-C', '-n', 'STICK', image, '2048'], { stdio: 'ignore' });
  const mtools = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  execFileSync('mcopy', ['-i', image, path.join(work, 'bundle.zip'), '::/bundle.zip'], { env: mtools });
  execFileSync('mcopy', ['-i', image, path.join(src, 'readme.txt'), '::/readme.txt'], { env: mtools });
  return image;
}

let imageFile = null;
function testImage() {
  imageFile = imageFile || makeImage();
  return imageFile;
}

function createToken(d, role, name) {
  const out = execFileSync(daemonBin, ['token', 'create', '--role', role, '--name', name, '--config', d.config],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const token = out.trim().split(/\s+/).pop();
  assert.match(token, /^bst_[A-Za-z0-9_-]{43}$/, `token create printed: ${out}`);
  return token;
}

// Starts a borderscand with its own data dir under the run's work folder;
// extraArgs e.g. ['--debug-scan-delay-ms', '4000'] (every scan is held that
// long in `running` before it is scanned, as the server's own tests do).
async function startDaemon(name, extraArgs = []) {
  const dir = path.join(work, name);
  const d = { name, dir, config: path.join(dir, 'borderscand.toml'), log: path.join(dir, 'daemon.log'), proc: null, base: '' };
  const dataDir = path.join(dir, 'data');
  const portFile = path.join(dir, 'port');
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(d.config, [
    '[http]', 'listen = "127.0.0.1:0"', 'event_interval_ms = 50',
    '[storage]', `data_dir = "${dataDir}"`, 'min_free_spool_bytes = 0',
    '[jobs]', 'workers = 1', 'scan_threads = 1', 'queue_capacity = 8', 'shutdown_grace_seconds = 5',
    '[log]', 'level = "info"', '',
  ].join('\n'));
  d.tokens = { station: createToken(d, 'station', 'kiosk-07'), reviewer: createToken(d, 'reviewer', 'inspector-1') };
  const log = fs.openSync(d.log, 'a');
  d.proc = spawn(daemonBin, ['serve', '--config', d.config, '--port-file', portFile, ...extraArgs], { stdio: ['ignore', log, log] });
  daemons.push(d);
  const exited = new Promise((resolve) => d.proc.once('exit', resolve));
  const port = await Promise.race([
    waitFor(() => fs.existsSync(portFile) && Number(fs.readFileSync(portFile, 'utf8').trim()), `the ${name} daemon to listen`),
    exited.then((code) => { throw new Error(`borderscand exited (${code}) at start:\n${daemonLog()}`); }),
  ]);
  d.base = `http://127.0.0.1:${port}`;
  return d;
}

async function stopDaemon(d) {
  if (d.proc && d.proc.exitCode === null) {
    const gone = new Promise((resolve) => d.proc.once('exit', resolve));
    d.proc.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10000))]);
    if (d.proc.exitCode === null) {
      d.proc.kill('SIGKILL');
    }
  }
}

async function waitFor(predicate, what, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n${daemonLog()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function apiCall(token, pathname, init = {}, at = base) {
  const response = await fetch(at + pathname, { ...init, headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) } });
  return response;
}

// Uploads the test image as a kiosk would; returns the scan's id.
async function submitScan(token, query, at = base) {
  const image = fs.readFileSync(testImage());
  const r = await apiCall(token, `/api/v1/scans?${new URLSearchParams(query)}`,
    { method: 'POST', body: image, headers: { 'Content-Type': 'application/octet-stream' } }, at);
  const body = await r.text();
  assert.equal(r.status, 202, body);
  return JSON.parse(body).id;
}

async function newPage() {
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') {
      return;
    }
    const text = msg.text();
    const i = expectedProblems.findIndex((re) => re.test(text));
    if (i >= 0) {
      expectedProblems.splice(i, 1);
      return;
    }
    consoleProblems.push(`${page.url()}: ${text}`);
  });
  page.on('pageerror', (error) => consoleProblems.push(`${page.url()}: uncaught ${error.message}`));
  return page;
}

async function signIn(page, token, at = base) {
  await page.goto(`${at}/`);
  await page.locator('#token').fill(token);
  await page.keyboard.press('Enter');
  await page.locator('#who').waitFor({ state: 'visible' });
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#token').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign-out forgets the token');
}

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  const main = await startDaemon('main');
  base = main.base;
  Object.assign(tokens, main.tokens);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'borderscan-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  // Every CSP violation is reported to the console the test listens to.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
});

after(async () => {
  if (context) {
    await context.close();
  }
  if (profile) {
    fs.rmSync(profile, { recursive: true, force: true });
  }
  await Promise.all(daemons.map(stopDaemon));
});

const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

test('the console is served with its types, caching and a strict CSP', async () => {
  for (const pathname of ['/', '/reports/0123456789abcdef0123456789abcdef', '/reports/0123456789abcdef0123456789abcdef/print', '/upload']) {
    const r = await fetch(base + pathname);
    assert.equal(r.status, 200, pathname);
    assert.match(r.headers.get('content-type'), /^text\/html/, pathname);
    assert.equal(r.headers.get('content-security-policy'), csp, pathname);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', pathname);
    assert.match(r.headers.get('cache-control') || '', /no-cache/, pathname);
    const html = await r.text();
    assert.match(html, /<script type="module" src="\/js\/app.js"><\/script>/);
    assert.doesNotMatch(html, /<script>|<style|style="/, 'no inline script or style');
  }
  const js = await fetch(`${base}/js/app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^(text|application)\/javascript/);
  assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
  assert.match(js.headers.get('cache-control') || '', /no-cache/);
  const etag = js.headers.get('etag');
  assert.ok(etag, 'js files carry an ETag');
  const again = await fetch(`${base}/js/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304, 'a revalidation with the ETag is 304');
  const css = await fetch(`${base}/css/console.css`);
  assert.match(css.headers.get('content-type'), /^text\/css/);
  assert.equal((await fetch(`${base}/js/no-such-module.js`)).status, 404, 'a missing file is 404, not the app');
  assert.equal((await fetch(`${base}/api/v1/no-such-route`)).status !== 200, true, 'API paths never get the app');
});

let firstScan = null;

test('a station signs in with the keyboard, uploads an image and sees it flagged, without review tools', async () => {
  const page = await newPage();
  await page.goto(`${base}/`);
  // Focus starts in the token field; Tab reaches the sign-in button.
  await page.locator('#token').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'token');
  assert.equal(await page.locator('label[for="token"]').textContent(), 'Access token');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Sign in');
  await page.keyboard.press('Shift+Tab');

  // A wrong token is refused with a message, and nothing is kept.
  expectedProblems.push(/401/);
  await page.keyboard.type('bst_notavalidtokennotavalidtokennotavalidtoke');
  await page.keyboard.press('Enter');
  await page.locator('#sign-in-status', { hasText: 'not accepted' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  await page.locator('#token').fill(tokens.station);
  await page.keyboard.press('Enter');
  await page.locator('#who-name', { hasText: 'kiosk-07 (station)' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 1, 'the token is kept in sessionStorage');

  await page.getByRole('link', { name: 'Upload an image' }).first().click();
  await page.locator('h1', { hasText: 'Upload an image' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/upload');
  await page.getByLabel('Image file').setInputFiles(testImage());
  await page.getByLabel('Label (optional, e.g. bag tag)').fill('bag-1');
  await page.getByLabel('Case reference (optional)').fill('CASE-42');
  await page.getByRole('button', { name: 'Upload and scan' }).click();
  const open = page.getByRole('link', { name: 'Open the report' });
  await open.waitFor({ timeout: 60000 });
  assert.equal(await page.locator('#upload-progress').evaluate((el) => el.value), 100);
  assert.equal(await page.locator('#upload-result .badge').textContent(), 'Flagged');
  assert.match(await page.locator('#upload-status').textContent(), /Scan finished: Flagged/);
  firstScan = (await open.getAttribute('href')).split('/').pop();
  assert.match(firstScan, /^[0-9a-f]{32}$/);

  await open.click();
  await page.locator('article.finding', { hasText: 'EICAR_Test_File' }).waitFor();
  // A station reads its report but gets no review form, marks, evidence or hash search.
  assert.equal(await page.locator('.review-form').count(), 0, 'no review form for a station');
  assert.equal(await page.locator('#review').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Mark as false positive' }).count(), 0);
  await page.locator('.file-table').waitFor();
  assert.equal(await page.getByRole('button', { name: /Seen before/ }).count(), 0);
  assert.equal(await page.getByRole('button', { name: /Hex preview|Download the evidence/ }).count(), 0);
  await signOut(page);
  await page.close();
});

test('a reviewer sees the queue update live, reviews the report and marks a false positive', async () => {
  assert.ok(firstScan, 'the station test uploaded a scan');
  const page = await newPage();
  await signIn(page, tokens.reviewer);
  assert.equal(await page.getByRole('link', { name: 'Upload an image' }).count(), 0, 'a reviewer has no upload');
  const pending = page.locator('#pending');
  await pending.locator('tr', { hasText: 'bag-1' }).waitFor();
  await page.locator('#live-state[data-state="open"]').waitFor();

  // A second upload by the kiosk (over the API) appears without a reload.
  const image = fs.readFileSync(path.join(work, 'stick.img'));
  const r = await apiCall(tokens.station, '/api/v1/scans?filename=stick.img&label=bag-2&case_ref=CASE-42',
    { method: 'POST', body: image, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 202, await r.text());
  await pending.locator('tr', { hasText: 'bag-2' }).waitFor({ timeout: 60000 });
  const row = pending.locator('tr', { hasText: 'bag-1' });
  assert.equal(await row.locator('.badge').first().textContent(), 'Flagged');
  assert.match(await row.textContent(), /EICAR_Test_File/);
  await page.screenshot({ path: path.join(artifacts, 'queue.png') });

  await row.getByRole('link').click();
  const finding = page.locator('article.finding', { hasText: 'EICAR_Test_File' });
  await finding.waitFor();
  assert.equal(new URL(page.url()).pathname, `/reports/${firstScan}`);
  // The archive member's full path with its `!`, the rule's description and the matched string.
  assert.equal(await finding.locator('.finding-path code.path').textContent(), '/bundle.zip!docs/eicar.com');
  assert.equal(await finding.locator('.finding-path .bang').count(), 1);
  assert.match(await finding.locator('.rule-description').textContent(), /EICAR anti-malware test file/);
  assert.match(await finding.locator('.match-text').first().textContent(), /^X5O!P%@AP\[4\\x5cPZX54\(P\^\)7CC\)7\}\$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!/);
  assert.match(await finding.locator('.match-hex').first().textContent(), /^58354f2150254041505b345c505a58/);
  assert.match(await page.locator('#image').textContent(), /valid signature \(Ed25519/);
  assert.match(await page.locator('#image').textContent(), /Report SHA-256[0-9a-f]{64}/);
  assert.ok(await page.locator('#types svg.bar-chart rect.bar').count() >= 2, 'the file-type chart has bars');
  await page.locator('.file-table tr', { hasText: 'eicar.com' }).first().waitFor();
  await page.screenshot({ path: path.join(artifacts, 'report.png') });

  // File search on the server (a case-insensitive path substring), then
  // "seen before" finds the content in both uploads.
  await page.getByLabel('Path contains').fill('EICAR.COM');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await waitFor(async () => (await page.locator('.file-table tbody tr').count()) === 1 &&
    (await page.locator('.file-table tbody tr').textContent()).includes('/bundle.zip!docs/eicar.com'), 'the search result');
  await page.getByRole('button', { name: 'Seen before: /bundle.zip!docs/eicar.com' }).click();
  await page.locator('#file-panel table.seen-before tbody tr').nth(1).waitFor();
  assert.equal(await page.locator('#file-panel table.seen-before tbody tr').count(), 2);

  // The evidence: a hex preview and the zip download.
  await page.getByRole('button', { name: 'Hex preview of /bundle.zip!docs/eicar.com' }).click();
  await page.locator('#file-panel pre.hex-view').waitFor();
  assert.match(await page.locator('#file-panel pre.hex-view').textContent(), /X5O!P%@AP/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: /Download the evidence of \/bundle.zip!docs\/eicar.com/ }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'eicar.com.zip');
  const zipBytes = fs.readFileSync(await download.path());
  assert.equal(zipBytes.subarray(0, 4).toString('latin1'), 'PK\x03\x04', 'the evidence is a zip');

  // A review with a note, shown in the history.
  assert.match(await page.locator('#review-state').textContent(), /Pending review/);
  await page.getByLabel(/Confirmed/).check();
  await page.getByLabel(/^Note \(optional, up to/).fill('EICAR inside a zip: test file, traveller informed.');
  await page.getByRole('button', { name: 'Record review' }).click();
  const history = page.locator('#review-history .history-item');
  await history.first().waitFor();
  assert.match(await history.first().textContent(), /Confirmed.*by inspector-1.*EICAR inside a zip: test file, traveller informed\./s);
  assert.match(await page.locator('#review-state').textContent(), /Reviewed · last decision: Confirmed/);

  // Every flagging finding marked a false positive clears the derived verdict.
  for (;;) {
    const mark = page.getByRole('button', { name: 'Mark as false positive' });
    const before = await mark.count();
    if (before === 0) {
      break;
    }
    const card = page.locator('article.finding').filter({ has: mark }).first();
    await card.getByLabel('Note (optional)').fill('vendor test file');
    await card.getByRole('button', { name: 'Mark as false positive' }).click();
    await waitFor(async () => (await page.getByRole('button', { name: 'Mark as false positive' }).count()) < before, 'the mark');
  }
  assert.ok(await finding.evaluate((el) => el.classList.contains('false-positive')));
  assert.match(await finding.locator('.mark').textContent(), /Marked false positive by inspector-1: vendor test file/);
  await page.locator('#verdict .badge', { hasText: 'Cleared (false positive)' }).waitFor();
  assert.match(await page.locator('#disposition-history').textContent(), /False positive.*EICAR_Test_File/s);

  // The queue shows the derived verdict; the report is no longer pending.
  await page.getByRole('link', { name: 'Reports' }).first().click();
  const cleared = page.locator('#others tr', { hasText: 'bag-1' });
  await cleared.waitFor();
  assert.match(await cleared.textContent(), /Cleared \(false positive\).*signed: Flagged/s);
  assert.match(await cleared.textContent(), /Reviewed/);
  assert.equal(await page.locator('#pending tr', { hasText: 'bag-1' }).count(), 0);
  // Filtering on the derived verdict, through the form.
  await page.getByLabel('Verdict').selectOption('cleared_false_positive');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/verdict=cleared_false_positive/);
  await page.locator('#others tr', { hasText: 'bag-1' }).waitFor();
  assert.equal(await page.locator('#others tr', { hasText: 'bag-2' }).count(), 0);
  await page.screenshot({ path: path.join(artifacts, 'queue-filtered.png') });

  // The printable page: facts for the case file, A4 print CSS.
  await page.goto(`${base}/reports/${firstScan}/print`);
  await page.locator('.print-foot').waitFor();
  assert.match(await page.locator('.print-foot').textContent(), /Report SHA-256: [0-9a-f]{64}/);
  assert.match(await page.locator('.printable').textContent(), /valid signature/);
  assert.match(await page.locator('.printable').textContent(), /\/bundle\.zip!docs\/eicar\.com/);
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('.site-header').isVisible(), false, 'no navigation on paper');
  assert.equal(await page.getByRole('button', { name: 'Print' }).isVisible(), false);
  await page.emulateMedia({ media: 'screen' });
  await signOut(page);
  await page.close();
});

// Requests for a report's overview (GET /api/v1/reports/{id}/overview) a page makes from now on.
function countOverviewReads(page) {
  const seen = { n: 0 };
  page.on('request', (request) => {
    if (/^\/api\/v1\/reports\/[0-9a-f]{32}\/overview$/.test(new URL(request.url()).pathname)) {
      seen.n += 1;
    }
  });
  return seen;
}

// Holds a page's requests whose path matches `re` until release(); then each
// goes on to the daemon, or is answered with `status` when one is given.
async function holdRequests(page, re, { status } = {}) {
  let release = null;
  const released = new Promise((resolve) => { release = resolve; });
  const hold = { held: 0, release: () => release() };
  await page.route((url) => re.test(url.pathname), async (route) => {
    hold.held += 1;
    await released;
    try {
      if (status) {
        await route.fulfill({ status, contentType: 'application/problem+json', body: JSON.stringify({ status, detail: 'held and failed by the test' }) });
      } else {
        await route.continue();
      }
    } catch {
      // The console aborted the request meanwhile (it left the page).
    }
  });
  return hold;
}

test('same-page links keep the report as it is, and a report still loading does not paint over the next page', async () => {
  assert.ok(firstScan, 'the station test uploaded a scan');
  const page = await newPage();
  const overviews = countOverviewReads(page);
  await signIn(page, tokens.reviewer);
  await page.goto(`${base}/reports/${firstScan}`);
  await page.locator('.file-table').waitFor();
  assert.equal(overviews.n, 1);

  // A note typed but not yet recorded survives the table of contents, the
  // skip link and Back over them: only the hash changes, nothing is re-read.
  const note = page.getByLabel(/^Note \(optional, up to/);
  await note.fill('typed, not recorded yet');
  await page.getByRole('navigation', { name: 'Sections of this report' }).getByRole('link', { name: 'Findings' }).click();
  await page.waitForURL(/#findings$/);
  await page.locator('.skip-link').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/#main$/);
  await page.goBack();
  await page.waitForURL(/#findings$/);
  await page.waitForTimeout(300);
  assert.equal(await note.inputValue(), 'typed, not recorded yet', 'the typed note is kept');
  assert.equal(overviews.n, 1, 'no new GET .../overview after same-page links');
  assert.ok(await page.evaluate(() => window.scrollY) > 0, 'the page stays scrolled to the section');

  // A report whose overview is slow; the user goes back to the queue before it comes.
  const reportLink = page.locator(`main a.report-link[href="/reports/${firstScan}"]`).first();
  await page.getByRole('link', { name: 'Reports' }).first().click();
  await reportLink.waitFor();
  let hold = await holdRequests(page, /\/overview$/);
  await reportLink.click();
  await page.locator('h1', { hasText: /^Report$/ }).waitFor();
  await waitFor(() => hold.held === 1, 'the overview request');
  await page.goBack();
  await reportLink.waitFor();
  await page.getByLabel('Verdict').focus();
  hold.release();
  await page.waitForTimeout(700);
  assert.equal(await page.locator('main h1').textContent(), 'Reports', 'the queue stays');
  assert.equal(await page.locator('article.finding').count(), 0, 'no report is drawn over the queue');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'verdict', 'focus stays where the user put it');
  await page.unrouteAll();

  // The same with the printable page failing late: its error stays off the queue.
  await reportLink.click();
  await page.locator('.file-table').waitFor();
  hold = await holdRequests(page, /\/overview$/, { status: 500 });
  await page.getByRole('link', { name: 'Printable page' }).click();
  await page.locator('h1', { hasText: /^Printable report$/ }).waitFor();
  await waitFor(() => hold.held === 1, 'the overview request');
  await page.getByRole('link', { name: 'Reports' }).first().click();
  await reportLink.waitFor();
  hold.release();
  await page.waitForTimeout(700);
  assert.equal(await page.locator('main h1').textContent(), 'Reports', 'the queue stays');
  assert.equal(await page.locator('main [role="alert"]').count(), 0, 'no error of the page left behind');
  assert.equal(await page.evaluate(() => document.body.classList.contains('print-view')), false);
  await page.unrouteAll();
  await signOut(page);
  await page.close();
});

test('a capped findings list says so and offers the flagged files; a very long path is searched by its end', async () => {
  assert.ok(firstScan, 'the station test uploaded a scan');
  const page = await newPage();
  await signIn(page, tokens.reviewer);
  // A path of 3 000 bytes in UTF-8, beyond the 1024 bytes the server takes as q.
  const longPath = `/${'ü/'.repeat(1000)}deep.txt`;
  // The overview as the daemon will send it for a report with very many findings.
  await page.route((url) => /\/overview$/.test(url.pathname), async (route) => {
    const response = await route.fetch();
    const ov = await response.json();
    ov.findings.push({ id: 'f-long-path', rule: 'Long_Path_Test', source: 'yara', severity: 'low', path: longPath, tags: [], matches: [] });
    ov.findings_truncated = { shown: ov.findings.length, total: 25000 };
    await route.fulfill({ response, json: ov });
  });
  const fileQueries = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (/\/files$/.test(url.pathname)) {
      fileQueries.push(url.searchParams);
    }
  });
  await page.goto(`${base}/reports/${firstScan}`);
  await page.locator('.file-table').waitFor();
  const shown = await page.locator('#findings article.finding').count();
  const notice = page.locator('#findings #findings-truncated');
  assert.match(await notice.textContent(), new RegExp(`^Showing the first ${shown} of 25,000 findings, weightiest first; ` +
    'the file table filtered by flagged lists every flagged file\\.'));
  assert.equal(await page.locator('#findings-title').textContent(), `Findings (${shown} of 25,000)`);

  // "Show in the file table" on the long path: q is the path's end, which the server accepts.
  await page.locator('article.finding', { hasText: 'Long_Path_Test' }).getByRole('button', { name: 'Show in the file table' }).click();
  await page.locator('#files .list-status', { hasText: 'No files match.' }).waitFor();
  const q = fileQueries[fileQueries.length - 1].get('q');
  assert.ok(Buffer.byteLength(q) <= 1024 && Buffer.byteLength(q) > 1000, `q has ${Buffer.byteLength(q)} bytes`);
  assert.ok(longPath.endsWith(q), 'q is the end of the path');

  // The notice's button lists every flagged file.
  await notice.getByRole('button', { name: 'List the flagged files' }).click();
  await page.locator('.file-table tr', { hasText: 'eicar.com' }).first().waitFor();
  assert.equal(await page.locator('#file-flagged').isChecked(), true);
  assert.equal(await page.locator('#file-search').inputValue(), '');
  const last = fileQueries[fileQueries.length - 1];
  assert.equal(last.get('flagged'), 'true');
  assert.equal(last.get('q'), null);
  await page.unrouteAll();
  await signOut(page);
  await page.close();
});

test('the queue shows a scan that finished after its lists were read but before the live stream began', async () => {
  const page = await newPage();
  const hold = await holdRequests(page, /^\/api\/v1\/events$/);
  const reportReads = { n: 0 };
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/api/v1/reports') {
      reportReads.n += 1;
    }
  });
  await signIn(page, tokens.reviewer);
  await page.locator('#pending-title', { hasText: /\(\d+\+?\)/ }).waitFor();
  await page.locator('#others-title', { hasText: /\(\d+\+?\)/ }).waitFor();
  assert.equal(reportReads.n, 2);
  assert.notEqual(await page.locator('#live-state').getAttribute('data-state'), 'open');
  const id = await submitScan(tokens.station, { filename: 'in-the-gap.img', label: 'bag-in-the-gap' });
  await waitFor(async () => (await (await apiCall(tokens.reviewer, `/api/v1/scans/${id}`)).json()).status === 'done',
    'the scan in the gap to finish');
  hold.release();
  await page.locator('#live-state[data-state="open"]').waitFor();
  await page.locator('#pending tr', { hasText: 'bag-in-the-gap' }).waitFor({ timeout: 5000 });
  await page.waitForTimeout(500);
  assert.equal(reportReads.n, 4, 'the lists are read once more when the stream opens, not again');
  await page.unrouteAll();
  await signOut(page);
  await page.close();
});

// GET /api/v1/scans requests a page makes from now on (the strip's polling).
function countActiveScanReads(page) {
  const seen = { n: 0 };
  const onRequest = (request) => {
    if (new URL(request.url()).pathname === '/api/v1/scans' && request.method() === 'GET') {
      seen.n += 1;
    }
  };
  page.on('request', onRequest);
  seen.stop = () => page.off('request', onRequest);
  return seen;
}

test('the queue shows the scans in progress with their progress and drops them when they finish', async () => {
  // A daemon of its own whose scans stay `running` for a while (one worker:
  // the second scan waits in the queue meanwhile).
  const slow = await startDaemon('slow', ['--debug-scan-delay-ms', '4000']);
  const a = await submitScan(slow.tokens.station, { filename: 'slow-a.img', label: 'bag-slow-a' }, slow.base);
  const b = await submitScan(slow.tokens.station, { filename: 'slow-b.img', label: 'bag-slow-b' }, slow.base);
  const page = await newPage();
  const reads = countActiveScanReads(page);
  await signIn(page, slow.tokens.reviewer, slow.base);
  const strip = page.locator('#live');
  // Both were submitted before the page opened (the event stream starts now):
  // the strip has them from GET /api/v1/scans, in queue order.
  const itemA = strip.locator(`li.live-scan[data-id="${a}"]`);
  const itemB = strip.locator(`li.live-scan[data-id="${b}"]`);
  await itemA.waitFor();
  await itemB.waitFor();
  assert.deepEqual(await strip.locator('li.live-scan').evaluateAll((els) => els.map((el) => el.dataset.id)), [a, b]);
  assert.match(await itemA.textContent(), /slow-a\.img.*bag-slow-a.*kiosk-07 · Running/s);
  assert.match(await itemB.textContent(), /slow-b\.img.*bag-slow-b.*kiosk-07 · Queued.*Waiting in the queue \(1 ahead\)/s);
  assert.equal(await page.locator('#live-title').textContent(), 'Scans in progress (2)');
  // Each has a progress bar named by its image, with a text value.
  const barA = page.getByRole('progressbar', { name: 'slow-a.img' });
  assert.equal(await barA.count(), 1);
  assert.ok(await barA.getAttribute('aria-valuetext'), 'the bar says where the scan is');
  assert.equal(await page.getByRole('progressbar', { name: 'slow-b.img' }).getAttribute('aria-valuetext'), 'Waiting in the queue (1 ahead)');
  await page.screenshot({ path: path.join(artifacts, 'queue-live.png') });

  // The first finishes: it leaves the strip (event scan_done) and is on the
  // lists; the second starts, which only the strip's polling can tell.
  await itemA.waitFor({ state: 'detached', timeout: 20000 });
  await page.locator('#pending tr', { hasText: 'bag-slow-a' }).waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#pending tr', { hasText: 'bag-slow-b' }).count(), 0);
  await strip.locator(`li.live-scan[data-id="${b}"][data-status="running"]`).waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#live-title').textContent(), 'Scans in progress (1)');
  assert.ok(reads.n >= 2, `the strip re-reads GET /api/v1/scans while a scan runs (${reads.n})`);

  // Leaving the queue stops the polling while the scan still runs.
  await page.locator('#pending tr', { hasText: 'bag-slow-a' }).getByRole('link').click();
  await page.locator('h1', { hasText: 'slow-a.img' }).waitFor();
  const scanB = await (await apiCall(slow.tokens.reviewer, `/api/v1/scans/${b}`, {}, slow.base)).json();
  assert.equal(scanB.status, 'running', 'the second scan still runs while the report is open');
  const away = reads.n;
  await page.waitForTimeout(2600);
  assert.equal(reads.n, away, 'no GET /api/v1/scans after the queue was left');

  // Back on the queue the second one ends too, and the polling stops.
  await page.goBack();
  await page.locator('#pending tr', { hasText: 'bag-slow-b' }).waitFor({ timeout: 20000 });
  await strip.locator('li.live-none', { hasText: 'None right now.' }).waitFor();
  assert.equal(await strip.locator('li.live-scan').count(), 0);
  assert.equal(await page.locator('#live-title').textContent(), 'Scans in progress');
  await page.waitForTimeout(300);
  const idle = reads.n;
  await page.waitForTimeout(2600);
  assert.equal(reads.n, idle, 'no GET /api/v1/scans while nothing is in progress');
  reads.stop();
  await page.close();
});

// A reverse proxy in front of the daemon that records the request heads of
// GET /api/v1/events, can cut the current stream and hold new ones (the
// console's reconnects) until released.
async function startCuttingProxy(target) {
  const upstream = new URL(target);
  const proxy = { eventHeads: [], streams: new Set(), held: [], holding: false };
  const forward = (req, res) => {
    const up = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent: false,
    }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      res.flushHeaders();  // an event stream's head goes now, not with its first event
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
    return up;
  };
  const server = http.createServer((req, res) => {
    if (new URL(req.url, 'http://x').pathname !== '/api/v1/events') {
      forward(req, res);
      return;
    }
    proxy.eventHeads.push({ ...req.headers });
    const go = () => {
      const stream = { req, res };
      proxy.streams.add(stream);
      res.on('close', () => proxy.streams.delete(stream));
      forward(req, res);
    };
    if (proxy.holding) {
      proxy.held.push(go);
    } else {
      go();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.base = `http://127.0.0.1:${server.address().port}`;
  // Drops every open event stream's connection, as a network fault would.
  proxy.cut = () => {
    for (const { req } of proxy.streams) {
      req.socket.destroy();
    }
  };
  proxy.release = () => {
    proxy.holding = false;
    proxy.held.splice(0).forEach((go) => go());
  };
  proxy.close = () => new Promise((resolve) => {
    proxy.cut();
    server.closeAllConnections();
    server.close(resolve);
  });
  return proxy;
}

test('the live queue resumes after a dropped connection with Last-Event-ID', async () => {
  const proxy = await startCuttingProxy(base);
  const page = await newPage();
  try {
    await signIn(page, tokens.reviewer, proxy.base);
    await page.locator('#live-state[data-state="open"]').waitFor();
    assert.equal(proxy.eventHeads.length, 1);
    assert.equal(proxy.eventHeads[0]['last-event-id'], undefined, 'the first connection starts now');
    // A scan seen live gives the console an event id to resume from.
    await submitScan(tokens.station, { filename: 'before-cut.img', label: 'bag-before-cut' });
    await page.locator('#pending tr', { hasText: 'bag-before-cut' }).waitFor({ timeout: 30000 });

    // The connection drops; the console's reconnect is held at the proxy
    // while a scan is submitted and finishes, so only a resume from the last
    // id can bring its events.
    proxy.holding = true;
    expectedProblems.push(/ERR_INCOMPLETE_CHUNKED_ENCODING/);  // Chromium reports the cut stream
    proxy.cut();
    await page.locator('#live-state[data-state="reconnecting"]').waitFor();
    await waitFor(() => proxy.held.length === 1, 'the console to reconnect', 10000);
    const missed = await submitScan(tokens.station, { filename: 'during-cut.img', label: 'bag-during-cut' });
    await waitFor(async () => (await (await apiCall(tokens.reviewer, `/api/v1/scans/${missed}`)).json()).status === 'done',
      'the scan during the outage to finish');
    assert.equal(await page.locator('#pending tr', { hasText: 'bag-during-cut' }).count(), 0, 'not shown before the resume');
    proxy.release();
    await page.locator('#live-state[data-state="open"]').waitFor();
    await page.locator('#pending tr', { hasText: 'bag-during-cut' }).waitFor({ timeout: 10000 });
    const resumed = proxy.eventHeads[proxy.eventHeads.length - 1];
    assert.match(resumed['last-event-id'] || '', /^[0-9]+$/, 'the reconnect carried Last-Event-ID');
    assert.equal(resumed.authorization, `Bearer ${tokens.reviewer}`);
    // The announcement a screen reader reads.
    await page.locator('#announcer', { hasText: 'Scan of during-cut.img finished: Flagged.' }).waitFor();
  } finally {
    await page.close();
    await proxy.close();
  }
});

// Tabs from the skip link through the page: every visible control must be
// reached, and each must show a focus indicator (outline or ring) when it is.
async function checkKeyboard(page, what) {
  await page.locator('.skip-link').focus();
  const seen = [];
  const problems = [];
  for (let i = 0; i < 300; i += 1) {
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) {
        return null;
      }
      if (!el.dataset.tabSeen) {
        el.dataset.tabSeen = String(Date.now() + Math.random());
      }
      const style = getComputedStyle(el);
      const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== 'none';
      const r = el.getBoundingClientRect();
      return {
        key: el.dataset.tabSeen,
        name: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${(el.getAttribute('aria-label') || el.textContent || el.value || '').trim().slice(0, 40)}"`,
        ring,
        inView: r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth,
      };
    });
    if (!info || (seen.length > 0 && info.key === seen[0].key)) {
      break;
    }
    if (seen.length > 0 && info.key === seen[seen.length - 1].key) {
      await page.keyboard.press('Tab');  // the next part of the same control (a date's day, month, year)
      continue;
    }
    if (seen.some((x) => x.key === info.key)) {
      break;
    }
    seen.push(info);
    if (!info.ring) {
      problems.push(`${info.name} has no visible focus`);
    }
    if (!info.inView) {
      problems.push(`${info.name} is focused outside the screen`);
    }
    await page.keyboard.press('Tab');
  }
  const missed = await page.evaluate(() => [...document.querySelectorAll(
    'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
    .filter((el) => !el.disabled && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden' && !el.dataset.tabSeen)
    // A radio group is one Tab stop (the arrow keys move within it).
    .filter((el) => !(el.type === 'radio' && el.form && [...el.form.elements].some((r) => r.name === el.name && r.dataset.tabSeen)))
    .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${(el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 40)}"`));
  await page.evaluate(() => document.querySelectorAll('[data-tab-seen]').forEach((el) => delete el.dataset.tabSeen));
  assert.deepEqual(missed, [], `${what}: every control is reached by Tab`);
  assert.deepEqual(problems, [], `${what}: focus is visible`);
  assert.ok(seen.length >= 3, `${what}: Tab moves through the page (${seen.length})`);
  return seen;
}

test('every control is reachable by Tab with a visible focus, at 1280x800', async () => {
  assert.ok(firstScan, 'the station test uploaded a scan');
  const page = await newPage();
  await signIn(page, tokens.reviewer);
  await page.locator('#others tr', { hasText: 'bag-1' }).waitFor();
  await checkKeyboard(page, 'the queue');
  // A focused control on the queue, as a keyboard user sees it.
  await page.getByLabel('Verdict').focus();
  await page.keyboard.press('Tab');
  await page.screenshot({ path: path.join(artifacts, 'queue-focus.png') });

  await page.goto(`${base}/reports/${firstScan}`);
  await page.locator('.file-table tr', { hasText: 'eicar.com' }).first().waitFor();
  await checkKeyboard(page, 'a report');
  await page.getByRole('button', { name: 'Seen before: /bundle.zip!docs/eicar.com' }).focus();
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  await page.screenshot({ path: path.join(artifacts, 'report-files-focus.png') });
  await page.getByRole('button', { name: /Download the evidence of \/bundle.zip!docs\/eicar.com/ }).focus();
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  await page.locator('#files .table-scroll').screenshot({ path: path.join(artifacts, 'report-files-edge-focus.png') });
  await page.getByRole('button', { name: 'Hex preview of /bundle.zip!docs/eicar.com' }).press('Enter');
  await page.locator('#file-panel pre.hex-view').waitFor();
  await page.screenshot({ path: path.join(artifacts, 'report-hex.png') });
  await signOut(page);

  await signIn(page, tokens.station);
  await page.goto(`${base}/upload`);
  await page.locator('h1', { hasText: 'Upload an image' }).waitFor();
  await checkKeyboard(page, 'the upload page');
  await page.screenshot({ path: path.join(artifacts, 'upload.png') });
  await signOut(page);
  await page.close();
});

test('no console errors or CSP violations happened', () => {
  assert.deepEqual(consoleProblems, []);
  assert.deepEqual(expectedProblems, [], 'every expected console error happened');
});
