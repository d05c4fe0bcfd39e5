export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$/;
export const USERNAME_RULE =
  'must be 3-32 characters: letters, digits, dot, underscore or hyphen, starting with a letter or digit';

/** Usernames are unique case-insensitively: "Alice" and "alice" are one account. */
export function usernameKey(username: string): string {
  return username.normalize('NFKC').toLowerCase();
}
