import { HttpStatus } from '@nestjs/common';
import type { ConfigService } from '@nestjs/config';
import type { ExecutionContext } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig, ResourceServerCredentials } from '../../config/configuration.js';
import {
  parseBasicCredentials,
  ResourceServerGuard,
  type ResourceServerRequest,
} from './resource-server.guard.js';

const BILLING = { id: 'billing', secret: 'b'.repeat(32) };
// Characters that RFC 6749 §2.3.1's form-urlencoding changes: space, '+', '%', ':', non-ASCII.
const GATEWAY = { id: 'gateway.v2', secret: 'g+g %20:é'.padEnd(40, 'g') };

/** RFC 6749 §2.3.1: each part form-urlencoded, then HTTP Basic. */
function basic(id: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replaceAll('%20', '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`, 'utf8').toString('base64')}`;
}

function guardFor(servers: ResourceServerCredentials[]): ResourceServerGuard {
  const config = { get: () => ({ clients: [], resourceServers: servers }) };
  return new ResourceServerGuard(config as unknown as ConfigService<AppConfig, true>);
}

function contextFor(authorization?: string): {
  context: ExecutionContext;
  request: ResourceServerRequest;
} {
  const request = { headers: { authorization } } as unknown as ResourceServerRequest;
  const context = {
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
  return { context, request };
}

/** The AppError the guard refuses with (the test fails if it lets the request through). */
function refusal(guard: ResourceServerGuard, authorization?: string): AppError {
  const { context } = contextFor(authorization);
  try {
    guard.canActivate(context);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('the guard let the request through');
}

describe('parseBasicCredentials (RFC 6749 §2.3.1)', () => {
  it('form-decodes both parts: + is a space, %XX a byte of UTF-8', () => {
    expect(parseBasicCredentials(basic(GATEWAY.id, GATEWAY.secret))).toEqual(GATEWAY);
    const raw = `Basic ${Buffer.from('a%2Bb:c+d%3Ae%C3%A9').toString('base64')}`;
    expect(parseBasicCredentials(raw)).toEqual({ id: 'a+b', secret: 'c d:eé' });
  });

  it('splits at the first colon: the secret may hold more', () => {
    const raw = `Basic ${Buffer.from('billing:x:y').toString('base64')}`;
    expect(parseBasicCredentials(raw)).toEqual({ id: 'billing', secret: 'x:y' });
  });

  it('takes the scheme name in any case (RFC 7617 §2), and unpadded base64', () => {
    const token = Buffer.from('ab:cd').toString('base64').replace(/=+$/, '');
    expect(parseBasicCredentials(`bAsIc ${token}`)).toEqual({ id: 'ab', secret: 'cd' });
  });

  it.each([
    ['no header', undefined],
    ['another scheme', `Bearer ${Buffer.from('a:b').toString('base64')}`],
    ['no credentials', 'Basic '],
    ['not base64', 'Basic a:b'],
    ['no colon', `Basic ${Buffer.from('billing').toString('base64')}`],
    ['bad percent-encoding', `Basic ${Buffer.from('bill%zz:secret').toString('base64')}`],
  ])('refuses %s', (_case, header) => {
    expect(parseBasicCredentials(header)).toBeNull();
  });
});

describe('ResourceServerGuard', () => {
  const guard = guardFor([BILLING, GATEWAY]);

  it('lets a configured resource server through and says which one it is', () => {
    for (const server of [BILLING, GATEWAY]) {
      const { context, request } = contextFor(basic(server.id, server.secret));
      expect(guard.canActivate(context)).toBe(true);
      expect(request.resourceServer).toEqual({ id: server.id });
    }
  });

  it.each([
    ['no Authorization header', undefined],
    ['a bearer token', 'Bearer abc.def.ghi'],
    ['malformed Basic credentials', 'Basic %%%'],
  ])('refuses %s with 401 invalid_client', (_case, header) => {
    const error = refusal(guard, header);
    expect(error.status).toBe(HttpStatus.UNAUTHORIZED);
    expect(error.code).toBe(ErrorCode.InvalidClient);
  });

  it('answers a wrong secret and an unknown id alike: nothing tells which ids exist', () => {
    const wrongSecret = refusal(guard, basic(BILLING.id, 'x'.repeat(32)));
    const unknownId = refusal(guard, basic('nobody', BILLING.secret));
    const anotherIdsSecret = refusal(guard, basic(BILLING.id, GATEWAY.secret));
    for (const error of [wrongSecret, unknownId, anotherIdsSecret]) {
      expect(error.status).toBe(HttpStatus.UNAUTHORIZED);
      expect(error.code).toBe(ErrorCode.InvalidClient);
      expect(error.message).toBe(wrongSecret.message);
    }
  });

  it('refuses a secret that only differs by its encoding or by a prefix', () => {
    // The encoded form is not the secret: "+" decodes to a space.
    expect(refusal(guard, basic(GATEWAY.id, GATEWAY.secret.replaceAll(' ', '+'))).code).toBe(
      ErrorCode.InvalidClient,
    );
    expect(refusal(guard, basic(BILLING.id, BILLING.secret.slice(0, 31))).code).toBe(
      ErrorCode.InvalidClient,
    );
    expect(refusal(guard, basic(BILLING.id, `${BILLING.secret}b`)).code).toBe(
      ErrorCode.InvalidClient,
    );
  });

  it('refuses everyone when no resource server is configured', () => {
    expect(refusal(guardFor([]), basic(BILLING.id, BILLING.secret)).code).toBe(
      ErrorCode.InvalidClient,
    );
  });
});
