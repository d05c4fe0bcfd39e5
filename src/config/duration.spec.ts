import { parseDurationSeconds } from './duration.js';

describe('parseDurationSeconds', () => {
  it.each([
    ['900', 900],
    ['0', 0],
    ['10s', 10],
    ['15m', 900],
    ['12h', 43200],
    ['7d', 604800],
    [' 5m ', 300],
  ])('parses %p as %p seconds', (text, seconds) => {
    expect(parseDurationSeconds(text)).toBe(seconds);
  });

  it.each(['', 'm', '15x', '-5', '1.5h', '15 minutes', '7dd', '1e3'])('refuses %p', (text) => {
    expect(parseDurationSeconds(text)).toBeUndefined();
  });
});
