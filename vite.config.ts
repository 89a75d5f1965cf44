import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * The renderer is built once into dist/renderer and served by every shell:
 * Electron loads it from its app:// protocol, `airlock serve` from loopback HTTP.
 * Relative asset URLs (`base: './'`) make the same build work under both.
 */
export default defineConfig({
  root: `${here}renderer`,
  base: './',
  plugins: [react()],
  // The renderer imports the contract from ../shared; allow Vite to read it.
  server: { fs: { allow: [here] } },
  build: {
    outDir: `${here}dist/renderer`,
    emptyOutDir: true,
    target: 'es2022',
    // No source maps in the shipped app: inline maps would bloat the bundle and
    // publish the source with it; external ones are not served by either shell.
    sourcemap: false,
    // Never inline assets as data: URLs for scripts/styles; the CSP only allows 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2048,
  },
});
