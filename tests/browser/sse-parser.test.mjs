// The console's Server-Sent Events parser (server/web/js/sse.js), fed the
// way a network delivers a stream: in arbitrary pieces, with any line ending.
// Run by CTest browser_sse_parser: node --test sse-parser.test.mjs WEB_DIR

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const webDir = process.env.BORDERSCAN_WEB_DIR;
assert.ok(webDir, 'BORDERSCAN_WEB_DIR is not set');
const { EventStreamParser } = await import(pathToFileURL(path.join(webDir, 'js', 'sse.js')).href);

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
