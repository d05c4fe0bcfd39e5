import { ApiProperty } from '@nestjs/swagger';

export class LivenessDto {
  @ApiProperty({ enum: ['ok'], example: 'ok' })
  status!: 'ok';
}

/** GET /health: the body it has always had. */
export class HealthDto {
  @ApiProperty({ enum: ['ok'], example: 'ok' })
  status!: 'ok';

  @ApiProperty({ enum: ['up'], example: 'up' })
  database!: 'up';
}

export class ReadinessChecksDto {
  @ApiProperty({ enum: ['up'], example: 'up', description: 'PostgreSQL answers a ping' })
  database!: 'up';

  @ApiProperty({
    enum: ['loaded'],
    example: 'loaded',
    description: 'A signing key this instance can sign access tokens with is loaded',
  })
  signing_keys!: 'loaded';

  @ApiProperty({
    enum: ['live'],
    example: 'live',
    description:
      'The session revocation feed (PostgreSQL LISTEN/NOTIFY) is connected and resynced, so ' +
      'logouts on other instances take effect here at once',
  })
  session_feed!: 'live';
}

export class ReadinessDto {
  @ApiProperty({ enum: ['ok'], example: 'ok' })
  status!: 'ok';

  @ApiProperty({ type: ReadinessChecksDto })
  checks!: ReadinessChecksDto;
}
