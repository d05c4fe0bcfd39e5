/** One dispatched Server-Sent Event. */
export interface ServerSentEvent {
  /** The `event` field, `message` when there was none. */
  type: string;
  data: string;
  /** The last event ID as of this event (it carries over events without an `id`). */
  lastEventId: string;
}

export interface SseHandlers {
  event(event: ServerSentEvent): void;
  /** A `retry` field: the reconnection time the server asks for, in ms. */
  retry?(ms: number): void;
  /** A comment line (a heartbeat, for instance), without its colon. */
  comment?(text: string): void;
}

/**
 * An incremental parser of `text/event-stream` (WHATWG HTML §9.2.6,
 * "Interpreting an event stream"): push decoded text as it arrives, in
 * chunks of any size; events are handed over as each blank line ends one.
 * Lines end with CRLF, LF or CR, including a CRLF split across two chunks;
 * a leading byte order mark is dropped.
 */
export class SseParser {
  private pending = '';
  private started = false;
  /** The last chunk ended in CR: an LF opening the next one belongs to it. */
  private afterCr = false;
  private data = '';
  private type = '';
  /** The last event ID buffer (§9.2.6): it survives events, and reconnections. */
  private eventId: string;
  /** The last event ID as of the last event dispatched: what a reconnection sends back. */
  lastEventId: string;

  constructor(
    private readonly handlers: SseHandlers,
    lastEventId = '',
  ) {
    this.eventId = lastEventId;
    this.lastEventId = lastEventId;
  }

  push(chunk: string): void {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.afterCr && text.startsWith('\n')) text = text.slice(1);
    if (text.length > 0) this.afterCr = false;
    let buffer = this.pending + text;
    let start = 0;
    for (;;) {
      const lf = buffer.indexOf('\n', start);
      const cr = buffer.indexOf('\r', start);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) break;
      this.line(buffer.slice(start, end));
      start = end + 1;
      if (buffer[end] === '\r') {
        if (start === buffer.length) this.afterCr = true;
        else if (buffer[start] === '\n') start += 1;
      }
    }
    buffer = buffer.slice(start);
    this.pending = buffer;
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) {
      this.handlers.comment?.(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data += `${value}\n`;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.eventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.retry?.(Number(value));
        break;
      default:
      // Unknown fields are ignored.
    }
  }

  private dispatch(): void {
    this.lastEventId = this.eventId;
    const { data, type } = this;
    this.data = '';
    this.type = '';
    if (data === '') return;
    this.handlers.event({
      type: type || 'message',
      data: data.slice(0, -1),
      lastEventId: this.lastEventId,
    });
  }
}
