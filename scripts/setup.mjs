// What `npm start` and `npm test` set up when it is missing: npm dependencies and the
// Debian packages the lab and the browser tests need. As root they are installed;
// otherwise the exact apt-get line is printed and the command stops.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Debian package → a file it provides, to tell whether it is installed. */
export const DEBIAN = {
  'openssh-server': '/usr/sbin/sshd',
  'openssh-client': '/usr/bin/ssh-keygen',
  chromium: '/usr/bin/chromium',
  nftables: '/usr/sbin/nft',
  iproute2: '/usr/sbin/ip',
  // `npm run bench -- fleet`: the Ansible anchor (Debian's ansible-core 2.14), timed by GNU time.
  'ansible-core': '/usr/bin/ansible-playbook',
  time: '/usr/bin/time',
  // The lab's registry host. Its postinst would start the package's own service on this
  // machine's :5000: ensureDebian installs it with invoke-rc.d denied (a policy-rc.d).
  'docker-registry': '/usr/bin/docker-registry',
};

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

export function ensureNpmDeps() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  const fresh = fs.existsSync(marker) && fs.statSync(marker).mtimeMs >= fs.statSync(lock).mtimeMs - 1000;
  if (fresh && fs.existsSync(path.join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))) return;
  console.error('setup: installing npm dependencies (npm ci)…');
  if (run('npm', ['ci', '--no-audit', '--no-fund']) !== 0) {
    console.error('setup: npm ci failed');
    process.exit(1);
  }
}

export function ensureDebian(names = Object.keys(DEBIAN)) {
  const missing = names.filter((n) => !fs.existsSync(DEBIAN[n]));
  if (missing.length === 0) return;
  const line = `apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`setup: missing Debian packages. Run as root:\n\n  sudo apt-get update && sudo ${line}\n`);
    process.exit(1);
  }
  console.error(`setup: installing ${missing.join(', ')}…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !fs.existsSync(policy);
  if (ownPolicy) fs.writeFileSync(policy, '#!/bin/sh\n# written by Airlock setup while installing packages: start no services\nexit 101\n', { mode: 0o755 });
  let ok;
  try {
    ok = run('apt-get', ['install', '-y', '-q', ...missing], { env }) === 0;
    if (!ok) {
      run('apt-get', ['update', '-q'], { env });
      ok = run('apt-get', ['install', '-y', '-q', ...missing], { env }) === 0;
    }
  } finally {
    if (ownPolicy) fs.rmSync(policy, { force: true });
  }
  if (!ok) {
    console.error(`setup: could not install: ${line}`);
    process.exit(1);
  }
}

export function build() {
  if (run(process.execPath, [path.join(root, 'scripts', 'build.mjs')]) !== 0) process.exit(1);
}
