const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a lifetime given as whole seconds ("900") or with a unit ("15m", "7d", "10s", "12h").
 * Returns seconds, or undefined when the text is not a duration.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const match = /^\s*(\d{1,9})\s*([smhd]?)\s*$/.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * UNIT_SECONDS[match[2] || 's'];
  return Number.isSafeInteger(value) ? value : undefined;
}
