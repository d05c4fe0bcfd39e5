import { AUTH_EVENT_TYPES } from '../../audit/auth-event.entity.js';
import { SessionEndedError } from '../../common/errors.js';
import { REFRESH_OUTCOMES } from '../../observability/metrics.service.js';
import { OUTCOME_EFFECTS } from './refresh-outcomes.js';

describe('refresh outcome table', () => {
  const refusals = ['superseded', 'reuse', 'revoked', 'expired', 'invalid'] as const;

  it('counts every outcome under its own label of lineage_refresh_total', () => {
    const metrics = Object.values(OUTCOME_EFFECTS).map((effects) => effects.metric);
    expect([...metrics].sort()).toEqual([...REFRESH_OUTCOMES].sort());
  });

  it('records only events the audit trail knows', () => {
    for (const { event } of Object.values(OUTCOME_EFFECTS)) {
      if (event) expect(AUTH_EVENT_TYPES).toContain(event);
    }
  });

  it('ends the session (and so drops the cookie) on every refusal but a superseded token', () => {
    for (const refusal of refusals) {
      const error = OUTCOME_EFFECTS[refusal].error();
      expect(error instanceof SessionEndedError).toBe(refusal !== 'superseded');
    }
    expect(OUTCOME_EFFECTS.superseded.error()).toMatchObject({
      status: 409,
      code: 'refresh_token_superseded',
    });
    expect(OUTCOME_EFFECTS.reuse.error()).toMatchObject({
      status: 401,
      code: 'refresh_token_reused',
    });
  });
});
