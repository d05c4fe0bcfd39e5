import { ValidationPipe, type ValidationError as ClassValidatorError } from '@nestjs/common';
import { type ErrorDetail, ValidationError } from './errors.js';

function flatten(errors: ClassValidatorError[], prefix = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, messages: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** Whitelisted DTOs only: unknown fields are refused, not silently dropped. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
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
