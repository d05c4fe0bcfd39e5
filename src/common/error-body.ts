import { HttpStatus } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { ErrorCode, type ErrorDetail } from './errors.js';

/** The one error shape every failing response carries. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  code: string;
  message: string;
  details?: ErrorDetail[];
}

export function errorBody(
  status: number,
  code: string,
  message: string,
  details?: ErrorDetail[],
): ErrorBody {
  return {
    statusCode: status,
    error: STATUS_CODES[status] ?? 'Error',
    code,
    message,
    ...(details ? { details } : {}),
  };
}

const CODE_BY_STATUS: Partial<Record<number, ErrorCode>> = {
  [HttpStatus.BAD_REQUEST]: ErrorCode.BadRequest,
  [HttpStatus.UNAUTHORIZED]: ErrorCode.TokenInvalid,
  [HttpStatus.NOT_FOUND]: ErrorCode.NotFound,
  [HttpStatus.METHOD_NOT_ALLOWED]: ErrorCode.MethodNotAllowed,
  [HttpStatus.PAYLOAD_TOO_LARGE]: ErrorCode.PayloadTooLarge,
  [HttpStatus.UNSUPPORTED_MEDIA_TYPE]: ErrorCode.UnsupportedMediaType,
  [HttpStatus.SERVICE_UNAVAILABLE]: ErrorCode.ServiceUnavailable,
};

export function codeForStatus(status: number): ErrorCode {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? ErrorCode.InternalError : ErrorCode.BadRequest);
}

/**
 * RFC 6750 §3: every 401 but a client's names the Bearer scheme; a request that carried a
 * bad token also gets `error="invalid_token"`. Quotes are stripped from the
 * description so the header stays well-formed.
 */
export function wwwAuthenticate(code: string, message: string): string {
  // RFC 6749 §5.2: a failed client authentication names the scheme clients use, Basic.
  if (code === ErrorCode.InvalidClient) return 'Basic realm="lineage"';
  if (code === ErrorCode.TokenMissing || code === ErrorCode.InvalidCredentials) {
    return 'Bearer realm="lineage"';
  }
  const description = message.replace(/["\\]/g, '');
  return `Bearer realm="lineage", error="invalid_token", error_description="${description}"`;
}
