import { QueryFailedError } from 'typeorm';
import {
  isDatabaseUnavailable,
  isTransactionConflict,
  isUniqueViolation,
  isUnstorableText,
} from './pg-errors.js';

const driverError = (fields: { code: string; constraint?: string }) =>
  Object.assign(new Error('driver error'), fields);

describe('isDatabaseUnavailable', () => {
  it.each([
    ['a refused connection', driverError({ code: 'ECONNREFUSED' })],
    ['a connection exception (SQLSTATE 08006)', driverError({ code: '08006' })],
    ['an administrator shutdown (57P01)', driverError({ code: '57P01' })],
    ['the server starting up (57P03)', driverError({ code: '57P03' })],
    ['too many connections (53300)', driverError({ code: '53300' })],
    ['a statement timeout (57014)', driverError({ code: '57014' })],
    ['a deadlock (40P01)', driverError({ code: '40P01' })],
    ['a serialization failure (40001)', driverError({ code: '40001' })],
    ['a pool connect timeout', new Error('timeout exceeded when trying to connect')],
    ['a read timeout on a hung server', new Error('Query read timeout')],
    ['a terminated connection', new Error('Connection terminated unexpectedly')],
  ])('is true for %s, also wrapped by TypeORM', (_case, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(isDatabaseUnavailable(new QueryFailedError('SELECT 1', [], error))).toBe(true);
  });

  it.each([
    ['a unique violation', driverError({ code: '23505' })],
    ['a syntax error', driverError({ code: '42601' })],
    ['an invalid text representation', driverError({ code: '22P02' })],
    ['a plain bug', new TypeError('cannot read properties of undefined')],
  ])('is false for %s: that is a 500, not a 503', (_case, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
    expect(isDatabaseUnavailable(new QueryFailedError('SELECT 1', [], error))).toBe(false);
  });
});

describe('isUniqueViolation', () => {
  it('matches SQLSTATE 23505, optionally on one constraint', () => {
    const error = new QueryFailedError(
      'INSERT',
      [],
      driverError({ code: '23505', constraint: 'uq_users_username_key' }),
    );
    expect(isUniqueViolation(error)).toBe(true);
    expect(isUniqueViolation(error, 'uq_users_username_key')).toBe(true);
    expect(isUniqueViolation(error, 'another_constraint')).toBe(false);
    expect(isUniqueViolation(driverError({ code: '23505' }))).toBe(false);
  });
});

describe('isTransactionConflict', () => {
  it('is true for a deadlock or a serialization failure, also wrapped by TypeORM', () => {
    for (const code of ['40P01', '40001']) {
      expect(isTransactionConflict(driverError({ code }))).toBe(true);
      expect(isTransactionConflict(new QueryFailedError('UPDATE', [], driverError({ code })))).toBe(
        true,
      );
    }
  });

  it('is false for other errors', () => {
    expect(isTransactionConflict(driverError({ code: '23505' }))).toBe(false);
    expect(isTransactionConflict(driverError({ code: '57014' }))).toBe(false);
    expect(isTransactionConflict(new Error('no code'))).toBe(false);
  });
});

describe('isUnstorableText', () => {
  it.each([
    ['a value too long for its varchar (22001)', '22001'],
    ['a NUL character in text (22021)', '22021'],
  ])('is true for %s', (_case, code) => {
    expect(isUnstorableText(new QueryFailedError('INSERT', [], driverError({ code })))).toBe(true);
  });

  it.each([
    ['a unique violation', '23505'],
    ['an invalid text representation', '22P02'],
    ['a connection exception', '08006'],
  ])('is false for %s', (_case, code) => {
    expect(isUnstorableText(new QueryFailedError('INSERT', [], driverError({ code })))).toBe(false);
  });

  it('is false for a driver error that TypeORM did not wrap', () => {
    expect(isUnstorableText(driverError({ code: '22001' }))).toBe(false);
  });
});
