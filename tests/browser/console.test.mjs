// The review console in headless Chromium against the real borderscand:
// a station uploads an image holding EICAR inside a zip and watches it become
// flagged; a reviewer sees it on the queue (live), opens the report, finds the
// EICAR finding with its archive path and matched string, previews the
// evidence, looks up "seen before", records a review, marks the finding a
// false positive and sees the history and the queue's derived verdict; a
// station sees no review tools. Also the served headers (CSP, types, caching),
// no console errors or CSP violations, keyboard focus on sign-in, and
// screenshots at 1280x800.
//
// Run by browser-test.sh (CTest browser_console) with BORDERSCAND,
// BROWSER_TOOLS_DIR (node_modules with playwright-core), BROWSER_ARTIFACTS,
// BROWSER_WORK and CHROMIUM in the environment.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
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
const dataDir = path.join(work, 'data');
const configFile = path.join(work, 'borderscand.toml');
const portFile = path.join(work, 'port');
const logFile = path.join(work, 'daemon.log');
let daemon = null;
let base = '';
let context = null;
let profile = null;  // Chromium's fresh user-data-dir
const tokens = {};
const consoleProblems = [];
// Console errors a step expects (e.g. the 401 of a wrong token); matched and removed.
const expectedProblems = [];

function daemonLog() {
  try {
    return fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '(no daemon log)';
  }
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

function createToken(role, name) {
  const out = execFileSync(daemonBin, ['token', 'create', '--role', role, '--name', name, '--config', configFile],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const token = out.trim().split(/\s+/).pop();
  assert.match(token, /^bst_[A-Za-z0-9_-]{43}$/, `token create printed: ${out}`);
  return token;
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

async function apiCall(token, pathname, init = {}) {
  const response = await fetch(base + pathname, { ...init, headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) } });
  return response;
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

async function signIn(page, token) {
  await page.goto(`${base}/`);
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
  fs.mkdirSync(dataDir, { recursive: true });
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(configFile, [
    '[http]', 'listen = "127.0.0.1:0"', 'event_interval_ms = 50',
    '[storage]', `data_dir = "${dataDir}"`, 'min_free_spool_bytes = 0',
    '[jobs]', 'workers = 1', 'scan_threads = 1', 'queue_capacity = 8', 'shutdown_grace_seconds = 5',
    '[log]', 'level = "info"', '',
  ].join('\n'));
  tokens.station = createToken('station', 'kiosk-07');
  tokens.reviewer = createToken('reviewer', 'inspector-1');
  const log = fs.openSync(logFile, 'a');
  daemon = spawn(daemonBin, ['serve', '--config', configFile, '--port-file', portFile], { stdio: ['ignore', log, log] });
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  const port = await Promise.race([
    waitFor(() => fs.existsSync(portFile) && Number(fs.readFileSync(portFile, 'utf8').trim()), 'the daemon to listen'),
    exited.then((code) => { throw new Error(`borderscand exited (${code}) at start:\n${daemonLog()}`); }),
  ]);
  base = `http://127.0.0.1:${port}`;
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
  if (daemon && daemon.exitCode === null) {
    const gone = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10000))]);
    if (daemon.exitCode === null) {
      daemon.kill('SIGKILL');
    }
  }
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
  await page.getByLabel('Image file').setInputFiles(makeImage());
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

test('no console errors or CSP violations happened', () => {
  assert.deepEqual(consoleProblems, []);
  assert.deepEqual(expectedProblems, [], 'every expected console error happened');
});
