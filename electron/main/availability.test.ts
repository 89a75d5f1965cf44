import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { electronBinaryPath, findElectronPackageDir, platformExecutable } from './availability';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-electron-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function exe(p: string, mode = 0o755): string {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, '#!/bin/sh\n');
  fs.chmodSync(p, mode);
  return p;
}

describe('platformExecutable', () => {
  it('names the binary like electron/install.js', () => {
    expect(platformExecutable('linux')).toBe('electron');
    expect(platformExecutable('win32')).toBe('electron.exe');
    expect(platformExecutable('darwin')).toBe('Electron.app/Contents/MacOS/Electron');
    expect(platformExecutable('aix')).toBeNull();
  });
});

describe('electronBinaryPath', () => {
  it('returns null when neither the override nor the package dist has a binary', () => {
    const pkg = path.join(tmp, 'electron');
    fs.mkdirSync(pkg);
    expect(electronBinaryPath({ env: {}, platform: 'linux', electronDir: pkg })).toBeNull();
    expect(electronBinaryPath({ env: {}, platform: 'linux', electronDir: null })).toBeNull();
  });

  it('prefers ELECTRON_OVERRIDE_DIST_PATH when it holds the executable', () => {
    const dist = path.join(tmp, 'override');
    const bin = exe(path.join(dist, 'electron'));
    const pkg = path.join(tmp, 'electron');
    exe(path.join(pkg, 'dist', 'electron'));
    expect(electronBinaryPath({ env: { ELECTRON_OVERRIDE_DIST_PATH: dist }, platform: 'linux', electronDir: pkg })).toBe(bin);
  });

  it('falls back to the package dist when the override is empty of a binary', () => {
    const pkg = path.join(tmp, 'electron');
    const bin = exe(path.join(pkg, 'dist', 'electron'));
    expect(electronBinaryPath({ env: { ELECTRON_OVERRIDE_DIST_PATH: path.join(tmp, 'nothing') }, platform: 'linux', electronDir: pkg })).toBe(bin);
  });

  it('uses path.txt for the executable name, ignoring one that escapes dist/', () => {
    const pkg = path.join(tmp, 'electron');
    const bin = exe(path.join(pkg, 'dist', 'custom-electron'));
    fs.writeFileSync(path.join(pkg, 'path.txt'), 'custom-electron');
    expect(electronBinaryPath({ env: {}, platform: 'linux', electronDir: pkg })).toBe(bin);
    exe(path.join(tmp, 'outside'));
    fs.writeFileSync(path.join(pkg, 'path.txt'), '../../outside');
    expect(electronBinaryPath({ env: {}, platform: 'linux', electronDir: pkg })).toBeNull();
  });

  it('refuses a directory or a file that is not executable', () => {
    const pkg = path.join(tmp, 'electron');
    fs.mkdirSync(path.join(pkg, 'dist', 'electron'), { recursive: true });
    expect(electronBinaryPath({ env: {}, platform: 'linux', electronDir: pkg })).toBeNull();
    const dist = path.join(tmp, 'override');
    exe(path.join(dist, 'electron'), 0o644);
    // Root may execute any file with an x bit only; 0644 has none, so access(X_OK) fails even for root.
    expect(electronBinaryPath({ env: { ELECTRON_OVERRIDE_DIST_PATH: dist }, platform: 'linux', electronDir: null })).toBeNull();
  });

  it('finds the installed electron package without running it', () => {
    const dir = findElectronPackageDir();
    expect(dir).not.toBeNull();
    expect(fs.existsSync(path.join(dir!, 'electron.d.ts'))).toBe(true);
    // On this machine the package has no dist/: the answer is null, and nothing was downloaded.
    if (!fs.existsSync(path.join(dir!, 'dist'))) {
      expect(electronBinaryPath({ env: {} })).toBeNull();
      expect(fs.existsSync(path.join(dir!, 'dist'))).toBe(false);
    }
  });
});
