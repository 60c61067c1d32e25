// Server-Sent Events over fetch(). The browser's EventSource cannot send an
// Authorization header, so the stream is read with a ReadableStream reader and
// parsed here (the WHATWG event-stream format: id:, event:, data:, retry:,
// comments, dispatch on a blank line). After a dropped connection it
// reconnects with Last-Event-ID, so the server can resume where it was.

import { authHeaders, problemOf } from './api.js';

export class EventStreamParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.lastEventId = '';  // what a reconnect sends as Last-Event-ID
    this.idBuffer = '';
    this.retry = null;
    this.reset();
  }

  reset() {
    this.eventType = '';
    this.data = [];
  }

  // Feeds decoded text; complete lines are processed, a partial line waits.
  push(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) {
        break;
      }
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) {
        break;
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) {
      return;  // a comment, e.g. the server's keep-alive
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.idBuffer = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) {
          this.retry = Number(value);
        }
        break;
      default:
        break;  // unknown fields are ignored, as the format says
    }
  }

  // The id counts only once its event is complete (as in the WHATWG format):
  // resuming from the id of a half-received event would skip that event.
  dispatch() {
    this.lastEventId = this.idBuffer;
    if (this.data.length > 0) {
      this.onEvent({ type: this.eventType || 'message', data: this.data.join('\n'), id: this.lastEventId });
    }
    this.reset();
  }
}

// Follows an event stream until stop() is called or onEvent returns false
// (e.g. a scan's final event). onState reports 'open', 'reconnecting' and
// 'closed' for the page to show; onError gets errors that end the stream
// (401, 403, 404: reconnecting cannot help).
//
// The last event id is the parser's, taken after every chunk: an event with
// an id and no data (the server's opening position) counts, an empty `id:`
// forgets it (the reconnect then sends no Last-Event-ID), and both hold
// whether the stream later ends cleanly or drops. A `retry:` sets the
// reconnection delay from then on, whichever way the stream ends.
export function followEvents(url, { onEvent, onState = () => {}, onError = () => {}, reconnectMs = 2000 } = {}) {
  const controller = new AbortController();
  let lastEventId = '';
  let stopped = false;
  let wait = null;
  let baseDelay = reconnectMs;  // the server's retry: once it sent one

  const stop = () => {
    stopped = true;
    controller.abort();
    if (wait) {
      clearTimeout(wait);
    }
    onState('closed');
  };

  const run = async () => {
    let delay = baseDelay;
    while (!stopped) {
      let parser = null;
      // What the parser has taken in so far: the id to resume from, the delay.
      const takeState = () => {
        if (!parser) {
          return;
        }
        lastEventId = parser.lastEventId;
        if (parser.retry !== null && parser.retry !== baseDelay) {
          baseDelay = parser.retry;
          delay = baseDelay;
        }
      };
      try {
        const headers = authHeaders({ Accept: 'text/event-stream' });
        if (lastEventId) {
          headers['Last-Event-ID'] = lastEventId;
        }
        const response = await fetch(url, { headers, signal: controller.signal, cache: 'no-store' });
        if (!response.ok) {
          const error = await problemOf(response);
          if ([400, 401, 403, 404].includes(response.status)) {
            stopped = true;
            onError(error);
            onState('closed');
            return;
          }
          throw error;
        }
        delay = baseDelay;
        parser = new EventStreamParser((event) => {
          lastEventId = event.id;
          if (stopped) {
            return;
          }
          if (onEvent(event) === false) {
            stop();
          }
        });
        parser.lastEventId = lastEventId;
        parser.idBuffer = lastEventId;
        onState('open');
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            break;
          }
          parser.push(decoder.decode(value, { stream: true }));
          takeState();
          if (stopped) {
            reader.cancel().catch(() => {});
            return;
          }
        }
        takeState();
      } catch (error) {
        takeState();
        if (stopped || error.name === 'AbortError') {
          return;
        }
      }
      if (stopped) {
        return;
      }
      // The stream ended without a final event: the connection dropped.
      onState('reconnecting');
      await new Promise((resolve) => {
        wait = setTimeout(resolve, delay);
      });
      delay = Math.min(delay * 2, Math.max(30000, baseDelay));
    }
  };
  run();
  return { stop, get lastEventId() { return lastEventId; } };
}
