# One image for every Pulsegraph process; docker-compose.yml picks the entry point per service.
# The dashboard is built in a stage with the dev dependencies (Vite); the image keeps only its output.
FROM node:24-slim AS dashboard
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npx vite build dashboard

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
COPY --from=dashboard /app/dashboard/dist dashboard/dist
# Node's compile cache (lib/compileCache.ts), writable by the processes, which run as node.
ENV NODE_COMPILE_CACHE=node_modules/.cache/node-compile
RUN mkdir -p node_modules/.cache/node-compile && chown node:node node_modules/.cache/node-compile
USER node
