/**
 * Preload entry, bundled to CommonJS (dist/electron/preload.cjs): sandboxed
 * preloads cannot be ES modules and may require only 'electron'. It exposes the
 * contract-shaped API and nothing else; see api.ts.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { buildApi } from './api';

contextBridge.exposeInMainWorld('airlock', buildApi(ipcRenderer));
