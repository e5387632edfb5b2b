// The demo page in headless Chromium: connect as a user, subscribe, and see a push sent
// through POST /notifications arrive on the page. Run with `node --test integration-tests/browser/`
// after `cargo build -p wspush-local` (.ci/test does both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const binary = process.env.WSPUSH_LOCAL_BIN
  ?? fileURLToPath(new URL('../../target/debug/wspush-local', import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function startGateway() {
  const child = spawn(binary, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`wspush-local did not start within 30 s: ${output}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const found = output.match(/demo page:\s+(http:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('error', (error) => reject(new Error(`cannot start ${binary}: ${error.message}`)));
    child.on('exit', (code) => reject(new Error(`wspush-local exited with ${code}: ${output}`)));
  });
  return { child, started };
}

test('a push sent through /notifications shows up on the demo page', async (t) => {
  const { child, started } = startGateway();
  t.after(() => child.kill('SIGINT'));
  const url = await started;
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();

  await page.goto(url);
  await page.fill('#user', 'ana');
  await page.click('#connect');
  await page.locator('#status', { hasText: 'connected as ana' }).waitFor();
  await page.fill('#topic', 'room:7');
  await page.click('#subscribe');
  await page.locator('#messages li', { hasText: '"ok":true' }).waitFor();

  const response = await fetch(new URL('/notifications', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ topics: ['room:7'], data: { text: 'hello from the test' } }),
  });
  const report = await response.json();
  assert.equal(response.status, 200);
  assert.equal(report.delivered, 1);
  await page.locator('#messages li', { hasText: 'hello from the test' }).waitFor({ timeout: 5_000 });

  await page.fill('#request', JSON.stringify({ users: ['ana'], data: 'sent from the page' }));
  await page.click('#send');
  await page.locator('#messages li', { hasText: 'sent from the page' }).waitFor({ timeout: 5_000 });
  await page.locator('#report', { hasText: '200' }).waitFor();
});
