import { join } from 'node:path';

/** What an error response is read for: supertest's Response has all of it. */
export interface ErrorResponse {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface ErrorBody {
  statusCode: number;
  error: string;
  code: string;
  message: string;
  /** The OAuth endpoints' RFC 6749 §5.2 member: the message again. */
  error_description?: string;
  details?: { field: string; messages: string[] }[];
}

/** The checkout's absolute path: a message naming a source file would contain it. */
const ROOT = join(import.meta.dirname, '..', '..');

/**
 * What an error body must never carry (OWASP ASVS 7.4.1): stack frames, SQL,
 * driver errors, source paths and positions (and the checkout's path, below).
 */
export const LEAKS: readonly RegExp[] = [
  /\n\s+at /,
  /"stack"/,
  /Error:/,
  /QueryFailedError/,
  /\bSELECT\b[\s\S]*\bFROM\b/i,
  /\bINSERT INTO\b/i,
  /\bUPDATE\b[\s\S]*\bSET\b/,
  /relation "/i,
  /syntax error/i,
  /invalid byte sequence/i,
  /violates .* constraint/i,
  /node_modules/,
  /\.(ts|js):\d+/,
];

/**
 * The one error shape of every failing response, whatever its status: JSON
 * with exactly statusCode, error, code, message (and details when there are
 * some), strings where strings belong, nothing internal, never cached; on a
 * 401, RFC 6750 §3's Bearer challenge, with `error="invalid_token"` when the
 * failure is about a presented token (§3.1), or the Basic challenge of a
 * failed client authentication (`invalid_client`). Returns the body.
 */
export function expectErrorBody(res: ErrorResponse): ErrorBody {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.body as Record<string, unknown>;
  const keys = Object.keys(body).filter((key) => key !== 'details');
  if ('error_description' in body) {
    // An OAuth endpoint's error (RFC 6749 §5.2): the same shape, plus the OAuth members.
    expect(keys.sort()).toEqual(['code', 'error', 'error_description', 'message', 'statusCode']);
    expect(body.error).toMatch(
      /^(invalid_request|invalid_client|invalid_grant|unsupported_grant_type|invalid_dpop_proof|use_dpop_nonce)$/,
    );
    expect(body.error_description).toBe(body.message);
  } else {
    expect(keys.sort()).toEqual(['code', 'error', 'message', 'statusCode']);
  }
  expect(body.statusCode).toBe(res.status);
  expect(typeof body.code).toBe('string');
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  if ('details' in body) expect(Array.isArray(body.details)).toBe(true);
  const text = JSON.stringify(body);
  for (const leak of LEAKS) expect(text).not.toMatch(leak);
  expect(text).not.toContain(ROOT);
  expect(body).not.toHaveProperty('stack');
  expect(res.headers['cache-control']).toBe('no-store');
  if (res.status === 401 && body.code === 'invalid_client') {
    // RFC 6749 §5.2: a client that failed to authenticate is challenged to use Basic.
    expect(res.headers['www-authenticate']).toBe('Basic realm="lineage"');
  } else if (
    res.status === 401 &&
    (body.code === 'invalid_dpop_proof' || body.code === 'use_dpop_nonce')
  ) {
    // RFC 9449 §7.1, §9: a resource refusing a DPoP proof challenges under the DPoP scheme.
    expect(res.headers['www-authenticate']).toMatch(
      new RegExp(`^DPoP realm="lineage", error="${body.code}", error_description="[\x20-\x7e]*"$`),
    );
  } else if (res.status === 401) {
    const challenge = res.headers['www-authenticate'];
    expect(challenge).toMatch(/^Bearer realm="lineage"/);
    if (body.code === 'token_missing' || body.code === 'invalid_credentials') {
      expect(challenge).not.toContain('error=');
    } else {
      expect(challenge).toContain('error="invalid_token"');
    }
  }
  return body as unknown as ErrorBody;
}

/** `status` with `code`, in the one error shape (see expectErrorBody). Returns the body. */
export function expectError(res: ErrorResponse, status: number, code: string): ErrorBody {
  expect({ status: res.status, code: (res.body as { code?: unknown } | undefined)?.code }).toEqual({
    status,
    code,
  });
  return expectErrorBody(res);
}

/** 400 validation_failed whose details name `field` (each with its messages). */
export function expectValidationFailed(res: ErrorResponse, field?: string): ErrorBody {
  const body = expectError(res, 400, 'validation_failed');
  expect(body.details?.length).toBeGreaterThan(0);
  if (field !== undefined) expect(body.details?.map((detail) => detail.field)).toContain(field);
  for (const detail of body.details ?? []) {
    expect(detail.messages.length).toBeGreaterThan(0);
    for (const message of detail.messages) expect(typeof message).toBe('string');
  }
  return body;
}
