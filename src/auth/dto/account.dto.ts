import { ApiProperty } from '@nestjs/swagger';
import { IsString, MaxLength, MinLength } from 'class-validator';
import { NewPassword, PASSWORD_INPUT_MAX } from './credentials.dto.js';

export class ChangePasswordDto {
  @ApiProperty()
  @IsString()
  @MinLength(1)
  @MaxLength(PASSWORD_INPUT_MAX)
  current_password!: string;

  @NewPassword()
  new_password!: string;
}

export class DeleteAccountDto {
  @ApiProperty({ description: 'The current password, to confirm' })
  @IsString()
  @MinLength(1)
  @MaxLength(PASSWORD_INPUT_MAX)
  password!: string;
}
