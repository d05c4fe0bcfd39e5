import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiPropertyOptional,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { Matches, IsOptional } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { ErrorResponseDto } from '../../common/error-response.dto.js';
import {
  CurrentResourceServer,
  type ResourceServer,
  ResourceServerAuthenticated,
} from './resource-server.guard.js';
import { RevocationFeed } from './revocation-feed.service.js';
import { CAUGHT_UP_EVENT, SESSION_ENDED_EVENT } from './revocation-stream.js';

/** An event id of the feed: epoch milliseconds. */
const CURSOR = /^\d{1,15}$/;

export class RevocationFeedQueryDto {
  @ApiPropertyOptional({
    description:
      'An event id received before (epoch milliseconds): catch up from there. `Last-Event-ID` wins ' +
      'when both are sent.',
    example: '1767225600000',
  })
  @IsOptional()
  @Matches(CURSOR, { message: 'since must be an event id of the feed (epoch milliseconds)' })
  since?: string;
}

const FEED_DESCRIPTION = `Server-Sent Events (WHATWG HTML §9.2) for services that verify access tokens
themselves, from the JWKS: every session that ends (logout, revocation, password change, refresh-token
reuse, account deletion) is announced within a second, so its access tokens can be refused before
they expire. Authenticate with HTTP Basic, \`client_secret_basic\` (RFC 6749 §2.3.1), as one of
RESOURCE_SERVERS.

- \`event: ${SESSION_ENDED_EVENT}\`, \`id: <epoch ms>\`, \`data: {"sid", "ended_at", "until"}\`: refuse
  tokens whose \`sid\` claim is \`sid\` until \`until\` (epoch s), after which none of them verifies anyway.
- \`event: ${CAUGHT_UP_EVENT}\`: everything that ended before the stream opened has been sent.
- \`: ping\` every 2 s: a quiet feed is alive; a silent one is not.

On connecting, the stream first sends what ended since \`Last-Event-ID\` (or \`since\`), less a minute,
as commit order and time order differ; without either, everything whose tokens may still verify
(ACCESS_TOKEN_TTL plus clock skew). Events may repeat. The server ends the stream when this instance
may miss ends or shuts down: reconnect (\`retry\`) with \`Last-Event-ID\` and catch up.`;

/**
 * GET /oauth/revocations: the feed of ended sessions for resource servers
 * (see RevocationFeed for the design).
 *
 * The body is an async iterator that the response pulls as the socket takes
 * more (Nest sends it through Fastify's stream path), rather than @Sse(),
 * whose Observable cannot be paused: here a catch-up page is read only once
 * the previous one was written, a consumer that stops reading holds nothing
 * but its queue of live events (bounded), and one that leaves releases its
 * follower when Fastify destroys the stream. Fastify's own lifecycle stays
 * in place (security headers, request id, metrics and access log once the
 * stream ends), and the first page is read before the headers go out, so a
 * database failure is still an ordinary JSON 503.
 */
@ApiTags('oauth')
@Controller('oauth')
export class RevocationFeedController {
  constructor(private readonly feed: RevocationFeed) {}

  @Get('revocations')
  @ResourceServerAuthenticated()
  @ApiOperation({
    summary: 'Ended sessions, as they end (Server-Sent Events)',
    description: FEED_DESCRIPTION,
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description:
      'The id of the last event received: catch up from there (sent by SSE clients on reconnect)',
  })
  @ApiOkResponse({
    description: 'The event stream; it stays open',
    content: {
      'text/event-stream': {
        schema: { type: 'string' },
        example:
          'retry: 1000\n\n' +
          `id: 1767225600000\nevent: ${SESSION_ENDED_EVENT}\n` +
          'data: {"sid":"0b5d3f4e-5a7c-4d7e-9a1f-2c3b4d5e6f70","ended_at":1767225600,"until":1767226505}\n\n' +
          `id: 1767225601234\nevent: ${CAUGHT_UP_EVENT}\ndata: {}\n\n` +
          ': ping\n\n',
      },
    },
  })
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description: '`since` is not an event id (`validation_failed`)',
  })
  @ApiServiceUnavailableResponse({
    type: ErrorResponseDto,
    description:
      'This instance cannot serve the feed right now (its own view of ended sessions is resyncing, ' +
      'the database is unreachable, or it is shutting down): `service_unavailable`; retry after ' +
      '`Retry-After` seconds, possibly at another instance',
    headers: { 'Retry-After': { schema: { type: 'integer' } } },
  })
  follow(
    @CurrentResourceServer() server: ResourceServer,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query() query: RevocationFeedQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): AsyncIterableIterator<string> {
    // An SSE client sends back the id it last received, which is one of ours;
    // anything else did not come from this feed and is ignored: the safe
    // answer to it is the whole retention, as for no cursor.
    const header = lastEventId?.trim();
    const cursor = header && CURSOR.test(header) ? header : query.since;
    const stream = this.feed.open(server.id, cursor ? Number(cursor) : null, reply.raw);
    // Set once the stream is open, not by @Header(): a refusal before it
    // (validation, 503) is the usual JSON error.
    void reply
      .header('Content-Type', 'text/event-stream; charset=utf-8')
      // Each consumer's catch-up is its own, and a stale event stream is worse than none.
      .header('Cache-Control', 'no-store')
      // nginx (deploy/nginx.conf) would otherwise buffer the events.
      .header('X-Accel-Buffering', 'no');
    return stream;
  }
}
