// Production error masking: an unexpected error reaches the client as "Unexpected error." with the
// request's id in `extensions.requestId`, and the log line with the real error carries the same id.
import { GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { maskError, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { errorCodeOf } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';

const MASKED = 'Unexpected error.';

/**
 * Whether the platform raised the error on purpose: it carries one of the platform's stable codes
 * (lib/errors.ts) other than INTERNAL_SERVER_ERROR. A subgraph error without one arrives as
 * DOWNSTREAM_SERVICE_ERROR, which is not: its message was never meant for clients.
 */
function isDeliberate(error: GraphQLError): boolean {
  const code = errorCodeOf(error);
  return code !== undefined && code !== 'INTERNAL_SERVER_ERROR';
}

/**
 * yoga's last-resort mask (errors outside execution): keeps deliberate errors, a subgraph's included
 * (it arrives with its stable code; subgraphs mask their own unexpected errors), and masked ones.
 */
export function keepPlatformErrors(error: unknown, message: string, isDev?: boolean): Error {
  if (error instanceof GraphQLError && (isDeliberate(error) || error.extensions['requestId'])) return error;
  return maskError(error, message, isDev);
}

/** Masks every unexpected error of an operation's result, logging it under the request's id. */
export function useErrorMasking(logger: Logger): Plugin<YogaInitialContext> {
  return {
    onExecute({ args }) {
      const { request } = (args as ExecutionArgs & { contextValue: YogaInitialContext }).contextValue;
      const requestId = request.headers.get('x-request-id') ?? undefined;
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          const { errors } = result as ExecutionResult;
          if (!errors?.some((error) => !isDeliberate(error))) return;
          setResult({
            ...(result as ExecutionResult),
            errors: errors.map((error) => {
              if (isDeliberate(error)) return error;
              logger.error(
                { err: error.originalError ?? error, path: error.path, requestId },
                'operation failed',
              );
              return new GraphQLError(MASKED, {
                path: error.path,
                extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
              });
            }),
          });
        },
      };
    },
  };
}
