import { type ServerSentEvent, SseParser } from '../../client/src/sse.js';

/** Feeds `chunks` to a parser and returns what it reported. */
function parse(chunks: string[], lastEventId?: string) {
  const events: ServerSentEvent[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = new SseParser(
    {
      event: (event) => events.push(event),
      comment: (text) => comments.push(text),
      retry: (ms) => retries.push(ms),
    },
    lastEventId,
  );
  for (const chunk of chunks) parser.push(chunk);
  return { events, comments, retries, lastEventId: parser.lastEventId };
}

const FEED =
  'retry: 1000\n\n' +
  'id: 1767225600000\nevent: session.ended\ndata: {"sid":"a","ended_at":1767225600,"until":1767226505}\n\n' +
  ': ping\n\n' +
  'id: 1767225601234\nevent: caught-up\ndata: {}\n\n';

describe('SseParser (WHATWG HTML §9.2.6)', () => {
  it("reads the revocation feed's events, comments and retry", () => {
    const { events, comments, retries, lastEventId } = parse([FEED]);
    expect(events).toEqual([
      {
        type: 'session.ended',
        data: '{"sid":"a","ended_at":1767225600,"until":1767226505}',
        lastEventId: '1767225600000',
      },
      { type: 'caught-up', data: '{}', lastEventId: '1767225601234' },
    ]);
    expect(comments).toEqual(['ping']);
    expect(retries).toEqual([1000]);
    expect(lastEventId).toBe('1767225601234');
  });

  it('gives the same result however the text is cut, one character at a time included', () => {
    const whole = parse([FEED]);
    expect(parse([...FEED])).toEqual(whole);
    for (let cut = 1; cut < FEED.length; cut += 7) {
      expect(parse([FEED.slice(0, cut), FEED.slice(cut)])).toEqual(whole);
    }
  });

  it('ends lines at CRLF, LF or CR, a CRLF split across chunks included', () => {
    const lf = parse(['data: one\n\ndata: two\n\n']).events;
    expect(parse(['data: one\r\n\r\ndata: two\r\n\r\n']).events).toEqual(lf);
    expect(parse(['data: one\r\rdata: two\r\r']).events).toEqual(lf);
    expect(parse(['data: one\r', '\n\r', '\ndata: two\r\n', '\r\n']).events).toEqual(lf);
    expect(lf.map((event) => event.data)).toEqual(['one', 'two']);
  });

  it('joins data lines with LF, defaults the type to message, and dispatches nothing without data', () => {
    const { events } = parse(['event: x\n\ndata: a\ndata:b\ndata\n\n']);
    expect(events).toEqual([{ type: 'message', data: 'a\nb\n', lastEventId: '' }]);
  });

  it('keeps the last event id across events without one, and from a previous connection', () => {
    const { events } = parse(['id: 7\ndata: a\n\ndata: b\n\n']);
    expect(events.map((event) => event.lastEventId)).toEqual(['7', '7']);
    expect(parse(['retry: 5\n\n: ping\n\n'], '41').lastEventId).toBe('41');
    expect(parse(['data: c\n\n'], '41').events[0].lastEventId).toBe('41');
  });

  it('drops a leading byte order mark, ignores unknown fields, bad retries and ids with NUL', () => {
    const { events, retries } = parse(['\uFEFFfoo: bar\nretry: soon\nid: a\u0000b\ndata: x\n\n']);
    expect(events).toEqual([{ type: 'message', data: 'x', lastEventId: '' }]);
    expect(retries).toEqual([]);
  });

  it('strips one space after the colon, no more', () => {
    expect(parse(['data:  two spaces\n\n']).events[0].data).toBe(' two spaces');
  });

  it('holds an unfinished event until its blank line arrives', () => {
    const events: ServerSentEvent[] = [];
    const parser = new SseParser({ event: (event) => events.push(event) });
    parser.push('data: a\n');
    expect(events).toEqual([]);
    parser.push('\n');
    expect(events).toHaveLength(1);
  });
});
