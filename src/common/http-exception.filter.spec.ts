import { QueryFailedError } from 'typeorm';
import { toErrorBody } from './http-exception.filter.js';

const queryFailed = (code: string) =>
  new QueryFailedError('INSERT INTO todos ...', [], Object.assign(new Error('driver'), { code }));

describe('toErrorBody', () => {
  it.each([
    ['a value too long for its varchar column (SQLSTATE 22001)', '22001'],
    ['a NUL character in text (SQLSTATE 22021)', '22021'],
  ])('answers %s with 400 validation_failed, not 500', (_case, code) => {
    const body = toErrorBody(queryFailed(code));
    expect(body).toMatchObject({ statusCode: 400, code: 'validation_failed' });
    // Nothing of the statement or the driver reaches the client.
    expect(body.message).not.toMatch(/INSERT|driver|varying/i);
  });

  it('still answers any other query failure with 500 internal_error', () => {
    expect(toErrorBody(queryFailed('42601'))).toMatchObject({
      statusCode: 500,
      code: 'internal_error',
    });
  });
});
