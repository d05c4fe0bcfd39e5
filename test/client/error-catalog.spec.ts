import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DPOP_CODES, REFRESHABLE_CODES, SESSION_ENDED_CODES } from '../../client/src/errors.js';
import { NOT_PROCESSED_STATUSES } from '../../client/src/retry.js';
import { type ClientAction, ERROR_CATALOG } from '../../src/common/error-catalog.js';
import { ErrorCode } from '../../src/common/errors.js';

/**
 * The README's error table (rendered from ERROR_CATALOG) tells clients what to
 * do about each code; the SDK must do what it says.
 */

const codesFor = (action: ClientAction): string[] =>
  Object.entries(ERROR_CATALOG)
    .filter(([, entry]) => entry.action === action)
    .map(([code]) => code)
    .sort();
const sorted = (codes: Iterable<string>): string[] => [...codes].sort();

describe('the error catalog and the SDK agree', () => {
  it('the catalog has every code the OpenAPI document lists, and no other', () => {
    const document = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', '..', 'client', 'openapi.json'), 'utf8'),
    ) as { components: { schemas: { ErrorCode: { enum: string[] } } } };
    expect(sorted(Object.keys(ERROR_CATALOG))).toEqual(
      sorted(document.components.schemas.ErrorCode.enum),
    );
    expect(sorted(Object.keys(ERROR_CATALOG))).toEqual(sorted(Object.values(ErrorCode)));
  });

  it('"refresh, retry once" is exactly what the SDK refreshes on', () => {
    expect(codesFor('refresh')).toEqual(sorted(REFRESHABLE_CODES));
  });

  it('"sign in again" is what the SDK ends the session on, and a call with no token at all', () => {
    expect(codesFor('sign_in')).toEqual(sorted([...SESSION_ENDED_CODES, ErrorCode.TokenMissing]));
  });

  it('"resend" is what the SDK resends on its own: DPoP proofs and a superseded refresh', () => {
    expect(codesFor('resend')).toEqual(sorted([...DPOP_CODES, ErrorCode.RefreshTokenSuperseded]));
  });

  it('the codes whose request was not processed are answered with a status the SDK retries', () => {
    for (const code of [ErrorCode.RateLimited, ErrorCode.ServiceUnavailable]) {
      expect(ERROR_CATALOG[code].action).toBe('retry_later');
      for (const status of ERROR_CATALOG[code].status) {
        expect(NOT_PROCESSED_STATUSES.has(status)).toBe(true);
      }
    }
  });
});
