// What test/globalSetup.ts provides to every test file (read with inject() or services()).
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the `pulsegraph` database on the shared test cluster. */
    pgAdminUrl: string;
    natsUrl: string;
    redisUrl: string;
  }
}
