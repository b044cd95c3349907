// Vite for the dashboard: `npx vite dashboard` serves it in development with the gateway behind a
// proxy (GATEWAY_URL, default http://127.0.0.1:4000); `vite build` (npm start runs it when needed,
// see build.ts) writes dashboard/dist, which the gateway serves at /.
import type { ClientRequest } from 'node:http';
import { defineConfig } from 'vite';

const gateway = process.env['GATEWAY_URL'] ?? 'http://127.0.0.1:4000';

// To the gateway, the dev server is a same-origin client: the browser's Origin (Vite's port) would
// otherwise be checked against CORS_ORIGINS and refused on the WebSocket upgrade.
const dropOrigin = (request: ClientRequest) => request.removeHeader('origin');

export default defineConfig({
  root: import.meta.dirname,
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false },
  server: {
    proxy: {
      '/graphql': {
        target: gateway,
        ws: true,
        configure: (proxy) => {
          proxy.on('proxyReq', dropOrigin);
          proxy.on('proxyReqWs', dropOrigin);
        },
      },
    },
  },
});
