import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cspHeader } from './hardening';
import { contentTypeFor, isContained, resolveAppUrl, serveAppRequest } from './protocol';

const ROOT = '/srv/airlock/renderer';

describe('isContained (path.relative, not a prefix test)', () => {
  it('accepts the root and what lies under it', () => {
    expect(isContained(ROOT, ROOT)).toBe(true);
    expect(isContained(ROOT, `${ROOT}/assets/a.js`)).toBe(true);
    expect(isContained(ROOT, `${ROOT}/..foo`)).toBe(true); // a file named "..foo" is inside
  });
  it('refuses siblings sharing the prefix, parents and other trees', () => {
    expect(isContained(ROOT, `${ROOT}-evil/index.html`)).toBe(false);
    expect(isContained(ROOT, '/srv/airlock')).toBe(false);
    expect(isContained(ROOT, '/etc/passwd')).toBe(false);
    expect(isContained(ROOT, `${ROOT}/../../../etc/passwd`)).toBe(false);
  });
});

describe('resolveAppUrl', () => {
  it('maps the root to index.html and paths under the renderer directory', () => {
    expect(resolveAppUrl('app://airlock/', ROOT)).toEqual({ ok: true, filePath: path.join(ROOT, 'index.html') });
    expect(resolveAppUrl('app://airlock', ROOT)).toEqual({ ok: true, filePath: path.join(ROOT, 'index.html') });
    expect(resolveAppUrl('app://airlock/assets/index-abc.js?v=1#x', ROOT)).toEqual({ ok: true, filePath: path.join(ROOT, 'assets', 'index-abc.js') });
    expect(resolveAppUrl('app://airlock/fonts/Inter%20Var.woff2', ROOT)).toEqual({ ok: true, filePath: path.join(ROOT, 'fonts', 'Inter Var.woff2') });
  });

  const traversals = [
    'app://airlock/../../etc/passwd',
    'app://airlock/assets/../../../etc/passwd',
    'app://airlock/%2e%2e/%2e%2e/etc/passwd',
    'app://airlock/%2E%2E/etc/passwd',
    'app://airlock/.%2e/.%2e/etc/passwd',
    'app://airlock/%2e./etc/passwd',
    'app://airlock/..%2f..%2fetc%2fpasswd',
    'app://airlock/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    'app://airlock/..%5c..%5cetc%5cpasswd',
    'app://airlock/..\\..\\etc\\passwd',
    'app://airlock/assets/%2fetc%2fpasswd',
    'app://airlock/./index.html',
  ];
  for (const url of traversals) {
    it(`refuses ${url}`, () => {
      const r = resolveAppUrl(url, ROOT);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.status).toBe(403);
    });
  }

  it('refuses other schemes, hosts, credentials and ports', () => {
    for (const url of ['file:///etc/passwd', 'https://airlock/index.html', 'app://evil/index.html', 'app://airlock.evil/x', 'app://user@airlock/x', 'app://airlock:8080/x', 'app:airlock/x', '']) {
      const r = resolveAppUrl(url, ROOT);
      expect(r.ok, url).toBe(false);
      if (!r.ok) expect(r.status, url).toBe(400);
    }
  });

  it('refuses NUL bytes and malformed percent-encoding', () => {
    expect(resolveAppUrl('app://airlock/index.html%00.js', ROOT)).toMatchObject({ ok: false, status: 400 });
    expect(resolveAppUrl('app://airlock/%E0%A4%A', ROOT)).toMatchObject({ ok: false, status: 400 });
  });
});

describe('contentTypeFor', () => {
  it('names the types the build produces and keeps unknown ones opaque', () => {
    expect(contentTypeFor('/x/index.html')).toBe('text/html; charset=utf-8');
    expect(contentTypeFor('/x/a.JS')).toBe('text/javascript; charset=utf-8');
    expect(contentTypeFor('/x/a.css')).toBe('text/css; charset=utf-8');
    expect(contentTypeFor('/x/a.woff2')).toBe('font/woff2');
    expect(contentTypeFor('/x/README')).toBe('application/octet-stream');
  });
});

describe('serveAppRequest (real files in a temp dir)', () => {
  let base: string;
  let root: string;
  beforeAll(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-proto-'));
    root = path.join(base, 'renderer');
    fs.mkdirSync(path.join(root, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>Airlock</title>');
    fs.writeFileSync(path.join(root, 'assets', 'index.js'), 'console.log(1)');
    fs.writeFileSync(path.join(base, 'secret.txt'), 'top secret');
    fs.mkdirSync(path.join(base, 'renderer-evil'));
    fs.writeFileSync(path.join(base, 'renderer-evil', 'index.html'), 'evil');
    fs.symlinkSync(path.join(base, 'secret.txt'), path.join(root, 'assets', 'link.txt'));
    fs.symlinkSync(base, path.join(root, 'up'));
  });
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('serves index.html and assets with the security headers', async () => {
    const res = await serveAppRequest(new Request('app://airlock/'), root);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>Airlock</title>');
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(cspHeader());
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const js = await serveAppRequest(new Request('app://airlock/assets/index.js'), root);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await serveAppRequest({ url: 'app://airlock/index.html', method: 'HEAD' }, root);
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await serveAppRequest({ url: 'app://airlock/index.html', method: 'POST' }, root);
    expect(post.status).toBe(405);
  });

  it('never reads outside the renderer directory, symlinks included', async () => {
    for (const url of [
      'app://airlock/../secret.txt',
      'app://airlock/%2e%2e/secret.txt',
      'app://airlock/..%2fsecret.txt',
      'app://airlock/assets/link.txt',
      'app://airlock/up/secret.txt',
      'app://airlock/../renderer-evil/index.html',
    ]) {
      const res = await serveAppRequest({ url, method: 'GET' }, root);
      expect(res.status, url).toBeGreaterThanOrEqual(400);
      expect(await res.text(), url).not.toMatch(/top secret|evil/);
    }
  });

  it('404s missing files and directories', async () => {
    expect((await serveAppRequest(new Request('app://airlock/missing.js'), root)).status).toBe(404);
    expect((await serveAppRequest(new Request('app://airlock/assets'), root)).status).toBe(404);
  });
});
