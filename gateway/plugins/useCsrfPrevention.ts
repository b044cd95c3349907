// CSRF protection for GET and "simple" POSTs, the requests a browser sends cross-site without a CORS
// preflight: graphql-yoga's check, with the platform's error code (yoga's carries none).
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { requestError } from '../../lib/errors.ts';

/**
 * Headers any of which makes a request preflighted, so a cross-site page cannot send it unnoticed;
 * `authorization` is one, and every operation but dev-mode introspection needs it anyway.
 */
export const CSRF_HEADERS = [
  'authorization',
  'x-graphql-csrf',
  'apollo-require-preflight',
  'x-apollo-operation-name',
];

/** Refuses (403 CSRF_PREVENTED) GET and form/text POST requests that carry none of CSRF_HEADERS. */
export function useCsrfPrevention(): Plugin {
  const check = useCSRFPrevention({ requestHeaders: CSRF_HEADERS }).onRequestParse!;
  return {
    onRequestParse(payload) {
      try {
        return check(payload);
      } catch (error) {
        if (!(error instanceof GraphQLError)) throw error;
        throw requestError(
          'CSRF_PREVENTED',
          `a GET or form POST must carry one of the headers ${CSRF_HEADERS.join(', ')}: send Authorization or x-graphql-csrf: 1`,
        );
      }
    },
  };
}
