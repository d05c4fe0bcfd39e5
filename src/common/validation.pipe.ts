import {
  type ArgumentMetadata,
  ValidationPipe,
  type ValidationError as ClassValidatorError,
} from '@nestjs/common';
import { type ErrorDetail, ValidationError } from './errors.js';

function flatten(errors: ClassValidatorError[], prefix = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, messages: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** No DTO nests anywhere near this deep. */
export const MAX_INPUT_DEPTH = 32;

/**
 * Input that must be refused before it reaches class-transformer or the
 * database, found without recursion: nesting deeper than MAX_INPUT_DEPTH
 * (class-transformer recurses once per level, and a few thousand levels fit
 * in a 16 KiB body and overflow the stack: a 500), and U+0000, which
 * PostgreSQL text cannot hold (the query would fail: a 500). Reported per
 * top-level field.
 */
export function unacceptableInput(value: unknown, root = ''): ErrorDetail[] {
  const problems = new Map<string, string>();
  const pending: { value: unknown; field: string; depth: number }[] = [
    { value, field: root, depth: 0 },
  ];
  for (let item = pending.pop(); item; item = pending.pop()) {
    const name = item.field || 'body';
    if (typeof item.value === 'string') {
      if (item.value.includes('\u0000')) {
        problems.set(name, `${name} must not contain NUL characters`);
      }
    } else if (typeof item.value === 'object' && item.value !== null) {
      if (item.depth >= MAX_INPUT_DEPTH) {
        problems.set(name, `${name} is nested too deeply`);
        continue;
      }
      for (const [key, child] of Object.entries(item.value)) {
        pending.push({ value: child, field: item.field || key, depth: item.depth + 1 });
      }
    }
  }
  return [...problems].map(([field, message]) => ({ field, messages: [message] }));
}

class InputValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // Path parameters are left to their own pipes (ParseUUIDPipe decides 400 or 404).
    if (metadata.type === 'body' || metadata.type === 'query') {
      const details = unacceptableInput(value, metadata.data);
      if (details.length > 0) {
        throw new ValidationError(details.flatMap((d) => d.messages).join('; '), details);
      }
    }
    // An empty query string is the DTO's defaults, which are valid by
    // construction: skip class-transformer and class-validator (a hot path,
    // e.g. GET /todos). Anything given goes through full validation.
    if (
      metadata.type === 'query' &&
      typeof metadata.metatype === 'function' &&
      isEmptyObject(value)
    ) {
      return new (metadata.metatype as new () => unknown)();
    }
    return super.transform(value, metadata) as Promise<unknown>;
  }
}

function isEmptyObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (const key in value) if (Object.hasOwn(value, key)) return false;
  return true;
}

/** Whitelisted DTOs only: unknown fields are refused, not silently dropped. */
export function createValidationPipe(): ValidationPipe {
  return new InputValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    stopAtFirstError: true,
    exceptionFactory: (errors) => {
      const details = flatten(errors);
      const message = details.flatMap((detail) => detail.messages).join('; ') || 'Invalid input';
      return new ValidationError(message, details);
    },
  });
}
