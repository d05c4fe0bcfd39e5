/**
 * Why a session ended: stored with the session (a CHECK constraint in the
 * migrations), shown to its user in the audit trail, and a label of
 * `lineage_sessions_revoked_total`. On the ground floor because all three
 * read it.
 */
export const REVOCATION_REASONS = [
  'logout',
  'logout_all',
  'user_revoked',
  'token_revoked',
  'password_changed',
  'evicted',
  'reuse_detected',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];
