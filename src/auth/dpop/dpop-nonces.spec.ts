import { DpopNonces } from './dpop-nonces.js';

const SECRET = 'a refresh secret of at least thirty-two characters';
const at = (seconds: number) => new Date(seconds * 1000);

describe('DpopNonces (RFC 9449 §8)', () => {
  const nonces = new DpopNonces(SECRET, 60);

  it('accepts a nonce in its own window and the next, and no other', () => {
    const nonce = nonces.current(at(6000));
    expect(nonces.accepts(nonce, at(6000))).toBe(true);
    expect(nonces.accepts(nonce, at(6059))).toBe(true);
    expect(nonces.accepts(nonce, at(6119))).toBe(true);
    expect(nonces.accepts(nonce, at(6120))).toBe(false);
    // Not before it was issued: a nonce of a later window is none of ours yet.
    expect(nonces.accepts(nonces.current(at(6060)), at(6000))).toBe(false);
  });

  it('is the same on every instance with the same secret, and only there', () => {
    const nonce = nonces.current(at(6000));
    expect(new DpopNonces(SECRET, 60).accepts(nonce, at(6010))).toBe(true);
    expect(new DpopNonces(`${SECRET}!`, 60).accepts(nonce, at(6010))).toBe(false);
  });

  it('refuses anything tampered with or malformed', () => {
    const nonce = nonces.current(at(6000));
    const bytes = Buffer.from(nonce, 'base64url');
    bytes[bytes.length - 1] ^= 1;
    expect(nonces.accepts(bytes.toString('base64url'), at(6000))).toBe(false);
    expect(nonces.accepts('', at(6000))).toBe(false);
    expect(nonces.accepts('made-up', at(6000))).toBe(false);
    expect(nonces.accepts(`${nonce}AA`, at(6000))).toBe(false);
  });
});
