/**
 * Errors as the API shows them: `{ error: { code, message, details? } }`, and
 * the one table that maps error codes to HTTP status codes.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { OrchError, type ErrorCode } from '../errors.ts';

/** Codes the HTTP layer adds to {@link ErrorCode}: problems with the request itself. */
export type ApiErrorCode =
  | ErrorCode
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unavailable'
  | 'internal';

/** One problem with a request's input: where (`path`, e.g. `body.title`) and what. */
export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: ApiErrorCode; message: string; details?: ErrorDetail[] | Record<string, unknown> };
}

/** A request the API refuses, thrown by routes and middleware and rendered by the error handler. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly details: ErrorDetail[] | undefined;
  constructor(code: ApiErrorCode, message: string, details?: ErrorDetail[]) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
  }
}

/**
 * The one place that maps error codes to HTTP status codes. A `Record` over
 * every code, so a new {@link ErrorCode} does not compile until it is mapped.
 */
export const HTTP_STATUS: Readonly<Record<ApiErrorCode, ContentfulStatusCode>> = {
  bad_request: 400,
  invalid_argument: 400,
  config_invalid: 400,
  ambiguous_project: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  unknown_task: 404,
  unknown_project: 404,
  invalid_state: 409,
  not_initialized: 409,
  not_a_git_repo: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  agent_not_found: 500,
  db_open_failed: 500,
  db_migration_failed: 500,
  git_failed: 500,
  git_refused: 409,
  internal: 500,
  unavailable: 503,
};

/** The status and body for any thrown value; unknown errors become a 500 without their text. */
export function errorResponse(error: unknown): { status: ContentfulStatusCode; body: ErrorBody } {
  if (error instanceof ApiError) {
    return {
      status: HTTP_STATUS[error.code],
      body: {
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: error.details } : {}),
        },
      },
    };
  }
  if (error instanceof OrchError) {
    const details = Object.keys(error.context).length ? { details: error.context } : {};
    return {
      status: HTTP_STATUS[error.code] ?? 500,
      body: { error: { code: error.code, message: error.message, ...details } },
    };
  }
  return {
    status: 500,
    body: { error: { code: 'internal', message: 'internal error; see the server log' } },
  };
}
