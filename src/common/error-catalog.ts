import { ErrorCode } from './errors.js';

/**
 * What a client does about an error, in one word: the SDK's behaviour for
 * each code follows it (test/client/error-catalog.spec.ts checks that).
 *
 * - `fix_request`: the request is wrong and will fail again as it is.
 * - `tell_user`: the person typed something the server refused; say so.
 * - `refresh`: refresh the session once, then retry the request once.
 * - `sign_in`: the session is over (or there never was one); sign in again.
 * - `resend`: the request was fine but lost a race or a proof; resend as the
 *   row says, without asking the person.
 * - `retry_later`: nothing was done; retry after `Retry-After` seconds.
 */
export type ClientAction =
  'fix_request' | 'tell_user' | 'refresh' | 'sign_in' | 'resend' | 'retry_later';

export interface ErrorCatalogEntry {
  /** Every status this code is answered with, the usual one first. */
  status: readonly number[];
  action: ClientAction;
  /** When it happens and what to do, in a sentence or two for the README's table. */
  advice: string;
}

/**
 * Every error code, with its status and what a client should do. Keyed by
 * ErrorCode, so a new code does not compile until it has its row here; the
 * README's error table is rendered from this (`npm run docs:errors`) and a
 * test fails when the two differ.
 */
export const ERROR_CATALOG: { readonly [C in ErrorCode]: ErrorCatalogEntry } = {
  [ErrorCode.ValidationFailed]: {
    status: [400],
    action: 'fix_request',
    advice: 'A field is missing or out of range; `details` lists each field and why.',
  },
  [ErrorCode.BadRequest]: {
    status: [400],
    action: 'fix_request',
    advice: 'The body is not valid JSON, or a parameter is repeated.',
  },
  [ErrorCode.CookieDuplicated]: {
    status: [400],
    action: 'fix_request',
    advice:
      'The refresh cookie was sent twice (a sibling subdomain planted one); nothing was changed. Clear cookies for the site.',
  },
  [ErrorCode.PayloadTooLarge]: {
    status: [413],
    action: 'fix_request',
    advice: 'The body is over 16 KiB.',
  },
  [ErrorCode.UnsupportedMediaType]: {
    status: [415, 400],
    action: 'fix_request',
    advice:
      'Send `Content-Type: application/json` (or a form where an OAuth endpoint asks for one); 400 on the OAuth endpoints.',
  },
  [ErrorCode.MethodNotAllowed]: {
    status: [405],
    action: 'fix_request',
    advice: 'The path exists, but not with this method.',
  },
  [ErrorCode.NotFound]: {
    status: [404],
    action: 'fix_request',
    advice: "No such route, or a resource that does not exist or is another user's.",
  },
  [ErrorCode.UnsupportedGrantType]: {
    status: [400],
    action: 'fix_request',
    advice: '`/oauth/token` takes `grant_type=password` or `refresh_token`.',
  },
  [ErrorCode.InvalidClient]: {
    status: [401],
    action: 'fix_request',
    advice:
      'The OAuth client or resource server credentials are missing or not listed in `OAUTH_CLIENTS` / `RESOURCE_SERVERS`; a configuration error, not a user one.',
  },
  [ErrorCode.InvalidCredentials]: {
    status: [401, 400],
    action: 'tell_user',
    advice:
      'Wrong username or password (the same answer for both). 400 `invalid_grant` on `/oauth/token`.',
  },
  [ErrorCode.InvalidPassword]: {
    status: [403],
    action: 'tell_user',
    advice: 'The current password given to change the password or delete the account is wrong.',
  },
  [ErrorCode.UsernameTaken]: {
    status: [409],
    action: 'tell_user',
    advice: 'Registration: the username is in use (compared case-insensitively).',
  },
  [ErrorCode.TokenExpired]: {
    status: [401],
    action: 'refresh',
    advice: 'The access token is past `exp`: refresh, then retry the request once.',
  },
  [ErrorCode.TokenInvalid]: {
    status: [401, 400],
    action: 'refresh',
    advice:
      'On a resource: the access token cannot be verified (damaged, or its signing key was revoked) while the session may be intact; refresh once and retry once. On `/auth/refresh`: the refresh token is not one of ours; sign in again.',
  },
  [ErrorCode.TokenMissing]: {
    status: [401],
    action: 'sign_in',
    advice: 'A protected route was called without an `Authorization` header: sign in first.',
  },
  [ErrorCode.SessionRevoked]: {
    status: [401, 400],
    action: 'sign_in',
    advice:
      'The session was ended: logout, logout-all, a password change, the session deleted, or an administrator. Sign in again.',
  },
  [ErrorCode.SessionExpired]: {
    status: [401, 400],
    action: 'sign_in',
    advice:
      'The refresh token or the session passed its lifetime (`SESSION_MAX_AGE`). Sign in again.',
  },
  [ErrorCode.RefreshTokenReused]: {
    status: [401, 400],
    action: 'sign_in',
    advice:
      'A refresh token was presented after its successor was used: treated as theft, the whole session is revoked (RFC 9700 §4.14.2). Sign in again.',
  },
  [ErrorCode.RefreshTokenSuperseded]: {
    status: [409, 400],
    action: 'resend',
    advice:
      'Another request of this session refreshed moments ago (within `REFRESH_REUSE_GRACE`); the session goes on. Use the newest refresh token you hold.',
  },
  [ErrorCode.InvalidDpopProof]: {
    status: [400, 401],
    action: 'resend',
    advice:
      'The DPoP proof is missing, malformed, replayed or of another key (RFC 9449 §7.1). Sign a new proof with the session’s key; 401 on resources, 400 on token requests.',
  },
  [ErrorCode.UseDpopNonce]: {
    status: [400, 401],
    action: 'resend',
    advice:
      'Sign the proof again with the nonce from the `DPoP-Nonce` header and resend, once (RFC 9449 §8, §9).',
  },
  [ErrorCode.RateLimited]: {
    status: [429],
    action: 'retry_later',
    advice:
      'Too many requests, or too many failed logins for this account or address; nothing was done. Wait `Retry-After` seconds.',
  },
  [ErrorCode.ServiceUnavailable]: {
    status: [503],
    action: 'retry_later',
    advice:
      'The database is unreachable or the instance is shutting down; nothing was changed and tokens stay valid. Retry after `Retry-After` seconds.',
  },
  [ErrorCode.InternalError]: {
    status: [500],
    action: 'retry_later',
    advice:
      'A fault on the server, logged with the request id (`X-Request-Id`); the body never carries internals. Retry later, report the request id.',
  },
};

const ACTION_WORDS: Record<ClientAction, string> = {
  fix_request: 'fix the request',
  tell_user: 'tell the user',
  refresh: 'refresh, retry once',
  sign_in: 'sign in again',
  resend: 'resend',
  retry_later: 'retry later',
};

/** The README's error table, as Markdown, one row per code in catalog order. */
export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CATALOG).map(
    ([code, entry]) =>
      `| \`${code}\` | ${entry.status.join(', ')} | ${ACTION_WORDS[entry.action]} | ${entry.advice} |`,
  );
  return [
    '| code | status | client | when, and what to do |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
