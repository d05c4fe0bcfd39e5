import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ErrorCode } from './errors.js';

class ErrorDetailDto {
  @ApiProperty({ example: 'username' })
  field!: string;

  @ApiProperty({ type: [String] })
  messages!: string[];
}

export class ErrorResponseDto {
  @ApiProperty({ example: 401 })
  statusCode!: number;

  @ApiProperty({ example: 'Unauthorized' })
  error!: string;

  // Every value of ErrorCode, read from it: the document and the SDK generated
  // from it cannot fall behind a code the API starts returning.
  @ApiProperty({
    enum: Object.values(ErrorCode),
    enumName: 'ErrorCode',
    example: ErrorCode.TokenExpired,
    description: 'Stable machine-readable code; clients may switch on it',
  })
  code!: ErrorCode;

  @ApiProperty({ example: 'Access token has expired' })
  message!: string;

  @ApiPropertyOptional({
    type: [ErrorDetailDto],
    description: 'Per-field problems (validation_failed only)',
  })
  details?: ErrorDetailDto[];
}
