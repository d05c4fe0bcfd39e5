/**
 * The routes that take form-encoded bodies: the OAuth endpoints, whose RFCs
 * require the encoding (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1). Every
 * other route refuses it (see registerFormParser).
 */
export const FORM_ROUTES = ['/oauth/token', '/oauth/introspect', '/auth/revoke'] as const;
