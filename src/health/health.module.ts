import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AuthModule } from '../auth/auth.module.js';
import { HealthController } from './health.controller.js';
import { ShutdownSignal } from './shutdown-signal.js';

@Module({
  // Terminus's own logger off: a failed check is logged once, by the global
  // exception filter, like every other 503 (and without the driver's message).
  // AuthModule: readiness asks for its signing keys and session feed.
  imports: [TerminusModule.forRoot({ logger: false }), AuthModule],
  controllers: [HealthController],
  providers: [ShutdownSignal],
  exports: [ShutdownSignal],
})
export class HealthModule {}
