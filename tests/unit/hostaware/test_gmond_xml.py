"""Parsing gmond's XML (what a real gmond answers is checked in tests/integration/hostaware)."""

from __future__ import annotations

import pytest

from powerstrip.adapters.hostaware.sources import GmondSource, parse_gmond_url, parse_gmond_xml
from powerstrip.adapters.hostaware.model import InvalidRule

XML = b"""<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>
<!DOCTYPE GANGLIA_XML [
   <!ELEMENT GANGLIA_XML (GRID|CLUSTER|HOST)*>
]>
<GANGLIA_XML VERSION="3.7.2" SOURCE="gmond">
<CLUSTER NAME="c" LOCALTIME="1">
<HOST NAME="web1" IP="10.0.0.1" REPORTED="1" TN="3" TMAX="20" DMAX="0">
<METRIC NAME="load_one" VAL="1.25" TYPE="float" UNITS=" " TN="3" TMAX="70" DMAX="0" SLOPE="both"/>
<METRIC NAME="os_name" VAL="Linux" TYPE="string" UNITS="" TN="3" TMAX="1200" DMAX="0" SLOPE="zero"/>
<METRIC NAME="mem_free" VAL="1024" TYPE="float" UNITS="KB" TN="3" TMAX="180" DMAX="0" SLOPE="both"/>
</HOST>
<HOST NAME="web2" IP="10.0.0.2" REPORTED="1" TN="500" TMAX="20" DMAX="0">
<METRIC NAME="load_one" VAL="9" TYPE="float" UNITS=" " TN="3" TMAX="70" DMAX="0" SLOPE="both"/>
</HOST>
</CLUSTER>
</GANGLIA_XML>
"""


def test_hosts_and_numeric_metrics():
    hosts = parse_gmond_xml(XML)
    assert [h.name for h in hosts] == ["web1", "web2"]
    assert hosts[0].metrics == {"load_one": 1.25, "mem_free": 1024.0}


@pytest.mark.parametrize("data", [b"", b"HTTP/1.1 200 OK\r\n\r\nhello", b"<html><body>hi</body></html>",
                                  b"<GANGLIA_XML><HOST", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><GANGLIA_XML>&a;</GANGLIA_XML>'])
def test_garbage_is_an_error(data):
    with pytest.raises(ValueError):
        parse_gmond_xml(data)


def test_the_host_read_is_ours_by_name_or_ip():
    source = GmondSource("gmond://127.0.0.1:8649", "10.0.0.1")
    assert source._pick(parse_gmond_xml(XML)).name == "web1"
    assert GmondSource("gmond://127.0.0.1:8649", "other")._pick(parse_gmond_xml(XML)) is None


def test_urls():
    assert parse_gmond_url("gmond://127.0.0.1:8650") == ("127.0.0.1", 8650)
    assert parse_gmond_url("gmond://ganglia") == ("ganglia", 8649)
    for bad in ("http://x:1", "gmond://", "gmond://x:99999", "gmond://x:1/path"):
        with pytest.raises(InvalidRule):
            parse_gmond_url(bad)
