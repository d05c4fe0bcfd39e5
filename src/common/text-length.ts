import { buildMessage, ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * The length of a string as PostgreSQL's `varchar(n)` measures it: Unicode
 * code points. A surrogate pair is one; a lone surrogate is one too (the
 * driver sends it as U+FFFD). class-validator's `MaxLength` (validator.js
 * `isLength`) also leaves out the variation selectors U+FE0E and U+FE0F, so a
 * value it passes could still overflow the column (SQLSTATE 22001).
 */
export function codePointLength(value: string): number {
  let count = 0;
  for (let i = 0; i < value.length; i += 1) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}

/**
 * A string of `min` to `max` code points: the unit of the `varchar` column it
 * is stored in, and of JSON Schema's `minLength`/`maxLength` (JSON Schema
 * Validation §6.3), so the documented bound is the enforced one.
 */
export function CodePointLength(
  min: number,
  max: number,
  validationOptions?: ValidationOptions,
): PropertyDecorator {
  return ValidateBy(
    {
      name: 'codePointLength',
      constraints: [min, max],
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') return false;
          const length = codePointLength(value);
          return length >= min && length <= max;
        },
        defaultMessage: buildMessage(
          (eachPrefix) =>
            min > 0
              ? `${eachPrefix}$property must be ${min} to ${max} characters (Unicode code points)`
              : `${eachPrefix}$property must be at most ${max} characters (Unicode code points)`,
          validationOptions,
        ),
      },
    },
    validationOptions,
  );
}
