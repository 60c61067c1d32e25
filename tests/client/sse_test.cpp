#include "borderscan/client/sse.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace borderscan::client {
namespace {

std::vector<sse_event> parse_in_pieces(sse_parser& parser, std::string_view stream, std::size_t piece) {
  std::vector<sse_event> events;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    parser.feed(stream.substr(i, piece), [&](const sse_event& e) { events.push_back(e); });
  }
  return events;
}

TEST(SseParser, DispatchesEventsWithTypeDataAndIdInAnyPieces) {
  const std::string stream =
      ": keep-alive\n\n"
      "id: 1\nevent: status\ndata: {\"status\":\"queued\"}\n\n"
      "event: progress\ndata: line one\ndata: line two\n\n"
      "id: 7\nevent: done\ndata:{\"verdict\":\"clean\"}\n\n";
  for (const std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    sse_parser parser;
    const auto events = parse_in_pieces(parser, stream, piece);
    ASSERT_EQ(events.size(), 3U) << "piece " << piece;
    EXPECT_EQ(events[0].type, "status");
    EXPECT_EQ(events[0].data, "{\"status\":\"queued\"}");
    EXPECT_EQ(events[0].id, "1");
    EXPECT_EQ(events[1].type, "progress");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[1].id, "1") << "an id stays until the server sends another";
    EXPECT_EQ(events[2].type, "done");
    EXPECT_EQ(events[2].data, "{\"verdict\":\"clean\"}") << "no space after the colon is fine";
    EXPECT_EQ(parser.last_event_id(), "7");
  }
}

TEST(SseParser, AcceptsCrLfAndLoneCrLineEnds) {
  for (const std::string stream : {"event: a\r\ndata: x\r\n\r\n", "event: a\rdata: x\r\r"}) {
    for (const std::size_t piece : {std::size_t{1}, std::size_t{2}, stream.size()}) {
      sse_parser parser;
      const auto events = parse_in_pieces(parser, stream, piece);
      ASSERT_EQ(events.size(), 1U) << piece;
      EXPECT_EQ(events[0].type, "a");
      EXPECT_EQ(events[0].data, "x");
    }
  }
}

TEST(SseParser, DefaultsTheTypeAndSkipsEventsWithoutData) {
  sse_parser parser;
  std::vector<sse_event> events;
  parser.feed(
      "\xEF\xBB\xBF"
      "event: lonely\n\ndata\n\ndata: y\n\n",
      [&](const sse_event& e) { events.push_back(e); });
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].type, "message") << "the type of the skipped event must not leak into the next";
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(events[1].data, "y");
}

TEST(SseParser, KeepsRetryAndIgnoresUnknownFieldsAndBadRetries) {
  sse_parser parser;
  parser.feed("retry: 1500\nfoo: bar\nretry: soon\ndata: z\n\n", [](const sse_event&) {});
  ASSERT_TRUE(parser.retry().has_value());
  EXPECT_EQ(parser.retry()->count(), 1500);
}

TEST(SseParser, DropsAHalfEventWhenTheConnectionEndsButKeepsTheId) {
  sse_parser parser;
  std::vector<sse_event> events;
  const auto collect = [&](const sse_event& e) { events.push_back(e); };
  parser.feed("id: 4\nevent: status\ndata: {}\n\nid: 5\nevent: progress\ndata: {\"half\"", collect);
  ASSERT_EQ(events.size(), 1U);
  parser.reset_connection();
  parser.feed("event: done\ndata: {}\n\n", collect);
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[1].type, "done");
  EXPECT_EQ(events[1].data, "{}");
  EXPECT_EQ(parser.last_event_id(), "4") << "the half event's id is not claimed as received";
}

TEST(SseParser, RefusesALineThatNeverEnds) {
  sse_parser parser;
  const std::string piece(1 << 20, 'x');
  EXPECT_THROW(
      {
        for (int i = 0; i < 8; ++i) {
          parser.feed(piece, [](const sse_event&) {});
        }
      },
      client_error);
}

TEST(SseParser, RefusesAnEventThatNeverEnds) {
  sse_parser parser;
  const std::string line = "data: " + std::string(1 << 20, 'x') + "\n";
  EXPECT_THROW(
      {
        for (int i = 0; i < 24; ++i) {
          parser.feed(line, [](const sse_event&) {});
        }
      },
      client_error);
}

}  // namespace
}  // namespace borderscan::client
