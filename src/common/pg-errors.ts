import { QueryFailedError } from 'typeorm';

/** PostgreSQL `unique_violation` (SQLSTATE 23505), optionally on a named constraint. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string; constraint?: string };
  return driverError.code === '23505' && (!constraint || driverError.constraint === constraint);
}

/** The SQLSTATE of a driver error, through TypeORM's QueryFailedError wrapper. */
export function sqlState(error: unknown): string | undefined {
  const source: unknown = error instanceof QueryFailedError ? error.driverError : error;
  const code = (source as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A deadlock (40P01) or serialization failure (40001): PostgreSQL rolled the
 * transaction back, and running it again may succeed.
 */
export function isTransactionConflict(error: unknown): boolean {
  const code = sqlState(error);
  return code === '40P01' || code === '40001';
}

// Text the column cannot hold: longer than its varchar(n) (string_data_right_truncation,
// 22001) or a character PostgreSQL text never holds, U+0000 (character_not_in_repertoire,
// 22021). The DTOs and the validation pipe refuse both first; this is the second line.
const UNSTORABLE_TEXT_SQLSTATES = new Set(['22001', '22021']);

/** True when a statement failed on a text value the client sent: bad input, a 400, not a 500. */
export function isUnstorableText(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const code = sqlState(error);
  return code !== undefined && UNSTORABLE_TEXT_SQLSTATES.has(code);
}

// SQLSTATE classes and codes that mean "the database is not there right now",
// as opposed to a bad query: connection exceptions (08), operator
// intervention (57P01-57P03 shutdown, cannot connect now), too many
// connections (53300), a statement cancelled by statement_timeout (57014),
// and a transaction PostgreSQL aborted to resolve a conflict, deadlock
// (40P01) or serialization failure (40001): those succeed on a retry.
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '57014',
  '40P01',
  '40001',
]);
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
const UNAVAILABLE_MESSAGES = [
  'timeout exceeded when trying to connect',
  // The pool's silent-server timeout (data-source-options.ts): the server took
  // the statement and never answered (hung or unreachable), so
  // statement_timeout could not fire.
  'Query read timeout',
  'Connection terminated',
  'connect ECONNREFUSED',
  'Client has encountered a connection error',
  'Driver not Connected',
];

/** True when an error says the database is unreachable or overloaded: a 503, not a 500. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code)))
      return true;
    if (typeof code === 'string' && UNAVAILABLE_ERRNOS.has(code)) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((m) => message.includes(m)))
      return true;
    current =
      current instanceof QueryFailedError
        ? current.driverError
        : ((current as { cause?: unknown }).cause ?? undefined);
  }
  return false;
}
