import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REVOCATION_REASONS, type RevocationReason } from '../common/revocation-reasons.js';

export const REFRESH_OUTCOMES = [
  'rotated',
  'reissued',
  'superseded',
  'reuse_detected',
  'expired',
  'revoked',
  'invalid',
] as const;
export type RefreshOutcome = (typeof REFRESH_OUTCOMES)[number];

export const LOGIN_OUTCOMES = ['success', 'failure', 'rate_limited'] as const;
export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];

/** Where a DPoP proof was refused: starting a session, refreshing, revoking, or on a resource. */
export type DpopRefusalPlace = 'session_start' | 'refresh' | 'revoke' | 'resource';

/**
 * The application's Prometheus metrics, in a registry of its own rather than
 * prom-client's global one: one process may hold several applications (the
 * e2e suites do), and each must count only its own requests.
 *
 * Outcomes are counted by the code that decides them, once their transaction
 * has committed: logins, refreshes and ended sessions. Sessions deleted with their account are not
 * revocations and are not counted. Every label set starts at zero, so `rate()`
 * and `increase()` see the first event.
 */
export class MetricsService {
  readonly registry = new Registry();
  private readonly requestDuration: Histogram<'method' | 'route' | 'status_code'>;
  private readonly requestSeries = new Map<string, { observe(seconds: number): void }>();
  private readonly refreshTotal: Counter<'outcome'>;
  private readonly sessionsRevokedTotal: Counter<'reason'>;
  private readonly loginTotal: Counter<'outcome'>;
  private readonly dpopRefusalsTotal: Counter<'place' | 'reason'>;
  private readonly revocationFeedConsumers: Gauge<'resource_server'>;

  constructor() {
    const registers = [this.registry];
    this.requestDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route pattern (never the raw URL, to bound cardinality)',
      labelNames: ['method', 'route', 'status_code'],
      // From a cached read to a bcrypt login under load.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.refreshTotal = new Counter({
      name: 'lineage_refresh_total',
      help: 'Refresh attempts by outcome (reuse_detected revokes the session: RFC 9700 §4.14.2)',
      labelNames: ['outcome'],
      registers,
    });
    this.sessionsRevokedTotal = new Counter({
      name: 'lineage_sessions_revoked_total',
      help: 'Sessions ended, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.loginTotal = new Counter({
      name: 'lineage_login_total',
      help: 'Login attempts by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.dpopRefusalsTotal = new Counter({
      name: 'lineage_dpop_refusals_total',
      help: 'Requests refused for their DPoP proof (RFC 9449), by where and why; none ends a session',
      labelNames: ['place', 'reason'],
      registers,
    });
    this.revocationFeedConsumers = new Gauge({
      name: 'lineage_revocation_feed_consumers',
      help: 'Open GET /oauth/revocations streams on this instance, by resource server',
      labelNames: ['resource_server'],
      registers,
    });
    for (const outcome of REFRESH_OUTCOMES) this.refreshTotal.inc({ outcome }, 0);
    for (const reason of REVOCATION_REASONS) this.sessionsRevokedTotal.inc({ reason }, 0);
    for (const outcome of LOGIN_OUTCOMES) this.loginTotal.inc({ outcome }, 0);
    // Memory, CPU, event-loop lag and GC: read when scraped, not per request.
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Called once per response. The labelled child is looked up by one string
   * key instead of prom-client hashing a label object on every call; routes,
   * methods and statuses are bounded, so the map is too.
   */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void {
    const key = `${method} ${statusCode} ${route}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      series = this.requestDuration.labels({ method, route, status_code: statusCode });
      this.requestSeries.set(key, series);
    }
    series.observe(seconds);
  }

  refresh(outcome: RefreshOutcome): void {
    this.refreshTotal.inc({ outcome });
  }

  sessionsRevoked(reason: RevocationReason, count: number): void {
    if (count > 0) this.sessionsRevokedTotal.inc({ reason }, count);
  }

  login(outcome: LoginOutcome): void {
    this.loginTotal.inc({ outcome });
  }

  /** `reason` is one of a fixed set (DpopRefusalReason), so the series are bounded. */
  dpopRefused(place: DpopRefusalPlace, reason: string): void {
    this.dpopRefusalsTotal.inc({ place, reason });
  }

  /**
   * A revocation-feed stream opened (+1) or closed (-1). The label is a
   * configured resource-server id (RESOURCE_SERVERS), so the series are
   * bounded; each is at 0 from the start (revocationFeedConsumersKnown), so
   * "a consumer is not connected anywhere" can be alerted on.
   */
  revocationFeedConsumer(resourceServer: string, delta: 1 | -1): void {
    this.revocationFeedConsumers.inc({ resource_server: resourceServer }, delta);
  }

  revocationFeedConsumersKnown(resourceServers: string[]): void {
    for (const id of resourceServers) this.revocationFeedConsumers.inc({ resource_server: id }, 0);
  }

  /** The exposition text and its content type, for GET /metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
