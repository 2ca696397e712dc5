"""Request parameters as dockerd reads them (powerstrip/http/params.py).

The refusals are the cases where Go's url.ParseQuery (dockerd) and Python's urlsplit/parse_qs (a hook) read
different parameters; tests/integration/policy/test_parameters.py shows dockerd's side of each on the real
daemon. What is accepted must read the same to Python's own parser: the property below checks that.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerstrip.http.params import AmbiguousRequest, check_parameters, check_target, form_body_type, query_params


def test_parameters_in_order_with_blanks_and_plus():
    assert query_params("/v1.41/build?t=a&t=b&rm&x=&=v&q=a+b%2Bc&&") == {
        "t": ["a", "b"], "rm": [""], "x": [""], "": ["v"], "q": ["a b+c"]}
    assert query_params("/containers/json") == {} and query_params("/containers/json?") == {}
    assert query_params("/images/create?fromImage=caf%C3%A9") == {"fromImage": ["café"]}


@pytest.mark.parametrize(("target", "reason"), [
    ("/containers/prune?x=1#&filters={}", "'#'"),
    ("/containers/json#?all=1", "'#'"),
    ("/build?networkmode=default;&networkmode=host", "';'"),
    ("/build?networkmode=%zz&networkmode=host", "'%'"),
    ("/build?networkmode=%4", "'%'"),
    ("/build?networkmode%=host", "'%'"),
    ("/build?t=%ff", "UTF-8"),
    ("/build?t=caf\u00c3\u00a9", "printable ASCII"),   # raw non-ASCII bytes, as the head gives them (latin-1)
    ("/build?t=a b", "printable ASCII"),
])
def test_a_query_go_reads_otherwise_is_refused(target, reason):
    with pytest.raises(AmbiguousRequest, match=reason):
        query_params(target)


@pytest.mark.parametrize("target", ["x:/containers/create", "http://docker/v1.41/containers/create", "*",
                                    "containers/create"])
def test_a_target_that_is_not_a_path_is_refused(target):
    with pytest.raises(AmbiguousRequest, match="not a path"):
        check_target(target)
    check_target("/v1.41/containers/create?name=a")


_QUERY_TEXT = st.text(alphabet=st.sampled_from("ab=&+%2Bc0F9é~!$'()*,/:@?"), max_size=40)


@given(_QUERY_TEXT)
def test_an_accepted_query_reads_the_same_to_python(query):
    try:
        params = query_params("/containers/json?" + query)
    except AmbiguousRequest:
        return
    assert params == parse_qs(query, keep_blank_values=True)


@pytest.mark.parametrize(("fields", "found"), [
    (b"Content-Type: application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    (b"content-type:\t Application/X-WWW-Form-URLEncoded ; charset=utf-8", "application/x-www-form-urlencoded"),
    (b"Content-Type: multipart/form-data; boundary=x", "multipart/form-data"),
    (b"Content-Type: application/json\r\nContent-Type: multipart/form-data; boundary=x", "multipart/form-data"),
    (b"Content-Type: application/json", None),
    (b"Content-Type: application/x-tar", None),
    (b"Content-Type: multipart/mixed; boundary=x", None),   # ParseMultipartForm reads form-data only
    (b"Content-Type: multipart/form-datax", None),
    (b"X-Content-Type: multipart/form-data", None),
    (b"X: 1", None),
])
def test_form_bodies_are_found_in_every_content_type_field(fields, found):
    head = b"POST /v1.41/containers/prune HTTP/1.1\r\nHost: d\r\n" + fields + b"\r\n\r\n"
    assert form_body_type(head) == found
    if found is None:
        check_parameters("/v1.41/containers/prune", head)
    else:
        with pytest.raises(AmbiguousRequest, match="send the parameters in the query"):
            check_parameters("/v1.41/containers/prune", head)
