/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// The Atelier server listens here by default (`atelier serve`).
const backend = 'http://127.0.0.1:8080';

// Everything the server answers itself; the rest of the paths belong to the web client.
const proxy = {
  '/api': { target: backend, changeOrigin: false, ws: true },
  '/healthz': { target: backend },
  '/readyz': { target: backend },
};

export default defineConfig({
  plugins: [preact()],
  // Absolute asset URLs, so deep links such as /p/123 (served index.html by the server's
  // SPA fallback) still load /assets/… correctly.
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // Off by default; `npm run build -- --sourcemap` turns them on for debugging.
    sourcemap: false,
    target: 'es2022',
    // Prints raw and gzip sizes of every emitted chunk.
    reportCompressedSize: true,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy,
    // The protocol's shared fixtures and its description (../proto) are read by the client's tests.
    fs: { allow: ['.', '../proto'] },
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    strictPort: true,
    proxy,
  },
  test: {
    include: ['src/**/*.test.{ts,tsx}'],
    environment: 'node',
    restoreMocks: true,
    unstubGlobals: true,
  },
});
