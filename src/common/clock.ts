import { Injectable } from '@nestjs/common';

/**
 * The time the session rules judge by, injected so tests can move it (a
 * lost response retried 30 s later) without sleeping. Token signatures and
 * expiry checks of the JWT libraries keep the real clock.
 */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }
}
