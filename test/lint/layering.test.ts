import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The layering rule must fail a bad import, not merely exist. Each case lints a
 * small source as if it sat at the given path, with the project's own config.
 */
const eslint = new ESLint({ cwd: process.cwd() });

async function errorsFor(filePath: string, code: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath });
  return (res?.messages ?? []).filter((m) => m.severity === 2).map((m) => m.ruleId ?? m.message);
}

describe('layering lint', () => {
  const bad: Array<[string, string]> = [
    ['renderer/features/x.tsx', "import fs from 'node:fs';"],
    ['renderer/features/x.tsx', "import fs from 'fs';"],
    ['renderer/x.ts', "import { ipcRenderer } from 'electron';"],
    ['renderer/x.ts', "import { Client } from 'ssh2';"],
    ['renderer/x.ts', "import Database from 'better-sqlite3';"],
    ['renderer/x.ts', "import forge from 'node-forge';"],
    ['renderer/x.ts', "import { createCore } from '../electron/core/app';"],
    ['shared/contract/x.ts', "import { createCore } from '../../electron/core/app';"],
    ['shared/contract/x.ts', "import { App } from '../../renderer/App';"],
    ['shared/domain/x.ts', "import crypto from 'node:crypto';"],
    ['electron/core/x.ts', "import { app } from 'electron';"],
    ['electron/core/hosts/x.ts', "import { startServe } from '../../shells/serve';"],
    ['electron/shells/x.ts', "import { app } from 'electron';"],
    ['test/integration/x.ts', "import { app } from 'electron';"],
    ['electron/preload/x.ts', "import fs from 'node:fs';"],
    ['renderer/x.tsx', 'export const X = () => <div dangerouslySetInnerHTML={{ __html: "x" }} />;'],
  ];
  it.each(bad)('refuses %s: %s', async (file, code) => {
    expect(await errorsFor(file, code)).not.toEqual([]);
  });

  const good: Array<[string, string]> = [
    ['renderer/x.ts', "import { channels } from '../shared/contract/index';"],
    ['electron/core/x.ts', "import fs from 'node:fs'; import { channels } from '../../shared/contract/index';"],
    ['electron/main/x.ts', "import { app } from 'electron';"],
    ['electron/preload/x.ts', "import { contextBridge } from 'electron';"],
    ['electron/shells/x.ts', "import { createCore } from '../core/app';"],
  ];
  it.each(good)('allows %s: %s', async (file, code) => {
    expect(await errorsFor(file, code)).toEqual([]);
  });
});
