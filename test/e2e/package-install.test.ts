/**
 * What users install is what we test: `npm pack` makes the tarball, `npm install -g` puts it into a scratch
 * prefix the way README.md's "Install" says (without a warning), and the installed `knocktail` runs
 * --version, check-config and replay, with its manual page in place.
 *
 * No network: the dependencies come from this checkout's node_modules, served by a registry on 127.0.0.1
 * that this test runs for the duration of the install (one packument per package of package-lock.json
 * that is not a devDependency, and a tarball made from its installed directory). npm resolves and
 * verifies them as it would from registry.npmjs.org, with a scratch cache, so nothing of the user's npm
 * set-up is used or changed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixture, needs, repoRoot, tempDir } from '../helpers.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
/** npm 11.16 added install-script approval (`--allow-scripts`); older npm would warn about the option. */
const npmVersion = spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout.trim();
const approvesScripts = (() => {
  const [major, minor] = npmVersion.split('.').map(Number);
  return major! > 11 || (major === 11 && minor! >= 16);
})();
/** The install scripts README.md tells users to allow: pcap builds the capture module; core-js-pure (under xregexp) prints a note. */
const ALLOWED_SCRIPTS = '--allow-scripts=pcap,core-js-pure';

interface Served {
  name: string;
  version: string;
  manifest: Record<string, unknown>;
  tarball: Buffer;
}

/** The packages of package-lock.json that users get (not devDependencies), as installed in node_modules. */
function installedDependencies(scratch: string): Served[] {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8'));
  const served: Served[] = [];
  for (const [path, entry] of Object.entries<{ version: string; dev?: boolean }>(lock.packages)) {
    const dir = join(repoRoot, path);
    if (path === '' || entry.dev === true || !existsSync(join(dir, 'package.json'))) continue;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = join(scratch, `${served.length}.tgz`);
    // The package directory as its published tarball holds it: under package/, without what installing added.
    const packed = spawnSync('tar', ['-czf', file, '--exclude=./node_modules', '--exclude=./build', '--transform=s,^\\.,package,', '-C', dir, '.'], { encoding: 'utf8' });
    assert.equal(packed.status, 0, packed.stderr);
    const gyp = existsSync(join(dir, 'binding.gyp'));
    const scripts = { ...(gyp ? { install: 'node-gyp rebuild' } : {}), ...manifest.scripts };
    const hasInstallScript = ['preinstall', 'install', 'postinstall'].some((script) => script in scripts);
    served.push({ name: manifest.name, version: manifest.version, manifest: { ...manifest, scripts, ...(gyp ? { gypfile: true } : {}), hasInstallScript }, tarball: readFileSync(file) });
  }
  return served;
}

/** A registry on 127.0.0.1 serving `packages` (packuments and tarballs); 404 for anything else. */
async function localRegistry(packages: Served[]): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://registry').pathname).slice(1);
    const tarball = packages.find((p) => path === `${p.name}/-/${p.name.split('/').pop()}-${p.version}.tgz`);
    if (tarball !== undefined) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(tarball.tarball);
      return;
    }
    const versions = packages.filter((p) => p.name === path);
    if (versions.length === 0) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const base = `http://${request.headers.host}`;
    const packument = {
      name: path,
      'dist-tags': { latest: versions.at(-1)!.version },
      versions: Object.fromEntries(
        versions.map((p) => [
          p.version,
          {
            ...p.manifest,
            dist: {
              tarball: `${base}/${p.name}/-/${p.name.split('/').pop()}-${p.version}.tgz`,
              integrity: `sha512-${createHash('sha512').update(p.tarball).digest('base64')}`,
              shasum: createHash('sha1').update(p.tarball).digest('hex'),
            },
          },
        ]),
      ),
    };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** Runs a command asynchronously (the registry is served by this process meanwhile). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: repoRoot, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('the packed tarball, installed globally with npm', { skip: needs({ tools: ['npm', 'tar'] }) }, () => {
  const scratch = tempDir('knocktail-package-');
  const prefix = join(scratch, 'prefix');
  const knocktail = join(prefix, 'bin', 'knocktail');
  let registry: { server: Server; url: string } | null = null;
  let install: { code: number | null; stdout: string; stderr: string };

  before(async () => {
    // Without lifecycle scripts: `npm test` has just built dist/ (what prepack would build again).
    const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(packed.status, 0, packed.stderr);
    const tarball = join(scratch, JSON.parse(packed.stdout)[0].filename);
    registry = await localRegistry(installedDependencies(scratch));
    // The user's npm config applies as for any install (it may say where node's headers are, for pcap's
    // build: nodedir); the command line replaces its registry, cache and proxy.
    const args = ['install', '-g', '--prefix', prefix, '--cache', join(scratch, 'cache'), '--registry', registry.url, '--noproxy', '127.0.0.1'];
    install = await run('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier', ...(approvesScripts ? [ALLOWED_SCRIPTS] : []), tarball], process.env, 600_000);
  });

  after(() => registry?.server.close());

  it('installs without an error or a warning', { timeout: 60_000 }, () => {
    assert.equal(install.code, 0, install.stdout + install.stderr);
    assert.doesNotMatch(install.stderr, /warn|ERR/i, `npm ${npmVersion} said:\n${install.stderr}`);
    assert.match(install.stdout, /added \d+ packages?/);
  });

  it('builds the optional pcap module as npm ci built it in the checkout', { timeout: 60_000 }, () => {
    const binding = join('node_modules', 'pcap', 'build', 'Release', 'pcap_binding.node');
    assert.equal(existsSync(join(prefix, 'lib', 'node_modules', 'knocktail', binding)), existsSync(join(repoRoot, binding)));
  });

  it('runs knocktail --version from the prefix', { timeout: 60_000 }, () => {
    const result = spawnSync(knocktail, ['--version'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, `knocktail ${pkg.version}\n`);
  });

  it('checks the shipped example config with the installed formats', { timeout: 60_000 }, () => {
    const installed = join(prefix, 'lib', 'node_modules', 'knocktail');
    // The example follows /var/log/kern.log into /var/lib/knocktail: point them into the scratch directory.
    const conf = join(scratch, 'example.conf');
    const log = join(scratch, 'kern.log');
    writeFileSync(log, '');
    const example = readFileSync(join(installed, 'conf', 'example.conf'), 'utf8');
    writeFileSync(conf, example.replace(/FirewallLog = .*/, `FirewallLog = ${log}\n\tStateDir = ${join(scratch, 'state')}`));
    const result = spawnSync(knocktail, ['check-config', '--json', '-c', conf], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout);
    assert.deepEqual(report.doors.map((door: { name: string }) => door.name), ['openSSH', 'openHTTPS', 'mixedProtocols']);
    assert.equal(report.formats[0].file, join(installed, 'formats', 'iptables.conf'));
  });

  it('replays the bundled kern.log from the prefix', { timeout: 60_000 }, () => {
    const conf = join(prefix, 'lib', 'node_modules', 'knocktail', 'conf', 'example.conf');
    const result = spawnSync(knocktail, ['replay', '-c', conf, fixture('real', 'iptables-kernlog-rfc3339.log')], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /open +openSSH +10\.66\.0\.2/);
    assert.match(result.stdout, /^door openSSH opened \d+ times? for /m);
  });

  it('installs the manual page and ships the bash completion', { timeout: 60_000 }, () => {
    assert.ok(existsSync(join(prefix, 'share', 'man', 'man1', 'knocktail.1')), 'man page linked into share/man/man1');
    assert.ok(readdirSync(join(prefix, 'lib', 'node_modules', 'knocktail', 'completion')).includes('knocktail.bash'));
  });
});
