import { type BeforeApplicationShutdown, Injectable } from '@nestjs/common';

/**
 * Whether this instance has been told to stop. main.ts marks it the moment
 * SIGTERM or SIGINT arrives, before anything else of the shutdown, so
 * GET /health/ready answers 503 while the instance still serves: load
 * balancers and Kubernetes endpoints take it out of rotation during
 * SHUTDOWN_DELAY rather than after its port has closed. Nest's own shutdown
 * (app.close() without a signal, as in the tests) marks it too.
 */
@Injectable()
export class ShutdownSignal implements BeforeApplicationShutdown {
  private stopping = false;

  get received(): boolean {
    return this.stopping;
  }

  receive(): void {
    this.stopping = true;
  }

  beforeApplicationShutdown(): void {
    this.stopping = true;
  }
}
