import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import {
  IsString,
  Matches,
  MaxLength,
  MinLength,
  Validate,
  type ValidatorConstraintInterface,
  ValidatorConstraint,
} from 'class-validator';
import { normalizePassword, PASSWORD_MAX_BYTES } from '../../users/password.service.js';
import { USERNAME_PATTERN, USERNAME_RULE } from '../../common/username.js';

export const PASSWORD_MIN_LENGTH = 8;
// bcrypt only reads the first 72 bytes of its input; longer passwords are
// refused with a reason instead of being silently truncated (docs/security.md, "Passwords").

@ValidatorConstraint({ name: 'maxUtf8Bytes' })
class MaxUtf8Bytes implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    // Measured as stored: after NFC normalization.
    return (
      typeof value === 'string' &&
      Buffer.byteLength(normalizePassword(value), 'utf8') <= PASSWORD_MAX_BYTES
    );
  }

  defaultMessage(): string {
    return `password must be at most ${PASSWORD_MAX_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)`;
  }
}

/** Checking a password (login, confirmation) accepts anything up to this; setting one applies the rules. */
export const PASSWORD_INPUT_MAX = 1024;

/** The rules for a password being set: registration and password change. */
export function NewPassword() {
  return applyDecorators(
    ApiProperty({
      example: 'testpass123',
      minLength: PASSWORD_MIN_LENGTH,
      description: `At most ${PASSWORD_MAX_BYTES} bytes in UTF-8`,
    }),
    IsString(),
    MinLength(PASSWORD_MIN_LENGTH),
    Validate(MaxUtf8Bytes),
  );
}

export class CredentialsDto {
  @ApiProperty({ example: 'testuser', pattern: USERNAME_PATTERN.source })
  @IsString()
  @Matches(USERNAME_PATTERN, { message: `username ${USERNAME_RULE}` })
  username!: string;

  @NewPassword()
  password!: string;
}

/** The longest username a login takes (registration's rule is stricter). */
export const USERNAME_INPUT_MAX = 64;

/** Login checks credentials against what is stored; it does not re-apply registration rules. */
export class LoginDto {
  @ApiProperty({ example: 'testuser' })
  @IsString()
  @MinLength(1)
  @MaxLength(USERNAME_INPUT_MAX)
  username!: string;

  @ApiProperty({ example: 'testpass123' })
  @IsString()
  @MinLength(1)
  @MaxLength(PASSWORD_INPUT_MAX)
  password!: string;
}
