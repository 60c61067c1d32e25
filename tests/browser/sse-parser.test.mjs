// The console's Server-Sent Events parser (server/web/js/sse.js), fed the
// way a network delivers a stream: in arbitrary pieces, with any line ending;
// and its followEvents() against a small Node.js event server that ends or
// drops its streams, for the id and the delay a reconnect uses.
// Run by CTest browser_sse_parser: node --test sse-parser.test.mjs, with
// BORDERSCAN_WEB_DIR in the environment.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const webDir = process.env.BORDERSCAN_WEB_DIR;
assert.ok(webDir, 'BORDERSCAN_WEB_DIR is not set');
// api.js reads the token from the browser's sessionStorage.
globalThis.sessionStorage = { getItem: () => 'bst_test', setItem: () => {}, removeItem: () => {} };
const { EventStreamParser, followEvents } = await import(pathToFileURL(path.join(webDir, 'js', 'sse.js')).href);

function parse(chunks) {
  const events = [];
  const parser = new EventStreamParser((e) => events.push(e));
  for (const c of chunks) {
    parser.push(c);
  }
  return { events, parser };
}

test('events are dispatched on a blank line with their type, data and id', () => {
  const { events } = parse(['id: 1\nevent: scan\ndata: {"a":1}\n\n', 'id: 2\nevent: scan\ndata: {"a":2}\n\n']);
  assert.deepEqual(events, [
    { type: 'scan', data: '{"a":1}', id: '1' },
    { type: 'scan', data: '{"a":2}', id: '2' },
  ]);
});

test('a stream cut anywhere, even inside a CRLF, gives the same events', () => {
  const stream = ': keep-alive\r\nid: 7\r\nevent: progress\r\ndata: line one\r\ndata: line two\r\n\r\ndata: plain\r\n\r\n';
  const whole = parse([stream]).events;
  assert.equal(whole.length, 2);
  assert.deepEqual(whole[0], { type: 'progress', data: 'line one\nline two', id: '7' });
  assert.deepEqual(whole[1], { type: 'message', data: 'plain', id: '7' }, 'the last id carries over');
  for (let cut = 1; cut < stream.length; cut += 1) {
    assert.deepEqual(parse([stream.slice(0, cut), stream.slice(cut)]).events, whole, `cut at ${cut}`);
  }
  assert.deepEqual(parse([...stream]).events, whole, 'one character at a time');
});

test('comments, unknown fields and events without data dispatch nothing', () => {
  const { events, parser } = parse([': keep-alive\n\n', 'event: scan\n\n', 'foo: bar\n\n', 'retry: 1500\n\n']);
  assert.deepEqual(events, []);
  assert.equal(parser.retry, 1500);
});

test('a field without a colon and a value without the optional space are read as the format says', () => {
  const { events } = parse(['data\n\n', 'data:x\nid:9\n\n', 'data:  two spaces\n\n']);
  assert.deepEqual(events.map((e) => e.data), ['', 'x', ' two spaces']);
  assert.equal(events[1].id, '9');
});

test('an incomplete event at the end of a stream is not dispatched, nor its id kept', () => {
  const { events, parser } = parse(['id: 2\ndata: a\n\n', 'id: 3\ndata: {"done":false}\n']);
  assert.deepEqual(events.map((e) => e.id), ['2']);
  assert.equal(parser.lastEventId, '2', 'a reconnect resumes after the last complete event');
});

test('an event with an id and no data sets the last event id and delivers nothing', () => {
  // The daemon's GET /api/v1/events opens with its position this way.
  const { events, parser } = parse(['id: 41\n\n']);
  assert.deepEqual(events, []);
  assert.equal(parser.lastEventId, '41');
  parser.push('event: scan\ndata: x\n\n');
  assert.deepEqual(events, [{ type: 'scan', data: 'x', id: '41' }]);
});

test('an empty id: line resets the last event id', () => {
  const { events, parser } = parse(['id: 3\ndata: a\n\n', 'id\ndata: b\n\n']);
  assert.deepEqual(events.map((e) => e.id), ['3', '']);
  assert.equal(parser.lastEventId, '');
  parser.push('id: 4\n\nid:\n\n');
  assert.equal(parser.lastEventId, '', 'an id-only event with an empty id resets it too');
});

// An event server on a loopback port: serve(res, n) answers its n-th request
// (1-based); every request's Last-Event-ID and time are kept.
async function eventServer(serve) {
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push({ lastEventId: req.headers['last-event-id'], at: Date.now() });
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    res.flushHeaders();
    serve(res, requests.length);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/api/v1/events`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

async function until(predicate, what, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Drops the connection in the middle of the chunked stream, as a network fault does.
const drop = (res) => res.socket.destroy();

test('followEvents keeps the opening id-only event and the retry: delay when the connection drops', async () => {
  let first = null;
  const server = await eventServer((res, n) => {
    if (n === 1) {
      res.write('retry: 100\nid: 42\n\n');
      first = res;
    } else {
      res.write(': resumed\n\n');
    }
  });
  const events = [];
  // The console's own delay would be 10 s: only the server's retry: makes the reconnect quick.
  const stream = followEvents(server.url, { onEvent: (e) => { events.push(e); }, reconnectMs: 10000 });
  try {
    await until(() => stream.lastEventId === '42', 'the opening id to be taken');
    const cutAt = Date.now();
    drop(first);
    await until(() => server.requests.length === 2, 'the reconnect', 2000);
    assert.equal(server.requests[0].lastEventId, undefined, 'the first connection starts now');
    assert.equal(server.requests[1].lastEventId, '42', 'the reconnect resumes from the opening id');
    assert.ok(server.requests[1].at - cutAt < 1500, `retry: 100 is honoured after a drop (${server.requests[1].at - cutAt} ms)`);
    assert.deepEqual(events, [], 'an event without data is not delivered');
  } finally {
    stream.stop();
    await server.close();
  }
});

test('followEvents sends no Last-Event-ID after an empty id: line, even when the connection drops', async () => {
  const server = await eventServer((res, n) => {
    if (n === 1) {
      res.write('id: 3\nevent: scan\ndata: a\n\n');
      res.write('id:\nevent: scan\ndata: b\n\n');
      setTimeout(() => drop(res), 50);
    }
  });
  const events = [];
  const stream = followEvents(server.url, { onEvent: (e) => { events.push(e); }, reconnectMs: 20 });
  try {
    await until(() => server.requests.length === 2, 'the reconnect');
    assert.deepEqual(events.map((e) => [e.data, e.id]), [['a', '3'], ['b', '']]);
    assert.equal(server.requests[1].lastEventId, undefined, 'the empty id: forgot the last event id');
    assert.equal(stream.lastEventId, '');
  } finally {
    stream.stop();
    await server.close();
  }
});
