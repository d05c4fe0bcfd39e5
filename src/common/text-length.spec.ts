import { validate } from 'class-validator';
import { CodePointLength, codePointLength } from './text-length.js';

class Sample {
  @CodePointLength(1, 3)
  value!: unknown;
}

const check = async (value: unknown) => {
  const sample = Object.assign(new Sample(), { value });
  return (await validate(sample)).length === 0;
};

describe('codePointLength', () => {
  it.each([
    ['ASCII', 'abc', 3],
    ['an astral character (a surrogate pair)', '\u{1F600}', 1],
    ['a variation selector, which validator.js leaves out', 'a\uFE0F', 2],
    ['a lone high surrogate', '\uD800', 1],
    ['a lone low surrogate', '\uDC00x', 2],
    ['a high surrogate at the end', 'x\uD83D', 2],
    ['the empty string', '', 0],
  ])('counts %s as PostgreSQL does', (_case, value, expected) => {
    expect(codePointLength(value)).toBe(expected);
  });
});

describe('CodePointLength', () => {
  it('takes min to max code points', async () => {
    expect(await check('a')).toBe(true);
    expect(await check('\u{1F600}\u{1F600}\u{1F600}')).toBe(true);
    expect(await check('')).toBe(false);
    expect(await check('abcd')).toBe(false);
    expect(await check('a\uFE0Fb\uFE0F')).toBe(false);
  });

  it('refuses anything that is not a string', async () => {
    for (const value of [1, null, ['a'], { length: 1 }]) expect(await check(value)).toBe(false);
  });
});
