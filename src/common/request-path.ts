/**
 * A request URL without its query string, for log lines. The query is the
 * one part of a URL a careless client may put a token in (RFC 6750 §2.3,
 * §5.3), and logs must not hold tokens (OWASP ASVS 7.1.1).
 */
export function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
