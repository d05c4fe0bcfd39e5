// A resource server as another service would write one: it verifies
// Lineage's access tokens itself, with @lineage/client's verifier (the built
// package, client/dist), and refuses those of ended sessions as the
// revocation feed announces them. Run by test/support/resource-server-process.ts.
//
//   GET /protected  Bearer token, or DPoP token and proof: 200 {sub, sid};
//                   401 or 503 {code} otherwise
//   GET /health     200 {feedUp}
//
// Configured by the environment: LINEAGE_URL, FEED_URL, ISSUER, AUDIENCE,
// RESOURCE_SERVER_ID, RESOURCE_SERVER_SECRET, ON_FEED_DOWN, MAX_FEED_SILENCE_MS,
// RECONNECT_MAX_MS, PORT. It prints one JSON line per feed state change, and
// {"listening": port} once it serves.
import { createServer } from 'node:http';
import { createTokenVerifier } from '../../client/dist/resource-server.js';

const env = process.env;
const optionalNumber = (value) => (value ? Number(value) : undefined);

const verifier = createTokenVerifier({
  issuer: env.ISSUER,
  audience: env.AUDIENCE,
  url: env.LINEAGE_URL,
  feedUrl: env.FEED_URL,
  credentials: { id: env.RESOURCE_SERVER_ID, secret: env.RESOURCE_SERVER_SECRET },
  onFeedDown: env.ON_FEED_DOWN,
  maxFeedSilence: optionalNumber(env.MAX_FEED_SILENCE_MS),
  reconnectDelay: { max: optionalNumber(env.RECONNECT_MAX_MS) },
  onFeedStateChange: (state) => console.log(JSON.stringify({ feed: state, at: Date.now() })),
});

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    return send(res, 200, { feedUp: verifier.feedUp });
  }
  if (req.method !== 'GET' || req.url !== '/protected')
    return send(res, 404, { code: 'not_found' });
  const match = /^(Bearer|DPoP) (\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return send(res, 401, { code: 'token_missing' });
  // The URL clients address, as a proof's htu names it: this service's own
  // origin here; behind a proxy, its public URL.
  const request = {
    scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer',
    method: req.method,
    url: `http://127.0.0.1:${server.address().port}${req.url}`,
    proof: req.headers.dpop,
  };
  verifier.verify(match[2], request).then(
    (claims) => send(res, 200, { sub: claims.sub, sid: claims.sid }),
    (error) => {
      if (typeof error?.code !== 'string') return send(res, 500, { code: 'internal_error' });
      send(res, error.isUnavailable ? 503 : 401, { code: error.code });
    },
  );
});

server.listen(Number(env.PORT ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});

process.once('SIGTERM', () => {
  void verifier.close().then(() => process.exit(0));
});
