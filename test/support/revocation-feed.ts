import { get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { SseParser } from '../../client/src/sse.js';
import { eventually } from './time.js';

/** The resource server the feed suites authenticate as (RESOURCE_SERVERS). */
export const RESOURCE_SERVER = {
  id: 'billing',
  secret: 'billing-resource-server-secret-0123456789',
} as const;

/** The environment that registers RESOURCE_SERVER with an app. */
export const RESOURCE_SERVER_ENV = {
  RESOURCE_SERVERS: `${RESOURCE_SERVER.id}:${RESOURCE_SERVER.secret}`,
} as const;

/** HTTP Basic as RFC 6749 §2.3.1 builds it: each part form-urlencoded first. */
export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export interface FeedEvent {
  type: string;
  /** The event's id: the cursor a reconnection sends back. */
  id: string;
  data: Record<string, unknown>;
}

export interface OpenFeed {
  headers: IncomingHttpHeaders;
  /** Every event so far, in order. */
  readonly events: FeedEvent[];
  /** Comment lines so far (heartbeats). */
  readonly comments: string[];
  /** The id of the last event received, as an SSE client keeps it. */
  readonly lastEventId: string;
  /** Settles once the server ends the stream: null, or the error it failed with. */
  readonly ended: Promise<Error | null>;
  /** The `session.ended` event of `sid`, once it has arrived. */
  endOf(sid: string, timeoutMs?: number): Promise<FeedEvent>;
  /** Resolves once the catch-up is over (`caught-up`). */
  caughtUp(): Promise<void>;
  /** Ends the stream from the client's side. */
  close(): Promise<void>;
}

/**
 * Opens GET /oauth/revocations and reads it with the SDK's SSE parser, as a
 * resource server would. Through node:http rather than fetch: a fetch that
 * is aborted leaves undici opening a spare connection that never sends a
 * request, which the app's server.close() then waits for.
 */
export async function openFeed(
  baseUrl: string,
  options: { lastEventId?: string; since?: string; authorization?: string } = {},
): Promise<OpenFeed> {
  const headers: Record<string, string> = {
    Authorization: options.authorization ?? basicAuth(RESOURCE_SERVER.id, RESOURCE_SERVER.secret),
    Accept: 'text/event-stream',
  };
  if (options.lastEventId !== undefined) headers['Last-Event-ID'] = options.lastEventId;
  const url = new URL('/oauth/revocations', baseUrl);
  if (options.since !== undefined) url.searchParams.set('since', options.since);
  const request = get(url, { headers, agent: false });
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve).once('error', reject);
  });
  if (response.statusCode !== 200) {
    const body = await text(response);
    throw new Error(`the feed answered ${response.statusCode}: ${body}`);
  }
  const events: FeedEvent[] = [];
  const comments: string[] = [];
  const parser = new SseParser({
    event: (event) =>
      events.push({
        type: event.type,
        id: event.lastEventId,
        data: JSON.parse(event.data) as Record<string, unknown>,
      }),
    comment: (comment) => comments.push(comment),
  });
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => parser.push(chunk));
  const ended = new Promise<Error | null>((resolve) => {
    response.once('end', () => resolve(null));
    response.once('error', (error) => resolve(error));
    response.once('close', () => resolve(response.complete ? null : new Error('connection lost')));
  });
  return {
    headers: response.headers,
    events,
    comments,
    get lastEventId() {
      return parser.lastEventId;
    },
    ended,
    endOf: (sid, timeoutMs = 10_000) =>
      eventually(
        `the end of session ${sid} on the feed`,
        () => events.find((event) => event.type === 'session.ended' && event.data.sid === sid),
        { timeoutMs },
      ),
    caughtUp: async () => {
      await eventually('the feed to catch up', () =>
        events.some((event) => event.type === 'caught-up'),
      );
    },
    close: async () => {
      request.destroy();
      await ended;
    },
  };
}

async function text(response: IncomingMessage): Promise<string> {
  let body = '';
  response.setEncoding('utf8');
  for await (const chunk of response) body += chunk as string;
  return body;
}
