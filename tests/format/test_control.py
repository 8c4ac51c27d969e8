"""The control port's text: one format for the client and the simulator."""

from __future__ import annotations

from rsciio_mib_plugin.format.control import parse_reply, parse_request, reply_text, request_text


def test_requests_and_replies_round_trip():
    assert request_text("GET", "NUMFRAMESTOACQUIRE") == "GET,NUMFRAMESTOACQUIRE"
    assert request_text("SET", "NUMFRAMESTOACQUIRE", 16) == "SET,NUMFRAMESTOACQUIRE,16"
    assert parse_request("set,numframestoacquire,16") == ("set", "NUMFRAMESTOACQUIRE", "16")
    get = request_text("GET", "COUNTERDEPTH")
    assert parse_reply(reply_text("GET", "COUNTERDEPTH", 0, 12), get) == (0, "12")
    assert parse_reply(reply_text("GET", "COUNTERDEPTH", 2), get) == (2, "")
    put = request_text("SET", "COUNTERDEPTH", 24)
    assert parse_reply(reply_text("SET", "COUNTERDEPTH", 3), put) == (3, "")
    cmd = request_text("CMD", "STARTACQUISITION")
    assert parse_reply(reply_text("CMD", "STARTACQUISITION", 1), cmd) == (1, "")


def test_a_reply_that_does_not_echo_the_request_is_not_a_reply():
    assert parse_reply("GET,OTHER,5,0", "GET,COUNTERDEPTH") is None
    assert parse_reply("GET,COUNTERDEPTH,12,ok", "GET,COUNTERDEPTH") is None
