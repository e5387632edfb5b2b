// `npm pack` makes a tarball that installs on its own (no runtime dependency), imports as an
// ES module, and whose types a TypeScript consumer compiles against.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const run = (command, args, cwd) => execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('the packed tarball installs, imports and type-checks in a project of its own', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wspush-client-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  run('npm', ['pack', '--silent', '--pack-destination', dir], root);
  const [tarball] = readdirSync(dir).filter((name) => name.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote a tarball');
  const files = run('tar', ['-tzf', join(dir, tarball)], dir).split('\n').filter(Boolean).sort();
  assert.deepEqual(files, ['package/README.md', 'package/dist/index.d.ts', 'package/dist/index.js', 'package/package.json']);

  const project = join(dir, 'consumer');
  run('mkdir', ['-p', project], dir);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tarball)], project);
  assert.deepEqual(readdirSync(join(project, 'node_modules')).sort(), ['.package-lock.json', '@wspush'], 'no runtime dependency came with it');

  const exported = run('node', ['--input-type=module', '-e',
    "const m = await import('@wspush/client'); console.log(Object.keys(m).sort().join(','))"], project);
  assert.equal(exported.trim(), 'ServerError,WspushClient,connect');

  writeFileSync(join(project, 'use.ts'), `
import { connect, ServerError, WspushClient, type Position, type State } from '@wspush/client';
const client: WspushClient = connect('wss://example.invalid/prod', { token: async () => null, heartbeatMs: 30_000 });
const off = client.on('state', (state: State, detail) => console.log(state, detail?.reason));
client.on('gap', (stream: string) => console.log(stream));
async function main(): Promise<void> {
  try {
    await client.subscribe('room:42', (_data: unknown, meta) => {
      const position: Position | undefined = meta.positions['room:42'];
      console.log(position?.seq);
    });
  } catch (error) {
    if (error instanceof ServerError) console.log(error.message);
  }
  off();
  client.close();
}
void main;
`);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [] },
    files: ['use.ts'],
  }));
  run('node', [tsc, '-p', 'tsconfig.json'], project);
});
