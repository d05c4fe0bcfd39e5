import { Controller, Get, HttpStatus } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppError, ErrorCode } from '../common/errors.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { DATABASE_RETRY_AFTER } from '../common/http-exception.filter.js';
import { Public } from '../common/public.decorator.js';

class HealthDto {
  status!: 'ok';
  database!: 'up';
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  @Public()
  @Get()
  @ApiOperation({ summary: 'Liveness and database reachability' })
  @ApiOkResponse({ schema: { example: { status: 'ok', database: 'up' } } })
  @ApiServiceUnavailableResponse({ type: ErrorResponseDto, description: 'Database unreachable' })
  async check(): Promise<HealthDto> {
    try {
      await this.dataSource.query('SELECT 1');
    } catch {
      throw new AppError(
        HttpStatus.SERVICE_UNAVAILABLE,
        ErrorCode.ServiceUnavailable,
        'Database is unreachable',
        undefined,
        DATABASE_RETRY_AFTER,
      );
    }
    return { status: 'ok', database: 'up' };
  }
}
