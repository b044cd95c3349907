// GET /reports/<generationId>/download: a completed report generation's file, streamed from
// DATA_DIR/reports (which the report workers write; a shared volume when they run elsewhere).
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { authorize, bearerToken, type TokenVerifier } from '../lib/auth.ts';
import { errorCodeOf } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { reportsRoot } from '../subgraphs/reports/output.ts';
import { generationStore, reportStore, type GenerationRow } from '../subgraphs/reports/store.ts';
import { HttpRefusal, refuse } from '../lib/httpRefusal.ts';

/** The path of the endpoint; group 1 is the generation id. */
const DOWNLOAD_PATH = /^\/reports\/([^/]+)\/download$/;

/** Whether a request path is the download endpoint's. */
export function isReportDownloadPath(path: string | undefined): boolean {
  return path !== undefined && DOWNLOAD_PATH.test(path);
}

/** What the download endpoint needs from the gateway. */
export interface ReportDownloadOptions {
  verifier: TokenVerifier;
  /** The gateway's pool; without DATABASE_URL there is none and downloads answer 503. */
  pool: pg.Pool | undefined;
  dataDir: string;
  logger: Logger;
}

/** The generation id of a download URL (percent-decoded). */
function generationIdOf(url: string): string {
  const raw = DOWNLOAD_PATH.exec(url.split('?')[0]!)?.[1] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    throw refuse('NOT_FOUND', `no report generation with id "${raw}"`);
  }
}

const CONTENT_TYPES = { CSV: 'text/csv; charset=utf-8', JSON: 'application/json' } as const;

/**
 * The Content-Disposition of a download: `<report-name>-<YYYY-MM-DD>.<ext>`, as a plain ASCII
 * filename (anything else becomes "-") and, for clients that read it, the name in UTF-8 (RFC 6266).
 */
export function contentDisposition(reportName: string, generation: GenerationRow): string {
  const date = (generation.finishedAt ?? generation.createdAt).toISOString().slice(0, 10);
  const suffix = `-${date}.${generation.format === 'CSV' ? 'csv' : 'json'}`;
  // Control characters and path separators never reach a file name; runs of spaces become one.
  const cleaned = reportName
    .replace(/[\p{Cc}\\/\s]+/gu, ' ')
    .trim()
    .slice(0, 100);
  const ascii =
    cleaned
      .normalize('NFKD')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/-{2,}/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '') || 'report';
  const utf8 = encodeURIComponent(`${cleaned || 'report'}${suffix}`).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}${suffix}"; filename*=UTF-8''${utf8}`;
}

/** Builds the download handler: token, role `read`, the caller's tenant's generation, then its file. */
export function createReportDownload(
  options: ReportDownloadOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const root = reportsRoot(resolve(options.dataDir));

  async function prepare(req: IncomingMessage) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw refuse('METHOD_NOT_ALLOWED', `expected GET, but got ${req.method}`, {
        allow: 'GET, HEAD',
      });
    }
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw refuse('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>', {
        'www-authenticate': 'Bearer',
      });
    }
    const principal = authorize(await options.verifier.verify(token), 'read');
    if (!options.pool) {
      throw refuse('SERVICE_UNAVAILABLE', 'report downloads need the gateway to have DATABASE_URL');
    }
    const id = generationIdOf(req.url!);
    // Loaded here: a gateway without DATABASE_URL never loads pg (server.ts).
    const { withTenant } = await import('../db/pool.ts');
    // Row-level security: another tenant's generation is simply not there, so it is a 404, not a 403.
    const found = await withTenant(options.pool, principal.tenant, async (client) => {
      const generation = await generationStore.get(client, id);
      const report = generation && (await reportStore.get(client, generation.reportId));
      return generation && report ? { generation, report } : undefined;
    });
    if (!found) throw refuse('NOT_FOUND', `no report generation with id "${id}"`);
    const { generation, report } = found;
    if (generation.status !== 'COMPLETED' || !generation.filePath) {
      const progress = generation.status === 'RUNNING' ? ` (${Math.round(generation.progress * 100)} %)` : '';
      throw refuse(
        'CONFLICT',
        `report generation ${id} is ${generation.status}${progress}: it can be downloaded once COMPLETED`,
      );
    }
    // The path comes from the database; still, nothing outside the tenant's own directory is served.
    const tenantRoot = join(root, principal.tenant);
    const path = resolve(root, generation.filePath);
    const inside = relative(tenantRoot, path);
    if (!inside || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
      throw new Error(`generation ${id} has a file path outside ${tenantRoot}: ${generation.filePath}`);
    }
    let file: FileHandle;
    try {
      // Opened before the headers go out: a rerun renames a new file over it, and this one stays whole.
      file = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      options.logger.warn({ generationId: id, path }, 'report file missing (is DATA_DIR/reports shared?)');
      throw refuse('NOT_FOUND', `the file of report generation ${id} is no longer available`);
    }
    return { file, generation, disposition: contentDisposition(report.name, generation) };
  }

  return (req, res) => {
    const answerRefusal = (error: unknown) => {
      const code = errorCodeOf(error);
      const refusal =
        error instanceof HttpRefusal ? error : code ? refuse(code, (error as Error).message) : undefined;
      if (!refusal) options.logger.error({ err: error, url: req.url }, 'report download failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res
        .writeHead(refusal?.status ?? 500, {
          'content-type': 'application/json; charset=utf-8',
          ...refusal?.headers,
        })
        .end(
          JSON.stringify({
            errors: [
              {
                message: refusal?.message ?? 'internal error',
                extensions: { code: refusal?.code ?? 'INTERNAL_SERVER_ERROR' },
              },
            ],
          }),
        );
    };
    void prepare(req).then(async ({ file, generation, disposition }) => {
      try {
        const { size } = await file.stat();
        res.writeHead(200, {
          'content-type': CONTENT_TYPES[generation.format],
          'content-length': String(size),
          'content-disposition': disposition,
          'cache-control': 'private, no-store',
          'x-content-type-options': 'nosniff',
        });
        if (req.method === 'HEAD') res.end();
        else await pipeline(file.createReadStream({ autoClose: false }), res);
      } catch (error) {
        // A client that goes away mid-download is not an error of ours.
        if (!res.destroyed) answerRefusal(error);
      } finally {
        await file.close();
      }
    }, answerRefusal);
  };
}
